"""Retrieval evaluation of a model: extract features (either / cascaded), rank the gallery, compute the metrics.

>>> res = evaluate(model, dataset, config)                     # {mode: {rank1, rank5, rank10, mAP, mINP, ...}}
>>> by_scale = evaluate_query_scales(model, dataset, config, [1.0, 0.5])   # gallery extracted once

The one place where a trained model is evaluated: the engine's periodic evaluation, the notebooks'
protocols (standard, cross-scale, re-ranking) and the scale-robustness study all call :func:`evaluate_scales`.
Features are defined once, in :func:`sisnet.model.retrieval_features`; metrics once, in
:func:`sisnet.metrics.evaluate_rank` (summarised by :func:`rank_metrics`).

Protocol: queries against the gallery, same-identity same-camera gallery images removed per query
(Market-1501 / torchreid). ``query_scale < 1`` degrades the queries only (down to ``query_scale`` x their size
and back up), the gallery stays at full resolution: the cross-scale protocol. Metrics are fractions in [0, 1].

On a GPU: images leave the loader (workers per ``config.num_workers``, :mod:`sisnet.data.loader`) as ``uint8``
and are normalised / degraded on the device; the small view is made only when cascaded features are asked for;
features stay on the device, where :func:`sisnet.metrics.evaluate_features` computes the query-gallery
distances in chunks and ranks each chunk; only the per-query results come back. On the CPU that is exactly
:func:`sisnet.metrics.evaluate_rank` of :func:`sisnet.metrics.compute_distance`.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from sisnet.data.loader import loader_options
from sisnet.data.transforms import EvalTransform, TwoScaleDataset, decode_images_cached
from sisnet.model import EVAL_MODES, retrieval_features
from sisnet.utils import autocast_dtype

__all__ = ["extract_features", "extract_modes", "rank_metrics", "feature_metrics", "summarize_rank", "evaluate",
           "evaluate_query_scales", "evaluate_scales", "evaluate_subsets", "EVAL_MODES", "MAX_RANK"]

#: CMC curves are computed up to this rank (or the gallery size, when smaller).
MAX_RANK = 50


@torch.no_grad()
def extract_modes(
    model, records: Sequence[Any], config: Any, modes: Iterable[str], query_scale: float = 1.0,
    images: torch.Tensor | None = None, progress: bool = False, desc: str = "features",
) -> tuple[dict[str, torch.Tensor], np.ndarray, np.ndarray]:
    """Features of ``records`` for several modes in ONE pass: ``({mode: (N, D)}, pids (N,), camids (N,))``.

    The full-scale branch is computed once and shared; the small view only when ``cascaded`` is asked for.
    ``images``: pre-decoded ``uint8 (N, 3, H, W)`` (default: decoded here, cached when ``config.cache_images``).
    The features are on the model's device.
    """
    modes = tuple(modes)
    bad = [m for m in modes if m not in EVAL_MODES]
    if bad:
        raise ValueError(f"mode(s) {bad} not valid; choose from {list(EVAL_MODES)}.")
    device = next(model.parameters()).device
    if images is None and config.cache_images:
        images = decode_images_cached([r.path for r in records], (config.img_height, config.img_width), f"decode {desc}")
    transform = EvalTransform(config.view_spec(), query_scale=query_scale)
    ds = TwoScaleDataset(records, transform, images=images, raw=True)
    batch_bytes = config.eval_batch_size * 3 * config.img_height * config.img_width
    loader = DataLoader(ds, batch_size=config.eval_batch_size, shuffle=False,
                        **loader_options(config.num_workers, device, batch_bytes, persistent=False))
    amp_dtype = autocast_dtype(config.amp, device)
    fmt = torch.channels_last if config.channels_last else torch.contiguous_format
    was_training = model.training
    model.eval()
    feats: dict[str, list[torch.Tensor]] = {m: [] for m in modes}
    pids, camids = [], []
    it: Any = loader
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(loader, desc=desc, leave=False, unit="batch")
    cascaded = "cascaded" in modes
    try:
        for image, _, pid, camid in it:
            full, small = transform.finish(image.to(device, non_blocking=device.type == "cuda"), small=cascaded)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                f_full = model(full.contiguous(memory_format=fmt)).bn_feature
                f_small = model(small.contiguous(memory_format=fmt)).bn_feature if cascaded else None
            for m, f in retrieval_features(f_full, f_small, modes).items():
                feats[m].append(f)
            pids.append(pid)
            camids.append(camid)
    finally:
        model.train(was_training)
    out = {m: torch.cat(v) if v else torch.empty(0, device=device) for m, v in feats.items()}
    return out, torch.cat(pids).numpy(), torch.cat(camids).numpy()


def extract_features(
    model, records: Sequence[Any], config: Any, mode: str = "either", query_scale: float = 1.0,
    images: torch.Tensor | None = None, progress: bool = False,
) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """L2-normalised retrieval features of ``records``: ``(feats (N, D), pids (N,), camids (N,))``.

    ``mode="either"``: BNNeck feature of the full-size image, D = C. ``mode="cascaded"``: concatenation
    with the small-scale view's feature, D = 2C. ``query_scale < 1`` first degrades each image (down to
    ``query_scale`` x its size, back up to the model input size): the cross-scale protocol. Features on the CPU.
    """
    feats, pids, camids = extract_modes(model, records, config, (mode,), query_scale, images, progress)
    return feats[mode].cpu(), pids, camids


def summarize_rank(res: Mapping[str, Any], num_queries: int) -> dict[str, float]:
    """rank-1/5/10, mAP, mINP (fractions) and ``num_valid_queries`` of an :func:`~sisnet.metrics.evaluate_rank`
    result: the one summary every table uses (rank-k beyond the CMC's length reads its last value)."""
    cmc = np.asarray(res["cmc"])

    def rank(k: int) -> float:
        return float(cmc[min(k, len(cmc)) - 1]) if len(cmc) else float("nan")

    return {
        "rank1": rank(1), "rank5": rank(5), "rank10": rank(10),
        "mAP": float(res["mAP"]), "mINP": float(res["mINP"]),
        "num_valid_queries": int(res.get("num_valid_queries", num_queries)),
    }


def _max_rank(num_gallery: int) -> int:
    return max(1, min(MAX_RANK, num_gallery))


def rank_metrics(distmat: Any, q_pids, g_pids, q_camids, g_camids) -> dict[str, float]:
    """:func:`summarize_rank` of a (Q, G) distance matrix (CMC up to ``min(MAX_RANK, G)``)."""
    from sisnet.metrics import evaluate_rank

    res = evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=_max_rank(len(g_pids)))
    return summarize_rank(res, len(q_pids))


