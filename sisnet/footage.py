"""ReID on your own footage: the demo sequence, query sampling, and retrieval evaluated without same-track near-duplicates.

Footage is a MOTChallenge sequence (``gt/gt.txt`` with an ``img1/`` frame folder or a video file; see
:mod:`sisnet.data.mot`) converted into ReID crops by :func:`sisnet.data.mot.convert_mot`.

Why a protocol of its own
-------------------------
In a single-camera sequence an identity is one track. The converter cuts each track into time segments
("pseudo-cameras") so that Market-style tools, which drop same-camera matches, still find matches. But then
the frames just across a segment boundary count as cross-camera true matches -- a crop 3 frames from the query is
a near-duplicate of it, and finding it says nothing about re-identification (in notebook 08's search figure
the first hits of a query are such neighbours) -- while the track's crops in the query's own segment are
discarded however far away they are. Counting every other crop of the track as a match fixes the second error
and makes the first one worse.

:func:`evaluate_footage` uses the sequence's time instead of pseudo-cameras. For each query, gallery crops of
the **same track** closer in time than a window (default :data:`DEFAULT_WINDOW_S` = 2 s, converted to frames
with the sequence's frame rate from ``seqinfo.ini``/the video, or given as ``window_frames``) are junk: removed
from that query's ranking, neither positive nor negative. Same-track crops farther away are true matches
whatever their pseudo-camera; other identities are negatives. A query without a true match outside its window
is not counted (``num_valid_queries``).

This is done with exact per-query junk masks, not by choosing pseudo-cameras: a camera assignment partitions a
track's crops once for all queries, while "within ±window of this query" is a different set for every query,
so no partition expresses it (a query near a segment boundary would keep its neighbours in the next segment,
and lose the far crops of its own segment). Each query is scored by :func:`sisnet.metrics.evaluate_rank` with
gallery camera ids that mark exactly its junk crops as "same camera", so CMC, AP and INP follow the project's
single definition (ties broken by gallery index).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

__all__ = [
    "DEFAULT_WINDOW_S",
    "MOT_INDEX",
    "PROTOCOL_PSEUDO_CAMERAS",
    "PROTOCOL_NO_EXCLUSION",
    "footage_index",
    "near_duplicate_mask",
    "exclusion_counts",
    "describe_exclusion",
    "window_label",
    "evaluate_footage",
    "evaluate_models",
    "demo_sequence",
    "sample_queries",
]

#: Default temporal exclusion window: same-track crops closer than this (seconds) to the query are junk.
DEFAULT_WINDOW_S = 2.0
#: The per-crop index written by :func:`sisnet.data.mot.convert_mot` next to the image folders.
MOT_INDEX = "mot_index.csv"
PROTOCOL_PSEUDO_CAMERAS = "pseudo-cameras (Market protocol)"
PROTOCOL_NO_EXCLUSION = "same track, near-duplicates included"
_INDEX_COLUMNS = ("split", "name", "pid", "sequence", "track_id", "frame", "fps")


def footage_index(ds: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``mot_index.csv`` rows of ``ds.query`` and ``ds.gallery``, in record order.

    ``ds`` is a :class:`sisnet.data.ReIDDataset` loaded from a folder written by ``convert_mot``. Returns
    ``(query_index, gallery_index)`` with columns ``pid``, ``sequence``, ``track_id``, ``frame``, ``fps``.
    """
    from sisnet.data import MARKET_SPLIT_DIRS

    path = Path(ds.root) / MOT_INDEX
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: footage evaluation needs the per-crop index that sisnet.data.mot.convert_mot writes "
            f"(sequence, track, frame of every crop). Convert the footage with it (python -m sisnet.data.mot)."
        )
    index = pd.read_csv(path)
    if not set(_INDEX_COLUMNS) <= set(index.columns):
        raise ValueError(
            f"{path} lacks column(s) {', '.join(sorted(set(_INDEX_COLUMNS) - set(index.columns)))} (written by an "
            f"older sisnet); convert the footage again with sisnet.data.mot.convert_mot."
        )
    index = index.set_index(["split", "name"])
    out = []
    for subset in ("query", "gallery"):
        keys = [(MARKET_SPLIT_DIRS[subset], os.path.basename(r.path)) for r in getattr(ds, subset)]
        lacking = [k for k in keys if k not in index.index]
        if lacking:
            raise ValueError(
                f"{path} has no row for {len(lacking)} {subset} image(s), e.g. {'/'.join(lacking[0])}: the index "
                f"and the image folders are out of sync. Convert the footage again."
            )
        rows = index.loc[keys, ["pid", "sequence", "track_id", "frame", "fps"]].reset_index(drop=True)
        pids = np.array([r.pid for r in getattr(ds, subset)])
        if not np.array_equal(rows["pid"].to_numpy(), pids):
            raise ValueError(f"{path}: the pids of the {subset} index and of the file names differ; convert again.")
        out.append(rows)
    return out[0], out[1]


