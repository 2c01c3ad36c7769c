"""k-reciprocal re-ranking (Zhong et al., "Re-ranking Person Re-identification with k-reciprocal
Encoding", CVPR 2017), with sparse neighbour sets so that MSMT17-sized problems fit in memory.

The algorithm (as in the paper and its reference code), over all ``N = Q + G`` images:

1. ``d(i, j)`` = squared Euclidean distance; the "original distance" is normalised per row by its
   maximum over all N images (the reference code divides by the column max of the symmetric
   matrix and transposes, which is the same thing): ``od(i, j) = d(i, j) / max_k d(i, k)``.
2. ``N(i, k)`` = the ``k`` nearest images of ``i`` (itself included). The k-reciprocal set
   ``R(i, k1) = {j in N(i, k1+1) : i in N(j, k1+1)}``; it is expanded with the half-size reciprocal
   set ``R(c, round(k1/2))`` of each candidate ``c in R(i, k1)`` whose overlap with ``R(i, k1)`` is
   more than 2/3 of its size.
3. ``V(i, j) = exp(-od(i, j)) / sum_j' exp(-od(i, j'))`` over the expanded set (0 elsewhere).
4. Local query expansion: ``V(i) <- mean of V(j) over j in N(i, k2)`` (skipped for ``k2 == 1``).
5. Jaccard distance ``J(i, j) = 1 - m / (2 - m)`` with ``m = sum_l min(V(i, l), V(j, l))``.
6. ``final = J * (1 - lambda) + od * lambda``, returned for query rows and gallery columns.

Why hand-written (and not the dense reference code): the dense version holds several ``N x N``
matrices (distances, argsort, V, expanded V) -- tens of GB at MSMT17 size. Here the ``N x N``
distances are only ever seen in blocks (symmetric blocked matmul + running top-k), V is a sparse
CSR matrix (``scipy.sparse``) with a few hundred non-zeros per row, and the Jaccard term is
accumulated per query chunk from V's column lists ("inverted index"), touching only non-zeros.
"""
from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from sisnet.metrics.rank import ordered_u32

__all__ = ["re_ranking", "sq_dist_block"]


def _features(x: Any, name: str) -> torch.Tensor:
    t = x.detach() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    if t.ndim != 2:
        raise ValueError(f"{name} must be 2-D (num_images, feature_dim); got shape {tuple(t.shape)}.")
    if t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"{name} must be real-valued features; got dtype {t.dtype}.")
    t = t.to(device="cpu", dtype=torch.float32).contiguous()
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or inf; check the model output before re-ranking.")
    return t


@contextlib.contextmanager
def _torch_threads(n: int | None):
    """Temporarily set torch's intra-op thread count (``None``: leave it)."""
    prev = torch.get_num_threads()
    if n is None or n == prev:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(prev)


def sq_dist_block(
    fa: torch.Tensor, sa: torch.Tensor, fb: torch.Tensor, sb: torch.Tensor, threads: int | None = None
) -> torch.Tensor:
    """Squared Euclidean distances ``(len(fa), len(fb))`` via one matmul (``threads``), clamped at 0."""
    with _torch_threads(threads):
        out = torch.mm(fa, fb.t())
    out.mul_(-2.0).add_(sa[:, None]).add_(sb[None, :]).clamp_(min=0.0)
    return out