def feature_metrics(qf: torch.Tensor, gf: torch.Tensor, q_pids, g_pids, q_camids, g_camids, *, metric: str,
                    rerank: bool = False, device: torch.device | None = None) -> dict[str, float]:
    """:func:`summarize_rank` of query / gallery features: k-reciprocal re-ranking, or ``metric`` distances
    computed and ranked on ``device`` (on CUDA chunk by chunk, only per-query results come back to the host;
    on the CPU exactly :func:`rank_metrics` of :func:`~sisnet.metrics.compute_distance`)."""
    from sisnet.metrics import evaluate_features, re_ranking

    if rerank:
        return rank_metrics(re_ranking(qf.cpu(), gf.cpu()), q_pids, g_pids, q_camids, g_camids)
    res = evaluate_features(qf, gf, q_pids, g_pids, q_camids, g_camids, metric, _max_rank(len(g_pids)),
                            device=device if device is not None else torch.device("cpu"))
    return summarize_rank(res, len(q_pids))


def _decoded_splits(dataset, config: Any, image_cache: dict[str, torch.Tensor] | None) -> dict[str, torch.Tensor]:
    """``image_cache`` (or a new dict) holding the decoded query / gallery images when ``config.cache_images``;
    otherwise each image is decoded when it is read (datasets larger than RAM)."""
    cache = image_cache if image_cache is not None else {}
    if config.cache_images:
        size = (config.img_height, config.img_width)
        for split in ("query", "gallery"):
            if split not in cache:
                cache[split] = decode_images_cached([r.path for r in getattr(dataset, split)], size, f"decode {split}")
    return cache