def _window_frames(index: pd.DataFrame, window_s: float | None, window_frames: float | None) -> np.ndarray:
    """Per-row exclusion window in frames (from the row's sequence frame rate, or the given frame count)."""
    if window_frames is not None:
        if window_s is not None:
            raise ValueError("Pass window_s (seconds) or window_frames (frames), not both.")
        if window_frames < 0:
            raise ValueError(f"window_frames must be >= 0, got {window_frames}.")
        return np.full(len(index), float(window_frames))
    window_s = DEFAULT_WINDOW_S if window_s is None else float(window_s)
    if window_s < 0:
        raise ValueError(f"window_s must be >= 0, got {window_s}.")
    fps = pd.to_numeric(index["fps"], errors="coerce").to_numpy(dtype=np.float64)
    unknown = np.isnan(fps) | (fps <= 0)
    if window_s > 0 and unknown.any():
        seqs = sorted(set(index.loc[unknown, "sequence"].astype(str)))
        raise ValueError(
            f"Sequence(s) {', '.join(seqs)} have no frame rate (no frameRate in seqinfo.ini and no video), so a "
            f"window of {window_s:g} s cannot be converted to frames. Pass window_frames=N, or add "
            f"'[Sequence]\\nframeRate=<fps>' to seqinfo.ini and convert again."
        )
    return np.where(unknown, 0.0, window_s * np.nan_to_num(fps))


def near_duplicate_mask(
    query_index: pd.DataFrame,
    gallery_index: pd.DataFrame,
    *,
    window_s: float | None = None,
    window_frames: float | None = None,
) -> np.ndarray:
    """``(Q, G)`` bool: gallery crop j is a near-duplicate of query i (same sequence and track, ``|Δframe|`` below
    the window). The window is ``window_s`` seconds (default :data:`DEFAULT_WINDOW_S`) at the query's sequence
    frame rate, or ``window_frames`` frames; 0 excludes nothing."""
    window = _window_frames(query_index, window_s, window_frames)
    q_seq, g_seq = (np.asarray(ix["sequence"].astype(str)) for ix in (query_index, gallery_index))
    same_track = (q_seq[:, None] == g_seq[None, :]) & (
        query_index["track_id"].to_numpy()[:, None] == gallery_index["track_id"].to_numpy()[None, :]
    )
    gap = np.abs(query_index["frame"].to_numpy()[:, None] - gallery_index["frame"].to_numpy()[None, :])
    return same_track & (gap < window[:, None])


def _exclusion(junk: np.ndarray, q_pids: np.ndarray, g_pids: np.ndarray) -> tuple[dict[str, Any], np.ndarray]:
    """The counts of :func:`exclusion_counts` for a junk mask, and which queries keep a true match."""
    has_match = ((q_pids[:, None] == g_pids[None, :]) & ~junk).any(axis=1)
    counts = {"queries": len(q_pids), "skipped_queries": int((~has_match).sum()), "gallery": len(g_pids),
              "junk_crops": int(junk.any(axis=0).sum()), "junk_total": int(junk.sum()),
              "junk_per_query": float(junk.sum(1).mean()) if len(junk) else 0.0}
    return counts, has_match