def _knn_and_rowmax(
    feats: torch.Tensor, sq: torch.Tensor, k: int, block: int, num_q: int, qg_out: torch.Tensor,
    mm_threads: int | None = None,
):
    """Top-``k`` nearest neighbours (ascending distance, self first) with their distances, the row
    max of all N x N distances, and the raw query-gallery distances written into ``qg_out (Q, G)``.

    Symmetric blocked pass: each off-diagonal block ``d(I, J)`` is computed once and serves the
    rows of ``I`` and (transposed) the rows of ``J``; a running top-k is merged per block.
    """
    n = feats.shape[0]
    best_d = torch.full((n, k), float("inf"))
    best_i = torch.zeros((n, k), dtype=torch.int64)
    row_max = torch.zeros(n)

    def merge(r0: int, d: torch.Tensor, c0: int, transposed: bool) -> None:
        """Merge block ``d`` into the running top-k of its rows (its columns when ``transposed``)."""
        dim = 0 if transposed else 1  # the reduction dimension for this direction
        nrows, width = (d.shape[1], d.shape[0]) if transposed else d.shape
        rows = slice(r0, r0 + nrows)
        torch.maximum(row_max[rows], d.amax(dim), out=row_max[rows])
        thr = best_d[rows, k - 1]
        if bool(torch.isfinite(thr).all()):
            # Only entries below the current k-th best can enter; once every row has k neighbours
            # they are a small fraction: gather them sparsely (mask/nonzero on d's own contiguous
            # layout) and merge with one sort of (row, distance) keys instead of a topk of the block.
            ri, ci = (d < (thr[None, :] if transposed else thr[:, None])).nonzero(as_tuple=True)
            total = ri.numel()
            if total == 0:
                return
            if total <= nrows * width // 16:
                own_r, own_c = (ci, ri) if transposed else (ri, ci)
                all_r = torch.cat([torch.arange(nrows).repeat_interleave(k), own_r])
                all_v = torch.cat([best_d[rows].reshape(-1), d[ri, ci]])
                all_i = torch.cat([best_i[rows].reshape(-1), own_c + c0])
                # numpy for this 1-D sort: torch's multi-threaded 1-D sort measured ~190 ms here
                # (vs 10 ms single-threaded, 20 ms numpy) for a few 1e5 keys
                order = torch.from_numpy(np.argsort(((all_r << 32) | ordered_u32(all_v)).numpy()))
                cnt = torch.bincount(own_r, minlength=nrows) + k
                take = order[(torch.cumsum(cnt, 0) - cnt)[:, None] + torch.arange(k)]  # k smallest per row
                best_d[rows] = all_v[take]
                best_i[rows] = all_i[take]
                return
        dd = d.t().contiguous() if transposed else d
        v, i = torch.topk(dd, min(k, width), dim=1, largest=False, sorted=False)
        i = i + c0
        cat_d = torch.cat([best_d[rows], v], 1)
        cat_i = torch.cat([best_i[rows], i], 1)
        v2, sel = torch.topk(cat_d, k, dim=1, largest=False, sorted=True)
        best_d[rows] = v2
        best_i[rows] = cat_i.gather(1, sel)

    def to_qg(r0: int, d: torch.Tensor, c0: int, transposed: bool) -> None:
        """Copy the query-row x gallery-column part of block ``d`` into ``qg_out``."""
        nrows, width = (d.shape[1], d.shape[0]) if transposed else d.shape
        q1 = min(r0 + nrows, num_q)
        g0 = max(c0, num_q)
        if r0 < q1 and g0 < c0 + width:
            src = d[g0 - c0 :, : q1 - r0].t() if transposed else d[: q1 - r0, g0 - c0 :]
            qg_out[r0:q1, g0 - num_q : c0 + width - num_q] = src

    for a in range(0, n, block):
        fa, sa = feats[a : a + block], sq[a : a + block]
        for b in range(a, n, block):
            d = sq_dist_block(fa, sa, feats[b : b + block], sq[b : b + block], mm_threads)
            if a == b:
                d.fill_diagonal_(0.0)  # exact self-distance: every image is its own nearest neighbour
                merge(a, d, b, False)
                to_qg(a, d, b, False)
            else:
                merge(a, d, b, False)
                to_qg(a, d, b, False)
                merge(b, d, a, True)
                to_qg(b, d, a, True)
    return best_i, best_d, row_max


def _lookup_pairs(
    best_i: torch.Tensor, best_d: torch.Tensor, feats: torch.Tensor, sq: torch.Tensor, vi: torch.Tensor, vj: torch.Tensor
) -> torch.Tensor:
    """``d(vi, vj)``: read from the cached neighbour lists where present (nearly always), else computed."""
    n, k = best_i.shape
    order = torch.argsort(best_i, dim=1)
    keys = (torch.arange(n)[:, None] * n + best_i.gather(1, order)).view(-1)   # globally sorted
    vals = best_d.gather(1, order).view(-1)
    want = vi * n + vj
    pos = torch.searchsorted(keys, want).clamp_(max=keys.numel() - 1)
    found = keys[pos] == want
    out = torch.where(found, vals[pos], torch.zeros((), dtype=vals.dtype))
    miss = (~found).nonzero().squeeze(1)
    if miss.numel():
        out[miss] = _pair_sq_dist(feats, sq, vi[miss], vj[miss])
    return out


def _reciprocal_mask(nbr: torch.Tensor, chunk: int = 8192) -> torch.Tensor:
    """``mask[i, a]`` = image ``i`` is among the neighbours of its neighbour ``nbr[i, a]``."""
    n, k = nbr.shape
    out = torch.empty((n, k), dtype=torch.bool)
    for a in range(0, n, chunk):
        rows = torch.arange(a, min(n, a + chunk))
        back = nbr[nbr[rows]]  # (c, k, k)
        out[rows] = (back == rows[:, None, None]).any(-1)
    return out


