"""The evaluation protocol on one query, step by step: what is removed, where the true matches rank, AP and INP.

A teaching companion to :func:`sisnet.metrics.evaluate_rank` (which computes the same numbers for every query
at once, without sorting): :func:`worked_query` ranks one query's gallery literally, labels every item with
the rule that applies to it, and computes AP and INP from the labelled list, so a reader can follow each
number. :func:`pixel_features` gives a model-free feature (tiny colour thumbnails) to show the protocol
before any network is trained.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

__all__ = ["worked_query", "pixel_features", "protocol_example", "ProtocolExample", "STATUS_REMOVED", "STATUS_MATCH", "STATUS_OTHER", "STATUS_DISTRACTOR"]

STATUS_REMOVED = "removed: same identity, same camera"
STATUS_MATCH = "true match"
STATUS_OTHER = "other identity"
STATUS_DISTRACTOR = "distractor (pid 0)"


def worked_query(
    distances: Sequence[float], q_pid: int, q_camid: int, g_pids: Sequence[int], g_camids: Sequence[int],
) -> tuple[pd.DataFrame, dict[str, float]]:
    """One query's ranked gallery, labelled, and its AP / INP / first-hit rank computed from the labels.

    Returns ``(ranked, summary)``. ``ranked`` has one row per gallery item in ranking order (stable sort of the
    distances: ties keep gallery order, the library's tie rule): ``position`` (1-based, all items),
    ``gallery_index``, ``pid``, ``camera`` (numbered from 1, as Market-1501's file names ``c1`` ... ``c6`` and
    every figure number them; ``q_camid`` / ``g_camids`` are the library's 0-based ``camid``), ``distance``,
    ``status`` (one of the ``STATUS_*`` labels),
    ``rank`` (1-based among the items that are not removed; NaN for removed ones), ``hit`` (1, 2, ... for true
    matches), ``precision`` (``hit / rank`` at each true match). ``summary`` has ``AP`` (mean precision at the
    hits), ``INP`` (``hits / rank of the last hit``), ``first_hit_rank`` (what the CMC counts) and
    ``num_matches``; AP and INP are NaN when the query has no true match (the query is then skipped).
    """
    d = np.asarray(distances, dtype=np.float64).ravel()
    g_pids = np.asarray(g_pids).ravel()
    g_camids = np.asarray(g_camids).ravel()
    if not (len(d) == len(g_pids) == len(g_camids)):
        raise ValueError(f"distances ({len(d)}), g_pids ({len(g_pids)}) and g_camids ({len(g_camids)}) differ in length.")
    order = np.argsort(d, kind="stable")
    pid, cam = g_pids[order], g_camids[order]
    removed = (pid == q_pid) & (cam == q_camid)
    match = (pid == q_pid) & ~removed
    status = np.where(removed, STATUS_REMOVED, np.where(match, STATUS_MATCH,
                                                        np.where(pid == 0, STATUS_DISTRACTOR, STATUS_OTHER)))
    rank = np.full(len(d), np.nan)
    rank[~removed] = np.arange(1, int((~removed).sum()) + 1)
    hit = np.full(len(d), np.nan)
    hit[match] = np.arange(1, int(match.sum()) + 1)
    ranked = pd.DataFrame({"position": np.arange(1, len(d) + 1), "gallery_index": order, "pid": pid, "camera": cam + 1,
                           "distance": d[order], "status": status, "rank": rank, "hit": hit,
                           "precision": hit / rank})
    hits = ranked[match]
    if len(hits):
        summary = {"AP": float(hits["precision"].mean()), "INP": float(len(hits) / hits["rank"].iloc[-1]),
                   "first_hit_rank": int(hits["rank"].iloc[0]), "num_matches": int(len(hits))}
    else:
        summary = {"AP": float("nan"), "INP": float("nan"), "first_hit_rank": -1, "num_matches": 0}
    return ranked, summary


def pixel_features(paths: Sequence[Any], size_hw: tuple[int, int] = (16, 8)) -> np.ndarray:
    """L2-normalised, mean-centred colour thumbnails ``(N, 3*h*w)``: a model-free feature for teaching.

    Good enough to rank a few true matches high (same clothes colours), poor enough that the ranking has
    errors worth reading.
    """
    from sisnet.data.transforms import decode_images

    x = decode_images([str(p) for p in paths], size_hw).float().flatten(1).numpy()
    x -= x.mean(axis=1, keepdims=True)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return x


class ProtocolExample:
    """A worked query: the query record, its labelled ranked gallery and its summary (see :func:`worked_query`)."""

    def __init__(self, query: Any, ranked: pd.DataFrame, summary: dict[str, float]) -> None:
        self.query, self.ranked, self.summary = query, ranked, summary

    def summary_frame(self) -> pd.DataFrame:
        """One row: the query's pid and camera (numbered from 1, as in the file names), then :attr:`summary`."""
        return pd.DataFrame([{"query_pid": int(self.query.pid), "query_camera": int(self.query.camid) + 1, **self.summary}])

    def ap_steps(self) -> str:
        """AP written out from the ranked list, as Markdown: each hit's precision, then their mean."""
        hits = self.ranked[self.ranked["status"] == STATUS_MATCH]
        if not len(hits):
            return "This query has no true match in the gallery: it is skipped by every metric."
        terms = " + ".join(f"{int(h)}/{int(r)}" for h, r in zip(hits["hit"], hits["rank"]))
        last = hits.iloc[-1]
        return (f"{len(hits)} true matches, at ranks {', '.join(str(int(r)) for r in hits['rank'])} among the items "
                f"that are not removed.\n\n"
                f"AP = ({terms}) / {len(hits)} = **{self.summary['AP']:.4f}**; "
                f"INP = {len(hits)} / {int(last['rank'])} = **{self.summary['INP']:.4f}**; "
                f"the first true match is at rank {self.summary['first_hit_rank']}, so this query counts as a hit "
                f"in CMC(k) for every k >= {self.summary['first_hit_rank']}.")


def protocol_example(ds: Any, seed: int = 0, feature_size_hw: tuple[int, int] = (16, 8)) -> ProtocolExample:
    """A worked query from ``ds``'s test split, ranked with :func:`pixel_features` (no trained model needed).

    The query is drawn (seeded) among those that show every rule: at least two true matches and at least one
    gallery image removed (same identity, same camera); failing that, among those with a true match.
    """
    g_pids = np.array([r.pid for r in ds.gallery])
    g_cams = np.array([r.camid for r in ds.gallery])

    def counts(q) -> tuple[int, int]:
        same = g_pids == q.pid
        return int((same & (g_cams != q.camid)).sum()), int((same & (g_cams == q.camid)).sum())

    rich = [q for q in ds.query if counts(q)[0] >= 2 and counts(q)[1] >= 1]
    pool = rich or [q for q in ds.query if counts(q)[0] >= 1]
    if not pool:
        raise ValueError("No query of this dataset has a true match in another camera; nothing to show.")
    query = pool[int(np.random.default_rng(seed).integers(len(pool)))]
    feats = pixel_features([query.path, *[r.path for r in ds.gallery]], feature_size_hw)
    distances = 1.0 - feats[1:] @ feats[0]  # cosine distance, as the library's default metric
    ranked, summary = worked_query(distances, query.pid, query.camid, g_pids, g_cams)
    return ProtocolExample(query, ranked, summary)
