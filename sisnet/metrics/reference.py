"""The literal evaluators and problem generators that tests and the benchmark compare against.

* :func:`make_features` / :func:`make_eval_problem`: synthetic ReID problems laid out like a test
  split (identities in several cameras, distractors, noisy features);
* :func:`reference_evaluate_rank`: the literal per-query NumPy evaluator (stable argsort per row);
* :func:`reference_re_ranking`: the dense k-reciprocal re-ranking algorithm as published.

They are deliberately simple and slow; :mod:`sisnet.benchmark` times the fast implementations
against them and the tests check that both give the same results.
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "make_eval_problem",
    "make_features",
    "reference_evaluate_rank",
    "reference_re_ranking",
]


# --------------------------------------------------------------------------------------------
# Synthetic ReID problems
# --------------------------------------------------------------------------------------------
def make_features(
    num_query: int,
    num_gallery: int,
    num_ids: int,
    num_cams: int,
    dim: int = 64,
    distractor_frac: float = 0.18,
    seed: int = 0,
    noise: float = 0.9,
    cam_shift: float = 0.5,
) -> dict[str, np.ndarray]:
    """Noisy identity features laid out like a ReID test split.

    Each identity appears in 2..``num_cams`` cameras; the gallery holds several images per
    identity spread over its cameras, plus ``distractor_frac`` of the gallery as distractors
    (pid 0, features of unseen identities); every query is one image of an identity in one of
    its cameras. A feature is ``identity centre + camera shift + noise`` (L2-normalised), so
    same-camera images are easier than cross-camera ones and ranks are realistic (many, but not
    all, first hits at rank 1).

    Returns:
        dict with ``qf (Q, dim)``, ``gf (G, dim)`` float32 and ``q_pids, g_pids, q_camids, g_camids``
        int64.
    """
    rng = np.random.default_rng(seed)
    num_distr = int(round(distractor_frac * num_gallery))
    num_id_gallery = num_gallery - num_distr
    if num_id_gallery < num_ids or num_query < 1 or num_ids < 1 or num_cams < 2:
        raise ValueError("make_features: need num_gallery*(1-distractor_frac) >= num_ids, num_query >= 1, num_cams >= 2")
    pids = np.arange(1, num_ids + 1)
    # cameras of each identity (2..num_cams), as a boolean (num_ids, num_cams) table
    ncam = rng.integers(2, num_cams + 1, size=num_ids)
    cams_of = np.zeros((num_ids, num_cams), dtype=bool)
    for i, n in enumerate(ncam):
        cams_of[i, rng.choice(num_cams, size=n, replace=False)] = True
    # gallery images: every (id, cam) slot gets >= 1, the rest spread at random over slots
    slots = np.argwhere(cams_of)  # (num_slots, 2) [id_index, cam]
    if len(slots) > num_id_gallery:
        raise ValueError("make_features: too few gallery images for the identity/camera slots")
    extra = rng.integers(0, len(slots), size=num_id_gallery - len(slots))
    per_slot = 1 + np.bincount(extra, minlength=len(slots))
    g_slot = np.repeat(np.arange(len(slots)), per_slot)
    # queries: one slot per query, drawn from the slots (ids get queries in several cameras)
    q_slot = rng.permutation(np.resize(rng.permutation(len(slots)), num_query))
    centres = rng.standard_normal((num_ids, dim)).astype(np.float32)
    cam_vec = rng.standard_normal((num_cams, dim)).astype(np.float32)
    # identity-specific difficulty: some people are easy, some hard (spreads rank distributions)
    difficulty = rng.uniform(0.6, 1.4, size=num_ids).astype(np.float32)

    def feats(slot_idx: np.ndarray) -> np.ndarray:
        ids, cams = slots[slot_idx, 0], slots[slot_idx, 1]
        f = centres[ids] + cam_shift * cam_vec[cams]
        f += noise * difficulty[ids, None] * rng.standard_normal(f.shape).astype(np.float32)
        return f

    gf_id = feats(g_slot)
    g_pid_id = pids[slots[g_slot, 0]]
    g_cam_id = slots[g_slot, 1]
    d_cams = rng.integers(0, num_cams, size=num_distr)
    d_centres = rng.standard_normal((num_distr, dim)).astype(np.float32)
    gf_d = d_centres + cam_shift * cam_vec[d_cams] + noise * rng.standard_normal((num_distr, dim)).astype(np.float32)
    gf = np.concatenate([gf_id, gf_d])
    g_pids = np.concatenate([g_pid_id, np.zeros(num_distr, dtype=np.int64)])
    g_camids = np.concatenate([g_cam_id, d_cams])
    perm = rng.permutation(num_gallery)
    gf, g_pids, g_camids = gf[perm], g_pids[perm], g_camids[perm]
    qf = feats(q_slot)
    q_pids = pids[slots[q_slot, 0]]
    q_camids = slots[q_slot, 1]
    norm = lambda x: (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)  # noqa: E731
    return {
        "qf": norm(qf),
        "gf": norm(gf),
        "q_pids": q_pids.astype(np.int64),
        "g_pids": g_pids.astype(np.int64),
        "q_camids": q_camids.astype(np.int64),
        "g_camids": g_camids.astype(np.int64),
    }


def make_eval_problem(
    num_query: int = 3368,
    num_gallery: int = 15913,
    num_ids: int = 751,
    num_cams: int = 6,
    dim: int = 64,
    seed: int = 0,
    **kwargs: Any,
) -> dict[str, np.ndarray]:
    """A Market-sized (default) evaluation problem: ``distmat (Q, G)`` float32 cosine distances + ids."""
    from sisnet.metrics import compute_distance

    f = make_features(num_query, num_gallery, num_ids, num_cams, dim=dim, seed=seed, **kwargs)
    distmat = compute_distance(f.pop("qf"), f.pop("gf"), metric="cosine")
    return {"distmat": distmat, **f}


# --------------------------------------------------------------------------------------------
# References
# --------------------------------------------------------------------------------------------
def reference_evaluate_rank(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    max_rank: int = 50,
) -> dict[str, Any]:
    """The literal per-query NumPy evaluator (torchreid's Python algorithm), the benchmark's reference.

    Per query: stable argsort of the row, drop same-pid-same-camera items, cumulative sums of the
    match vector. Ties are broken by gallery index (stable sort), the rule ``evaluate_rank`` uses.
    """
    distmat = np.asarray(distmat)
    num_q, num_g = distmat.shape
    all_cmc, all_ap, all_inp = [], [], []
    for i in range(num_q):
        order = np.argsort(distmat[i], kind="stable")
        keep = ~((g_pids[order] == q_pids[i]) & (g_camids[order] == q_camids[i]))
        raw = (g_pids[order][keep] == q_pids[i]).astype(np.int64)
        if not raw.any():
            continue
        cum = raw.cumsum()
        hit_pos = np.flatnonzero(raw)
        all_inp.append(cum[hit_pos[-1]] / (hit_pos[-1] + 1.0))
        cmc = (cum >= 1).astype(np.float64)
        if len(cmc) < max_rank:
            cmc = np.concatenate([cmc, np.full(max_rank - len(cmc), cmc[-1])])
        all_cmc.append(cmc[:max_rank])
        precision = cum / np.arange(1.0, len(cum) + 1.0)
        all_ap.append((precision * raw).sum() / raw.sum())
    if not all_cmc:
        raise RuntimeError("no valid query")
    return {
        "cmc": np.mean(all_cmc, axis=0),
        "mAP": float(np.mean(all_ap)),
        "mINP": float(np.mean(all_inp)),
        "num_valid_queries": len(all_cmc),
    }


def reference_re_ranking(
    qf: np.ndarray, gf: np.ndarray, k1: int = 20, k2: int = 6, lambda_value: float = 0.3
) -> np.ndarray:
    """The dense k-reciprocal re-ranking algorithm as published (Zhong et al. 2017), the reference.

    Holds the full ``N x N`` float32 distance matrix, its full argsort, a dense ``V`` and its
    query-expanded copy, and loops over images in Python -- the memory/time profile of the
    original code. The distance matrix is built from the same float32 blocks as
    ``sisnet.metrics.re_ranking`` uses (torch matmul, upper blocks mirrored: exactly symmetric, like
    the original's ``cdist``), so the comparison checks the algorithm rather than float32 rounding
    of two different BLAS calls (which can swap near-tied k-th neighbours), and the timing is not
    flattered by a slow distance routine.
    """
    import torch

    from sisnet.metrics.rerank import sq_dist_block

    feats = np.concatenate([qf, gf]).astype(np.float32)
    n, nq = len(feats), len(qf)
    ft = torch.from_numpy(feats)
    sq = (ft * ft).sum(1)
    dist = np.empty((n, n), dtype=np.float32)
    block = 4096
    for a in range(0, n, block):
        for b in range(a, n, block):
            d = sq_dist_block(ft[a : a + block], sq[a : a + block], ft[b : b + block], sq[b : b + block]).numpy()
            dist[a : a + block, b : b + block] = d
            if b != a:
                dist[b : b + block, a : a + block] = d.T
    np.fill_diagonal(dist, 0.0)
    dist /= dist.max(axis=0)  # column max ...
    dist = dist.T             # ... then transpose, as in the original code
    V = np.zeros((n, n), dtype=np.float32)
    rank = np.argsort(dist, axis=1).astype(np.int32)
    half = int(np.around(k1 / 2.0))
    for i in range(n):
        fwd = rank[i, : k1 + 1]
        back = rank[fwd, : k1 + 1]
        recip = fwd[np.where(back == i)[0]]
        expanded = recip
        for c in recip:
            c_fwd = rank[c, : half + 1]
            c_back = rank[c_fwd, : half + 1]
            c_recip = c_fwd[np.where(c_back == c)[0]]
            if len(np.intersect1d(c_recip, recip)) > 2.0 / 3.0 * len(c_recip):
                expanded = np.append(expanded, c_recip)
        expanded = np.unique(expanded)
        w = np.exp(-dist[i, expanded])
        V[i, expanded] = w / w.sum()
    dist = dist[:nq]
    if k2 != 1:
        V_qe = np.zeros_like(V)
        for i in range(n):
            V_qe[i] = V[rank[i, :k2]].mean(axis=0)
        V = V_qe
        del V_qe
    del rank
    inv_index = [np.where(V[:, j] != 0)[0] for j in range(n)]
    jaccard = np.zeros((nq, n), dtype=np.float32)
    for i in range(nq):
        temp_min = np.zeros(n, dtype=np.float32)
        nz = np.where(V[i] != 0)[0]
        for l in nz:
            rows = inv_index[l]
            temp_min[rows] += np.minimum(V[i, l], V[rows, l])
        jaccard[i] = 1.0 - temp_min / (2.0 - temp_min)
    final = jaccard * (1.0 - lambda_value) + dist * lambda_value
    return final[:, nq:]
