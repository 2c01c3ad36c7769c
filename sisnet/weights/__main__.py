"""Command line of :mod:`sisnet.weights`: ``python -m sisnet.weights fetch|check``."""
from __future__ import annotations

import argparse
import json
import sys
import time

from sisnet.weights import (
    CACHE_DIR_ENV,
    DEFAULT_CACHE_DIR,
    PretrainedUnavailableError,
    WeightsMismatchError,
    fetch_offline_source,
    resolve_pretrained,
    source_aliases,
)


def _main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sisnet.weights", description="Pretrained backbone weights: fetch the offline ImageNet source, or check a weights file.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", help="fetch + verify + convert the offline ImageNet weights")
    f.add_argument("--source", default="imagenet-offline", help=f"one of {sorted(source_aliases())}")
    f.add_argument("--cache-dir", default=None, help=f"default: ${CACHE_DIR_ENV} or <repo>/{DEFAULT_CACHE_DIR}")
    f.add_argument("--force", action="store_true", help="download and convert again even if cached")
    c = sub.add_parser("check", help="check a weights file against a timm backbone")
    c.add_argument("file")
    c.add_argument("--backbone", default="mobilenetv2_100")
    c.add_argument("--cache-dir", default=None)
    args = ap.parse_args(argv)
    try:
        if args.cmd == "fetch":
            t0 = time.perf_counter()
            path, info, meta = fetch_offline_source(args.source, args.cache_dir, force=args.force)
            wall = time.perf_counter() - t0
            print(f"weights: {path}")
            print(f"sha256 (converted): {info.sha256}")
            print(f"sha256 (upstream {meta['member']}): {info.upstream_sha256}")
            print(f"timm tensors covered: {meta['num_tensors']} (all of {meta['backbone']} with num_classes=0); "
                  f"left at init with an ImageNet head: {meta['uncovered_keys_with_imagenet_head']}")
            print(f"when built: fetch {meta['seconds_fetch']:.2f} s + convert {meta['seconds_convert']:.2f} s; "
                  f"this call: {wall:.2f} s wall" + (" (cache hit)" if wall < 0.5 * meta["seconds_convert"] else ""))
        else:
            pre, info = resolve_pretrained(args.file, args.backbone, cache_dir=args.cache_dir, allow_fetch=False)
            print(json.dumps(info.to_dict(), indent=2))
    except (PretrainedUnavailableError, WeightsMismatchError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
