"""Command line of :mod:`sisnet.weights`: ``python -m sisnet.weights fetch|check|add``."""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from sisnet.weights import (
    CACHE_DIR_ENV,
    DEFAULT_CACHE_DIR,
    PretrainedUnavailableError,
    WEIGHT_SUFFIXES,
    WeightsMismatchError,
    cache_file_candidates,
    default_cache_dir,
    fetch_offline_source,
    resolve_pretrained,
    source_aliases,
)


def _main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sisnet.weights", description="Pretrained backbone weights: fetch the offline ImageNet source, check a weights file, or add one to the weights cache.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", help="fetch + verify + convert the offline ImageNet weights")
    f.add_argument("--source", default="imagenet-offline", help=f"one of {sorted(source_aliases())}")
    f.add_argument("--cache-dir", default=None, help=f"default: ${CACHE_DIR_ENV} or <repo>/{DEFAULT_CACHE_DIR}")
    f.add_argument("--force", action="store_true", help="download and convert again even if cached")
    c = sub.add_parser("check", help="check a weights file against a timm backbone")
    c.add_argument("file")
    c.add_argument("--backbone", default="mobilenetv2_100")
    c.add_argument("--cache-dir", default=None)
    a = sub.add_parser("add", help="check a weights file, then copy it into the weights cache where "
                                   "pretrained='auto' finds it (<cache-dir>/<backbone><suffix>)")
    a.add_argument("file")
    a.add_argument("--backbone", required=True, help="the exact (tagged) timm name, e.g. resnet50.tv_in1k")
    a.add_argument("--cache-dir", default=None, help=f"default: ${CACHE_DIR_ENV} or <repo>/{DEFAULT_CACHE_DIR}")
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
        elif args.cmd == "check":
            pre, info = resolve_pretrained(args.file, args.backbone, cache_dir=args.cache_dir, allow_fetch=False)
            print(json.dumps(info.to_dict(), indent=2))
        else:
            _add(Path(args.file), args.backbone, Path(args.cache_dir) if args.cache_dir else default_cache_dir())
    except (PretrainedUnavailableError, WeightsMismatchError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _add(path: Path, backbone: str, cache_dir: Path) -> None:
    """Check ``path`` against ``backbone``, then copy it to the name ``pretrained='auto'`` looks for."""
    from sisnet.utils import atomic_write

    pre, info = resolve_pretrained(path, backbone, cache_dir=cache_dir, allow_fetch=False)
    if info.source != "file":  # the upstream file of an offline source: already converted into the cache
        print(f"{path} is the {info.source!r} source; converted into the cache as {pre}")
        return
    suffix = next(s for s in WEIGHT_SUFFIXES if path.name.lower().endswith(s))
    dest = cache_dir / f"{backbone}{suffix}"
    others = [p for p in cache_file_candidates(backbone, cache_dir) if p.is_file() and p != dest]
    if others:
        raise ValueError(f"the weights cache already holds {others[0]} for {backbone!r}; remove it first.")
    with open(path, "rb") as src, atomic_write(dest, "wb") as dst:
        shutil.copyfileobj(src, dst)
    print(f"weights for {backbone}: {dest}\nsha256: {info.sha256}\npretrained='auto' now uses this file.")


if __name__ == "__main__":
    raise SystemExit(_main())