def exclusion_counts(
    query_index: pd.DataFrame,
    gallery_index: pd.DataFrame,
    *,
    window_s: float | None = None,
    window_frames: float | None = None,
) -> dict[str, Any]:
    """What the near-duplicate rule excludes, whatever the model: ``{"queries", "skipped_queries" (no true match
    left), "gallery", "junk_crops" (gallery crops excluded for at least one query), "junk_total" (query-gallery
    pairs excluded), "junk_per_query" (their mean)}``. Windows as in :func:`near_duplicate_mask`."""
    junk = near_duplicate_mask(query_index, gallery_index, window_s=window_s, window_frames=window_frames)
    return _exclusion(junk, query_index["pid"].to_numpy(), gallery_index["pid"].to_numpy())[0]


def window_label(window_s: float | None = None, window_frames: float | None = None) -> str:
    """The protocol name of a window, e.g. ``"same track within 2 s excluded"``."""
    if window_frames is not None:
        return f"same track within {window_frames:g} frames excluded"
    return f"same track within {DEFAULT_WINDOW_S if window_s is None else window_s:g} s excluded"


def describe_exclusion(counts: Mapping[str, Any], label: str) -> str:
    """One sentence on what the rule ``label`` (:func:`window_label`) excluded, from :func:`exclusion_counts`."""
    return (f"{label}: {int(counts['junk_crops']):,} of {int(counts['gallery']):,} gallery crops excluded for at "
            f"least one query ({int(counts['junk_total']):,} query-gallery pairs, {float(counts['junk_per_query']):.1f} "
            f"per query); {int(counts['skipped_queries'])} of {int(counts['queries'])} queries have no true match "
            f"left and are skipped")


def evaluate_footage(
    distmat: Any,
    query_index: pd.DataFrame,
    gallery_index: pd.DataFrame,
    *,
    window_s: float | None = None,
    window_frames: float | None = None,
    max_rank: int = 50,
) -> dict[str, Any]:
    """Rank-k, mAP, mINP (fractions) of a ``(Q, G)`` distance matrix with same-track near-duplicates as junk.

    See the module docstring for the protocol. Returns ``{"cmc" (max_rank,), "rank1", "rank5", "rank10", "mAP",
    "mINP", "num_valid_queries"}`` and the counts of :func:`exclusion_counts` (``junk_crops``, ``junk_total``,
    ``junk_per_query``, ``queries``, ``skipped_queries``, ``gallery``).
    """
    from sisnet.metrics import evaluate_rank

    dist = np.asarray(distmat.detach().cpu() if hasattr(distmat, "detach") else distmat, dtype=np.float64)
    if dist.shape != (len(query_index), len(gallery_index)):
        raise ValueError(f"distmat is {dist.shape} but the indexes hold {len(query_index)} queries and "
                         f"{len(gallery_index)} gallery crops.")
    junk = near_duplicate_mask(query_index, gallery_index, window_s=window_s, window_frames=window_frames)
    q_pids = query_index["pid"].to_numpy()
    g_pids = gallery_index["pid"].to_numpy()
    max_rank = max(1, min(int(max_rank), dist.shape[1]))
    counts, has_match = _exclusion(junk, q_pids, g_pids)
    cmcs, aps, inps = [], [], []
    for i in np.flatnonzero(has_match):
        # camera 0 = the query's; junk crops get it (and are removed, being of the same pid), all others 1
        res = evaluate_rank(dist[i : i + 1], q_pids[i : i + 1], g_pids, [0], junk[i].astype(np.int64) ^ 1,
                            max_rank=max_rank)  # fmt: skip
        cmcs.append(np.asarray(res["cmc"]))
        aps.append(res["mAP"])
        inps.append(res["mINP"])
    cmc = np.mean(cmcs, axis=0) if cmcs else np.full(max_rank, np.nan)
    out = {f"rank{k}": float(cmc[min(k, max_rank) - 1]) for k in (1, 5, 10)}
    out.update(cmc=cmc, mAP=float(np.mean(aps)) if aps else float("nan"),
               mINP=float(np.mean(inps)) if inps else float("nan"), num_valid_queries=len(aps), **counts)
    return out


