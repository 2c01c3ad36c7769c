"""Rank a features file (from :mod:`sisnet.extract`) against a query image and draw the ranked list.

CLI::

    python -m sisnet.search --features feats.safetensors --query person.jpg [--topk 10] [--out ranked.png]
        [--checkpoint CKPT] [--exclude-self]

The query may be an image file (its feature is computed with the checkpoint recorded in the features file,
or ``--checkpoint``, or with the ONNX file of a features file made by ``sisnet.extract --onnx``; an image already
in the features file reuses its stored feature, which is identical), or, from Python, a feature vector ``(D,)``.
Distances are the project's retrieval metric (:func:`sisnet.metrics.compute_distance`, cosine: ``1 - cos``, 0 =
identical, on L2-normalised features).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from sisnet.extract import FeatureSet, load_features

__all__ = ["search", "query_feature", "draw_ranked_list"]


def _as_feature_set(features: FeatureSet | str | os.PathLike) -> FeatureSet:
    return features if isinstance(features, FeatureSet) else load_features(features)


def query_feature(
    fs: FeatureSet,
    query: str | os.PathLike | torch.Tensor | np.ndarray,
    *,
    checkpoint: str | os.PathLike | None = None,
    device: str = "auto",
) -> torch.Tensor:
    """The ``(D,)`` feature of ``query`` (a feature vector or an image file), comparable with ``fs``."""
    if isinstance(query, (torch.Tensor, np.ndarray)):
        q = torch.as_tensor(query).float().flatten()
    else:
        qpath = Path(query).expanduser().absolute()
        if not qpath.is_file():
            raise FileNotFoundError(f"Query image {str(query)!r} not found.")
        index = {p: i for i, p in enumerate(fs.paths)}
        if str(qpath) in index:
            q = fs.features[index[str(qpath)]]
        else:
            ckpt = checkpoint or fs.meta.get("checkpoint")
            if not ckpt and fs.meta.get("onnx"):  # a file made with --onnx: the query goes through the same graph
                from sisnet.extract import extract_paths_onnx

                q = extract_paths_onnx(fs.meta["onnx"], [qpath], progress=False)[0]
            elif not ckpt:
                raise ValueError(
                    f"The query {str(query)!r} is not in the features file and no checkpoint is known to compute its "
                    f"feature; pass checkpoint=... (--checkpoint)."
                )
            else:
                from sisnet.runs import load_model
                from sisnet.extract import extract_paths
                from sisnet.utils import select_device

                model, config = load_model(ckpt, device=select_device(device))
                q = extract_paths(model, config, [qpath], fs.meta.get("mode", "either"), progress=False)[0]
    if q.numel() != fs.features.shape[1]:
        raise ValueError(
            f"Query feature has {q.numel()} dims but the features file has {fs.features.shape[1]}; extract both with "
            f"the same checkpoint and mode (the file was made with mode={fs.meta.get('mode')!r})."
        )
    return q


def search(
    features: FeatureSet | str | os.PathLike,
    query: str | os.PathLike | torch.Tensor | np.ndarray,
    topk: int = 10,
    *,
    checkpoint: str | os.PathLike | None = None,
    exclude_self: bool = False,
    metric: str = "cosine",
    device: str = "auto",
) -> pd.DataFrame:
    """Top-``topk`` images of ``features`` nearest to ``query``.

    Returns a DataFrame with columns ``rank`` (1-based), ``path``, ``distance`` (ascending), ``index`` (row in
    the features file). ``exclude_self`` drops the query's own file from the list.
    """
    from sisnet.metrics import compute_distance

    fs = _as_feature_set(features)
    if topk < 1:
        raise ValueError(f"topk must be >= 1, got {topk}.")
    q = query_feature(fs, query, checkpoint=checkpoint, device=device)
    dist = compute_distance(q[None], fs.features, metric=metric)[0]
    order = np.argsort(dist, kind="stable")
    if exclude_self and not isinstance(query, (torch.Tensor, np.ndarray)):
        own = str(Path(query).expanduser().absolute())
        order = np.array([i for i in order if fs.paths[i] != own], dtype=np.int64)
    order = order[:topk]
    return pd.DataFrame({
        "rank": np.arange(1, len(order) + 1),
        "path": [fs.paths[i] for i in order],
        "distance": dist[order].astype(np.float64),
        "index": order,
    })  # fmt: skip


def draw_ranked_list(
    query_image: str | os.PathLike,
    results: pd.DataFrame,
    out: str | os.PathLike | None = None,
    *,
    thumb_hw: tuple[int, int] = (128, 64),
    title: str | None = None,
) -> Any:
    """Draw the query and its ranked list side by side; returns the matplotlib Figure (saved to ``out`` if given).

    Drawn by :func:`sisnet.report.figures.plot_search_results` (the project's one ranked-list drawer).
    """
    from sisnet.report.figures import plot_search_results
    from sisnet.utils import atomic_write

    fig = plot_search_results([query_image], [results], thumb_hw=thumb_hw, title=title)
    if out is not None:
        out = Path(out)
        with atomic_write(out, "wb") as fh:
            fig.savefig(fh, format=out.suffix.lstrip(".") or "png", dpi=120)
    return fig


def _main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sisnet.search", description=__doc__.split("\n\n")[0])
    ap.add_argument("--features", required=True, help="file written by python -m sisnet.extract")
    ap.add_argument("--query", required=True, help="query image")
    ap.add_argument("--topk", type=int, default=10)
    ap.add_argument("--out", default=None, help="draw the ranked list to this image (e.g. ranked.png)")
    ap.add_argument("--checkpoint", default=None, help="default: the one recorded in the features file")
    ap.add_argument("--exclude-self", action="store_true", help="drop the query's own file from the list")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)
    try:
        res = search(args.features, args.query, args.topk, checkpoint=args.checkpoint,
                     exclude_self=args.exclude_self, device=args.device)
        with pd.option_context("display.max_colwidth", 80, "display.width", 160):
            print(res.to_string(index=False, columns=["rank", "distance", "path"], float_format="{:.4f}".format))
        if args.out:
            draw_ranked_list(args.query, res, args.out, title=f"query: {Path(args.query).name}")
            print(f"wrote {args.out}")
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