def evaluate_scales(
    model, dataset, config: Any, query_scales: Sequence[float] = (1.0,), modes: Sequence[str] = ("either",), *,
    rerank: bool | None = None, progress: bool = False, image_cache: dict[str, torch.Tensor] | None = None,
) -> dict[float, dict[str, dict[str, float]]]:
    """``{query_scale: {mode: metrics}}``: the gallery's features are extracted once for every query scale.

    ``rerank`` (default ``config.rerank``) uses k-reciprocal re-ranking instead of plain ``config.metric``
    distances. ``image_cache``: optional dict that keeps the decoded ``query``/``gallery`` images between calls.
    """
    scales = [float(s) for s in query_scales]
    bad = [s for s in scales if not 0 < s <= 1]
    if bad:
        raise ValueError(f"query scale(s) {bad} must lie in (0, 1] (1 = full resolution).")
    rerank = config.rerank if rerank is None else rerank
    device = next(model.parameters()).device
    cache = _decoded_splits(dataset, config, image_cache)
    gf, g_pids, g_camids = extract_modes(model, dataset.gallery, config, modes, 1.0, cache.get("gallery"), progress,
                                         "gallery features")
    out: dict[float, dict[str, dict[str, float]]] = {}
    for s in scales:
        qf, q_pids, q_camids = extract_modes(model, dataset.query, config, modes, s, cache.get("query"), progress,
                                             "query features")
        out[s] = {m: feature_metrics(qf[m], gf[m], q_pids, g_pids, q_camids, g_camids, metric=config.metric,
                                     rerank=rerank, device=device) for m in modes}
    return out


def evaluate_subsets(
    model, dataset, config: Any, subsets: Mapping[str, tuple[np.ndarray, np.ndarray]], *,
    image_cache: dict[str, torch.Tensor] | None = None,
) -> dict[str, dict[str, float]]:
    """Either-scale metrics of query / gallery subsets: ``{name: metrics}`` for ``subsets = {name: (query mask,
    gallery mask)}`` (boolean arrays over ``dataset.query`` / ``dataset.gallery``). Features are extracted once;
    each subset is ranked and scored like the full problem (``config.metric`` distances)."""
    device = next(model.parameters()).device
    cache = _decoded_splits(dataset, config, image_cache)
    qf, q_pids, q_camids = extract_modes(model, dataset.query, config, ("either",), 1.0, cache.get("query"))
    gf, g_pids, g_camids = extract_modes(model, dataset.gallery, config, ("either",), 1.0, cache.get("gallery"))
    out = {}
    for name, (qm, gm) in subsets.items():
        qm, gm = np.asarray(qm, dtype=bool), np.asarray(gm, dtype=bool)
        if len(qm) != len(q_pids) or len(gm) != len(g_pids):
            raise ValueError(f"subset {name!r}: masks of length {len(qm)}/{len(gm)} for {len(q_pids)} queries and "
                             f"{len(g_pids)} gallery images.")
        qp, qc, gp, gc = q_pids[qm], q_camids[qm], g_pids[gm], g_camids[gm]
        valid = ((qp[:, None] == gp[None, :]) & (qc[:, None] != gc[None, :])).any(axis=1)
        if not valid.any():  # no query of the subset has a true match in the gallery subset
            out[name] = {"rank1": float("nan"), "rank5": float("nan"), "rank10": float("nan"), "mAP": float("nan"),
                         "mINP": float("nan"), "num_valid_queries": 0}
            continue
        qsel, gsel = (torch.as_tensor(m, device=f.device) for m, f in ((qm, qf["either"]), (gm, gf["either"])))
        out[name] = feature_metrics(qf["either"][qsel], gf["either"][gsel], qp, gp, qc, gc, metric=config.metric,
                                    device=device)
    return out


def evaluate(
    model, dataset, config: Any, modes: Sequence[str] = EVAL_MODES, query_scale: float = 1.0,
    rerank: bool | None = None, progress: bool = False, image_cache: dict[str, torch.Tensor] | None = None,
) -> dict[str, dict[str, float]]:
    """Rank-1/5/10, mAP and mINP (fractions) of ``model`` on ``dataset.query`` vs ``dataset.gallery``.

    Returns ``{mode: {"rank1", "rank5", "rank10", "mAP", "mINP", "num_valid_queries"}}``; see
    :func:`evaluate_scales` for the arguments.
    """
    return evaluate_scales(model, dataset, config, [query_scale], modes, rerank=rerank, progress=progress,
                           image_cache=image_cache)[float(query_scale)]


def evaluate_query_scales(
    model, dataset, config: Any, query_scales: Sequence[float], *, rerank: bool = False,
    image_cache: dict | None = None,
) -> dict[float, dict[str, float]]:
    """Either-scale metrics (fractions) for several query resolution factors: ``{query_scale: metrics}``."""
    res = evaluate_scales(model, dataset, config, query_scales, ("either",), rerank=rerank, image_cache=image_cache)
    return {s: r["either"] for s, r in res.items()}
