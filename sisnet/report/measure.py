"""The evaluation protocols on trained models: standard, cross-scale, re-ranking, native query heights, and scale
robustness (the query resolution swept).

Evaluation itself is :mod:`sisnet.evaluation`'s (one definition); this module chooses the protocols and
turns their results into per-run tables (percent).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from sisnet.evaluation import evaluate_query_scales
from sisnet.report.context import NotebookContext, load
from sisnet.report.runs import TrainedModel
from sisnet.report.tables import PROTOCOL_RERANK, GridRun, protocol_cross_scale, runs_frame

__all__ = ["QUERY_SCALES", "CROSS_SCALE", "HEIGHT_EDGES", "percent", "native_height_protocols", "split_scale_bins",
           "measure_protocols", "scale_robustness"]

#: Query resolution factors of the scale-robustness study (notebook 07).
QUERY_SCALES: tuple[float, ...] = (1.0, 0.75, 0.5, 0.375, 0.25)
#: Table 2's scale protocols (notebook 03's ``cross_scale`` and ``height_edges`` parameters, whose defaults a test
#: holds to these, and ``python -m sisnet.experiments other-view``): the query factor of the cross-scale protocol,
#: and the native query-height bin edges in pixels.
CROSS_SCALE: float = 0.5
HEIGHT_EDGES: tuple[float, float] = (48, 96)
#: The labels of :func:`native_height_protocols` start with these (:func:`split_scale_bins` keys on them).
_QUERY_HEIGHT, _NATIVE_CROSS = "query height", "native cross-scale"


def percent(metrics: Mapping[str, float]) -> dict[str, float]:
    """The ranks, mAP and mINP of an evaluation's ``metrics`` (fractions) in percent."""
    return {k: float(metrics[k]) * 100.0 for k in ("rank1", "rank5", "rank10", "mAP", "mINP") if k in metrics}


def native_height_protocols(ds, edges: Sequence[float] = HEIGHT_EDGES) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Protocols on *native* capture heights (``scales.csv``), which do not reuse the training's down-scaling.

    For ``edges = (lo, hi)``: queries in each height bin (< lo, lo-hi, >= hi px) against the whole gallery, and
    a native cross-scale protocol: queries captured below ``lo`` px against the gallery images captured at ``hi``
    px or more. Returns ``{protocol: (query mask, gallery mask)}``; ``{}`` when the dataset has no scale sidecar.
    """
    scales = ds.scales()
    if scales is None:
        return {}
    lo, hi = (float(e) for e in edges)
    if not 0 < lo < hi:
        raise ValueError(f"height edges {edges!r} must be two increasing positive pixel heights, e.g. (48, 96).")
    qh = scales.loc[scales["subset"] == "query", "height_px"].to_numpy()
    gh = scales.loc[scales["subset"] == "gallery", "height_px"].to_numpy()
    everything = np.ones(len(gh), dtype=bool)
    return {
        f"{_QUERY_HEIGHT} < {lo:g} px": (qh < lo, everything),
        f"{_QUERY_HEIGHT} {lo:g}-{hi:g} px": ((qh >= lo) & (qh < hi), everything),
        f"{_QUERY_HEIGHT} >= {hi:g} px": (qh >= hi, everything),
        f"{_NATIVE_CROSS} (query < {lo:g} px, gallery >= {hi:g} px)": (qh < lo, gh >= hi),
    }


def split_scale_bins(per_run: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(the paper's protocols, the native-height ones)`` of a :func:`measure_protocols` frame: Table 2 summarises
    the first (standard, cross-scale, re-ranking); ``scale_bins.csv`` holds the second."""
    native = per_run["protocol"].str.startswith((_QUERY_HEIGHT, _NATIVE_CROSS))
    # fresh row numbers: a kept slice's index would be written as an unnamed first column of the CSV
    return per_run[~native].reset_index(drop=True), per_run[native].reset_index(drop=True)


def measure_protocols(
    ctx: NotebookContext,
    runs: Sequence[GridRun],
    *,
    cross_scale: float | None = CROSS_SCALE,
    rerank: bool = False,
    height_edges: Sequence[float] | None = None,
) -> pd.DataFrame:
    """Per-run results under the standard protocol (from the history: last evaluation, either-scale),
    the cross-scale protocol (queries degraded by ``cross_scale``; ``None`` skips it), with ``rerank`` the
    standard protocol with k-reciprocal re-ranking, and with ``height_edges`` the native-height protocols
    (:func:`native_height_protocols`).

    Columns as :func:`runs_frame` (percent) plus ``num_valid_queries``; one row per (run, protocol).
    """
    from sisnet.evaluation import evaluate_subsets

    from sisnet.runs import load_model

    frames = [runs_frame(runs)]
    extra = []
    if cross_scale is not None:
        if not 0 < float(cross_scale) <= 1:
            raise ValueError(f"cross_scale={cross_scale!r} must be in (0, 1] (e.g. 0.5 = half resolution queries).")
        extra.append((protocol_cross_scale(float(cross_scale)), float(cross_scale), False))
    if rerank:
        extra.append((PROTOCOL_RERANK, 1.0, True))
    subsets = native_height_protocols(load(ctx), height_edges) if height_edges is not None else {}
    if extra or subsets:
        ds = load(ctx)
        caches: dict[tuple[int, int], dict] = {}
        rows = []
        for run in runs:
            model, config = load_model(run.run_dir)
            cache = caches.setdefault((config.img_height, config.img_width), {})
            base = {"loss": run.loss, "method": run.method, "seed": run.seed, "mode": "either"}
            for use_rerank in sorted({rr for _, _, rr in extra}):
                scales = [qs for _, qs, rr in extra if rr == use_rerank]
                res = evaluate_query_scales(model, ds, config, scales, rerank=use_rerank, image_cache=cache)
                for protocol, qs, rr in extra:
                    if rr == use_rerank:
                        rows.append({**base, "protocol": protocol, **percent(res[qs]), "epoch": int(config.epochs),
                                     "run_id": run.run_id, "num_valid_queries": res[qs]["num_valid_queries"]})
            for protocol, res in evaluate_subsets(model, ds, config, subsets, image_cache=cache).items():
                rows.append({**base, "protocol": protocol, **percent(res), "epoch": int(config.epochs),
                             "run_id": run.run_id, "num_valid_queries": res["num_valid_queries"]})
        frames.append(pd.DataFrame(rows))
    return pd.concat(frames, ignore_index=True)


def scale_robustness(models: Mapping[str, TrainedModel], ds, query_scales: Sequence[float] = QUERY_SCALES) -> pd.DataFrame:
    """Rank-1/5/10, mAP, mINP (percent, either-scale) for each model and query resolution factor.

    Queries are degraded (down-sampled by the factor, up-sampled back to the input size); the
    gallery stays at full resolution. Columns: ``method``, ``loss``, ``seed``, ``query_scale``,
    the metrics, ``num_valid_queries``.
    """
    bad = [s for s in query_scales if not 0 < float(s) <= 1]
    if bad:
        raise ValueError(f"query_scales {bad} must lie in (0, 1] (1 = full resolution).")
    rows, caches = [], {}
    for method, tm in models.items():
        cache = caches.setdefault((tm.config.img_height, tm.config.img_width), {})
        res = evaluate_query_scales(tm.model, ds, tm.config, [float(s) for s in query_scales], image_cache=cache)
        for s in query_scales:
            rows.append({"method": method, "loss": tm.loss, "seed": tm.seed, "query_scale": float(s),
                         **percent(res[float(s)]), "num_valid_queries": res[float(s)]["num_valid_queries"]})
    return pd.DataFrame(rows)