def _expanded_sets(nbr: torch.Tensor, k1: int, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows/columns ``(i, j)`` of the k-reciprocal *expanded* set of every image (unique per row)."""
    n = nbr.shape[0]
    full = nbr[:, : k1 + 1]
    k_half = int(np.around(k1 / 2.0)) + 1
    half = nbr[:, :k_half]
    full_ok = _reciprocal_mask(full)              # R(i, k1) as a mask over full[i]
    half_ok = _reciprocal_mask(half)              # R(c, k1/2) as a mask over half[c]
    half_size = half_ok.sum(1)
    rows_out, cols_out = [], []
    pad = -1
    for a in range(0, n, chunk):
        rows = slice(a, min(n, a + chunk))
        r_set = torch.where(full_ok[rows], full[rows], pad)                # (c, K) R(i), -1 padded
        cand_ok = full_ok[rows]                                             # candidates = R(i)
        cand = full[rows]
        c_half = torch.where(half_ok[cand], half[cand], -2)                 # (c, K, kh) R(cand, k1/2)
        # |R(cand, k1/2) & R(i, k1)|: entries are unique in both sets, so count equal pairs.
        inter = (c_half[:, :, :, None] == r_set[:, None, None, :]).any(-1).sum(-1)  # (c, K)
        take = cand_ok & (inter.to(torch.float64) > (2.0 / 3.0) * half_size[cand].to(torch.float64))
        c_half = torch.where(take[:, :, None], c_half, pad).flatten(1)     # (c, K*kh)
        allj = torch.cat([r_set, c_half], 1)
        allj, _ = torch.sort(allj, dim=1)
        keep = allj >= 0
        keep[:, 1:] &= allj[:, 1:] != allj[:, :-1]                          # unique per row
        ri, ci = keep.nonzero(as_tuple=True)
        rows_out.append(ri + a)
        cols_out.append(allj[ri, ci])
    return torch.cat(rows_out), torch.cat(cols_out)


def _pair_sq_dist(feats: torch.Tensor, sq: torch.Tensor, i: torch.Tensor, j: torch.Tensor, chunk: int = 1 << 16) -> torch.Tensor:
    """``d(i[t], j[t])`` for index pairs (same formula as the blocked matmul; self-pairs exactly 0)."""
    out = torch.empty(i.numel())
    for a in range(0, i.numel(), chunk):
        ii, jj = i[a : a + chunk], j[a : a + chunk]
        dot = (feats[ii] * feats[jj]).sum(1)
        out[a : a + chunk] = (sq[ii] + sq[jj] - 2.0 * dot).clamp_(min=0.0)
    out[i == j] = 0.0
    return out


def re_ranking(
    qf: Any,
    gf: Any,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    *,
    block: int = 4096,
    jaccard_chunk: int = 256,
    other_threads: int | None = 1,
) -> np.ndarray:
    """k-reciprocal re-ranked query-gallery distance (see the module doc for the algorithm).

    Args:
        qf: ``(Q, D)`` query features (torch or numpy; any scale -- squared Euclidean is used, as in
            the original code; pass L2-normalised features for cosine-like behaviour).
        gf: ``(G, D)`` gallery features.
        k1: size of the k-reciprocal neighbourhood (>= 1). k2: local query expansion size (>= 1).
        lambda_value: weight of the original distance, in ``[0, 1]``.
        block: rows/columns per distance block (memory ~ ``3 * block**2 * 4`` bytes).
        jaccard_chunk: queries per Jaccard chunk.
        other_threads: torch threads for everything but the distance matmuls (which use torch's
            setting), restored afterwards; ``None`` = torch's setting throughout. Default 1: those
            steps are memory-bound, and with cores shared by other processes their 2-thread
            versions were measured several times slower than single-threaded ones.

    Returns:
        ``(Q, G)`` float32 numpy array: ``jaccard * (1 - lambda) + original * lambda``.
    """
    for name, v, lo in (("k1", k1, 1), ("k2", k2, 1)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo} (defaults k1=20, k2=6); got {v!r}.")
    if not (0.0 <= float(lambda_value) <= 1.0):
        raise ValueError(f"lambda_value must be in [0, 1] (default 0.3); got {lambda_value!r}.")
    q = _features(qf, "qf")
    g = _features(gf, "gf")
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"qf and gf have different feature dims ({q.shape[1]} vs {g.shape[1]}); use the same model/mode.")
    num_q, num_g = q.shape[0], g.shape[0]
    if num_q == 0 or num_g == 0:
        raise ValueError(f"need at least one query and one gallery feature; got Q={num_q}, G={num_g}.")
    if other_threads is not None and (
        isinstance(other_threads, bool) or not isinstance(other_threads, int) or other_threads < 1
    ):
        raise ValueError(f"other_threads must be None or an integer >= 1; got {other_threads!r}.")
    n = num_q + num_g
    k1_eff = min(int(k1), n - 1)  # more neighbours than images do not exist
    k = min(n, max(k1_eff + 1, int(k2)))
    mm_threads = torch.get_num_threads()
    with _torch_threads(other_threads):
        return _re_ranking(q, g, k1_eff, k, int(k2), float(lambda_value), block, jaccard_chunk, mm_threads)


def _re_ranking(q, g, k1_eff, k, k2, lambda_value, block, jaccard_chunk, mm_threads) -> np.ndarray:
    num_q, num_g = q.shape[0], g.shape[0]
    feats = torch.cat([q, g])
    n = feats.shape[0]
    sq = (feats * feats).sum(1)
    out = np.empty((num_q, num_g), dtype=np.float32)
    out_t = torch.from_numpy(out)  # first holds the raw query-gallery distances
    # a few times k: the expanded sets' members are almost always among them (cheap weight look-up)
    k_cache = min(n, max(k, 2 * (k1_eff + 1)))
    nbr, nbr_d, row_max = _knn_and_rowmax(feats, sq, k_cache, block, num_q, out_t, mm_threads)
    row_max = torch.where(row_max > 0, row_max, torch.ones_like(row_max))  # all-identical features

    # V: Gaussian-weighted, row-normalised k-reciprocal expanded sets (sparse, float32).
    vi, vj = _expanded_sets(nbr, k1_eff)
    w = torch.exp(-(_lookup_pairs(nbr, nbr_d, feats, sq, vi, vj) / row_max[vi]))
    w_sum = torch.zeros(n).index_add_(0, vi, w)
    w = w / w_sum[vi]
    V = sp.csr_matrix((w.numpy(), (vi.numpy(), vj.numpy())), shape=(n, n), dtype=np.float32)
    if k2 != 1:
        k2_eff = min(int(k2), n)
        qe_rows = np.repeat(np.arange(n), k2_eff)
        qe_cols = nbr[:, :k2_eff].reshape(-1).numpy()
        A = sp.csr_matrix((np.full(qe_rows.size, 1.0 / k2_eff, dtype=np.float32), (qe_rows, qe_cols)), shape=(n, n))
        V = (A @ V).tocsr()
    V.sum_duplicates()
    V.eliminate_zeros()
    V.sort_indices()

    # Jaccard over query rows x gallery rows, via the gallery part of V by column (inverted index).
    Vg = V[num_q:].tocsc()
    col_ptr = torch.from_numpy(Vg.indptr.astype(np.int64))
    col_rows = torch.from_numpy(Vg.indices.astype(np.int64))
    col_vals = torch.from_numpy(Vg.data.astype(np.float32))
    col_nnz = col_ptr[1:] - col_ptr[:-1]
    Vq = V[:num_q]
    q_ptr = torch.from_numpy(Vq.indptr.astype(np.int64))
    q_cols = torch.from_numpy(Vq.indices.astype(np.int64))
    q_vals = torch.from_numpy(Vq.data.astype(np.float32))

    lam = float(lambda_value)
    for a in range(0, num_q, jaccard_chunk):
        b = min(num_q, a + jaccard_chunk)
        rows = b - a
        e0, e1 = int(q_ptr[a]), int(q_ptr[b])
        e_row = torch.repeat_interleave(torch.arange(rows), q_ptr[a + 1 : b + 1] - q_ptr[a:b])
        e_col, e_val = q_cols[e0:e1], q_vals[e0:e1]
        cnt = col_nnz[e_col]
        acc = torch.zeros(rows * num_g)
        total = int(cnt.sum())
        if total:
            rep = torch.repeat_interleave(torch.arange(e_col.numel()), cnt)
            start = torch.repeat_interleave(col_ptr[e_col] - (torch.cumsum(cnt, 0) - cnt), cnt)
            src = start + torch.arange(total)
            acc.index_add_(0, e_row[rep] * num_g + col_rows[src], torch.minimum(e_val[rep], col_vals[src]))
        acc = acc.view(rows, num_g)
        jac = 1.0 - acc / (2.0 - acc)
        orig = out_t[a:b]
        orig.div_(row_max[a:b, None]).mul_(lam).add_(jac, alpha=1.0 - lam)
    return out