def evaluate_models(
    models: Mapping[str, Any],
    ds: Any,
    *,
    window_s: float | None = None,
    window_frames: float | None = None,
) -> pd.DataFrame:
    """Either-scale rank-1/5/10, mAP, mINP (percent) of each model on converted footage, under three protocols.

    ``models`` maps a name to an object with ``model``, ``config``, ``loss`` and ``seed`` (e.g.
    :func:`sisnet.report.load_models`). One row per (model, protocol):

    * :data:`PROTOCOL_PSEUDO_CAMERAS`: the Market protocol on the converter's time segments, what Market-style
      tools report. It errs both ways: neighbouring frames across a segment boundary count as cross-camera
      matches, and the track's crops in the query's own segment are discarded however far away they are.
    * :data:`PROTOCOL_NO_EXCLUSION`: every other crop of the query's track is a match, even one frame away
      (:func:`evaluate_footage` with a zero window): the number near-duplicates inflate.
    * ``"same track within <window> excluded"``: :func:`evaluate_footage` with the window; the number to quote.

    Columns: ``method``, ``loss``, ``seed``, ``protocol``, the metrics, ``num_valid_queries`` (of ``queries``),
    ``junk_crops`` (gallery crops the rule excluded for at least one query), ``junk_total`` (query-gallery pairs
    excluded), ``junk_per_query`` (their mean), ``gallery``; the exclusion columns are empty for the pseudo-camera
    protocol.
    """
    from sisnet.evaluation import extract_features, rank_metrics
    from sisnet.metrics import compute_distance

    q_index, g_index = footage_index(ds)
    _window_frames(q_index, window_s, window_frames)  # bad windows fail before any feature is extracted
    label = window_label(window_s, window_frames)
    rows = []
    for method, tm in models.items():
        qf, q_pids, q_camids = extract_features(tm.model, ds.query, tm.config, "either")
        gf, g_pids, g_camids = extract_features(tm.model, ds.gallery, tm.config, "either")
        dist = compute_distance(qf, gf, metric=tm.config.metric)
        max_rank = max(1, min(50, len(g_pids)))
        market = {**rank_metrics(dist, q_pids, g_pids, q_camids, g_camids),
                  **dict.fromkeys(("junk_crops", "junk_total", "junk_per_query"), np.nan)}
        honest = evaluate_footage(dist, q_index, g_index, window_s=window_s, window_frames=window_frames,
                                  max_rank=max_rank)
        everything = evaluate_footage(dist, q_index, g_index, window_frames=0, max_rank=max_rank)
        for protocol, res in ((PROTOCOL_PSEUDO_CAMERAS, market), (PROTOCOL_NO_EXCLUSION, everything), (label, honest)):
            rows.append({"method": method, "loss": tm.loss, "seed": tm.seed, "protocol": protocol,
                         **{k: 100.0 * float(res[k]) for k in ("rank1", "rank5", "rank10", "mAP", "mINP")},
                         "num_valid_queries": int(res["num_valid_queries"]), "queries": len(q_pids),
                         **{k: res[k] for k in ("junk_crops", "junk_total", "junk_per_query")},
                         "gallery": len(g_pids)})  # fmt: skip
    return pd.DataFrame(rows)


def demo_sequence(
    demo_dir: str | os.PathLike, mot_sequence: str | os.PathLike = "", *, num_frames: int, num_people: int, seed: int = 0,
) -> Path:
    """The footage notebook 08 works on: ``mot_sequence`` when given (a sequence folder or a video file beside
    ``gt/gt.txt``), else a rendered street sequence under ``demo_dir`` (rendered once: into a temporary folder,
    then renamed, so it is complete or absent)."""
    if mot_sequence:
        return Path(mot_sequence)
    from sisnet.data.synthetic import render_mot_sequence

    sequence = Path(demo_dir) / f"street-{num_frames}f-{num_people}p-seed{seed}"
    if not (sequence / "gt" / "gt.txt").is_file():
        render_mot_sequence(sequence, num_frames=num_frames, num_people=num_people, seed=seed)
    return sequence


def sample_queries(query_dir: str | os.PathLike, n: int, seed: int = 0) -> list[Path]:
    """``n`` query images of a converted footage set, drawn with ``seed`` (all of them when there are fewer)."""
    import random

    files = sorted(Path(query_dir).glob("*.jpg"))
    return random.Random(seed).sample(files, min(n, len(files)))
