"""CMC / mAP / mINP under the standard Market-1501 protocol, vectorised with torch.

Protocol (the one torchreid and fast-reid follow)
-------------------------------------------------
For every query ``q``:

* gallery items with the same pid **and** the same camera as ``q`` are removed ("invalid");
* the remaining ("valid") items are ranked by increasing distance; **ties are broken by gallery
  index**, i.e. the order is exactly ``np.argsort(distmat[q], kind="stable")`` restricted to the
  valid items -- this is the documented tie rule, and the fast path reproduces it exactly;
* the true matches are the valid items with the same pid (so same pid, other camera);
* a query with no true match is skipped (it does not count in any average);
* ``AP = mean over hits h (1-based) of h / rank_h`` (precision at each hit, ``rank_h`` 1-based);
* ``CMC[r] = 1`` if the first hit is at (0-based) position ``<= r``; averaged over valid queries;
* ``INP = num_hits / rank_of_last_hit`` (fast-reid's mINP).

Distractors (pid 0 in Market-1501) are ordinary valid non-matching gallery items; junk (pid -1)
is expected to have been dropped by the data loader already (``sisnet.data`` does).

Why hand-written
----------------
torchreid/fast-reid ship a Cython evaluator (needs a compiler) and a per-query NumPy loop (slow).
Neither is importable without their whole package, and both sort every row. AP, CMC and INP only
depend on the *position of each true match among the valid items*:
``position_t = #{valid k : (d_k, k) < (S_t, j_t)}`` (lexicographic: distance, then gallery index --
the stable rule), where ``S_0 <= S_1 <= ...`` are the query's ``m`` match distances (``m`` is small,
~10-30) and ``j_t`` their gallery indices. Counting needs no sort of the row, and its cost must not
depend on the model: an earlier version located only the items up to the last match, which is a few
% of the row for a good model but most of it for a weak one (as slow as the literal loop at
mINP 0.002), and a batched ``torch.searchsorted`` of every item costs ~26 ns per item.

So each row is counted with a histogram on a grid laid over its matches:

1. every distance is mapped to one of ``C`` cells by a monotone map (``(d - S_0) * scale``, clamped,
   floored; ~1k-4k cells between the first and the last match; a handful of cheap vectorised
   passes over the chunk and one ``bincount``). Floating-point rounding keeps the map monotone, so
   an item in a lower cell than a match's cell is strictly closer, one in a higher cell strictly
   farther: a cumulative sum of the histogram gives each match the count of items in lower cells;
2. only the items that share a cell with a match (about 0.1-1 % of them) are compared with that
   match exactly, distance and gallery index, with the dtype's own comparisons;
3. invalid items (same pid and camera, a few per query, known from the pid lists) are taken out of
   the histogram and skipped in step 2.

All positions are integers, so the metrics equal the stable-argsort definition bit for bit, at
any model quality and for any float dtype; ``+inf`` distances are allowed (they fall in the last
cell). Queries are processed in chunks sized to stay in cache. Everything is plain torch, so the
same code runs on a CUDA tensor where it lies; :func:`evaluate_features` computes the distances
chunk by chunk on the device and brings back only the per-query results.

``max_rank`` larger than the gallery
------------------------------------
torchreid warns and truncates the CMC to the gallery size. The contract here is a CMC of length
``max_rank``, so we warn and keep the length: every valid query has its first hit within the
gallery, hence ``cmc[r] == cmc[num_gallery - 1] == 1.0`` for ``r >= num_gallery`` (i.e. the curve
is padded with its last value).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from sisnet.metrics.distance import check_features, compute_distance, distance_blocks

__all__ = ["evaluate_rank", "evaluate_features", "DEFAULT_CHUNK_BYTES", "ordered_u32"]

#: Budget for the per-chunk working set (distance chunk, cell indices, flags, per-row tables), in
#: bytes. Small on purpose: the passes over a chunk then run in the CPU's cache.
DEFAULT_CHUNK_BYTES = 16 * 2**20

_FLOAT32_EXACT = 2**24  # integers below this are exact in float32 (row offsets of the cell grid)


def _as_tensor(x: Any, name: str, keep_device: bool = False) -> torch.Tensor:
    """numpy / torch / list -> torch tensor without copying when possible (on the CPU unless ``keep_device``)."""
    if isinstance(x, torch.Tensor):
        return x.detach() if keep_device else x.detach().cpu()
    arr = np.asarray(x)
    if arr.dtype == object:
        raise TypeError(f"{name} must be a numeric array (numpy, torch or list of numbers); got dtype=object.")
    if arr.dtype.byteorder not in ("=", "|"):
        arr = arr.astype(arr.dtype.newbyteorder("="))
    try:
        with warnings.catch_warnings():  # read-only arrays are fine: nothing here writes to them
            warnings.simplefilter("ignore", UserWarning)
            return torch.from_numpy(arr)
    except ValueError:  # negative strides (e.g. a[:, ::-1]): one contiguous copy
        return torch.from_numpy(np.ascontiguousarray(arr))
    except TypeError:  # a dtype torch lacks (e.g. float128, uint32 on old torch)
        kind = np.float64 if arr.dtype.kind == "f" else np.int64
        return torch.from_numpy(arr.astype(kind))


def _as_ids(x: Any, name: str, expected_len: int | None = None) -> torch.Tensor:
    t = _as_tensor(x, name)
    if t.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one id per row/column of distmat); got shape {tuple(t.shape)}.")
    if t.is_floating_point():
        if not torch.equal(t, t.round()):
            raise ValueError(f"{name} must hold integer ids; got non-integer values. Pass pids/camids as ints.")
    elif t.dtype == torch.bool or t.is_complex():
        raise TypeError(f"{name} must hold integer ids; got dtype {t.dtype}.")
    t = t.to(torch.int64)
    if expected_len is not None and t.numel() != expected_len:
        raise ValueError(
            f"{name} has {t.numel()} entries but distmat implies {expected_len}; distmat must be "
            f"(num_query, num_gallery) with rows matching q_pids/q_camids and columns g_pids/g_camids."
        )
    return t


def ordered_u32(x: torch.Tensor) -> torch.Tensor:
    """float32 -> int64 in [0, 2**32) with the same order as the floats (-0.0 mapped to +0.0); used by re-ranking."""
    u = (x + 0.0).view(torch.int32).to(torch.int64) & 0xFFFFFFFF
    return torch.where(u >= 2**31, 0xFFFFFFFF - u, u + 2**31)


@dataclass
class _Ids:
    """Ids and per-query candidate lists (same-pid gallery items), on the evaluation device."""

    q_code: torch.Tensor      # (Q,) code of the (pid, camera) pair: invalid item <=> same code
    g_code: torch.Tensor      # (G,)
    q_cam: torch.Tensor       # (Q,)
    g_cam: torch.Tensor       # (G,)
    g_order: torch.Tensor     # (G,) gallery indices sorted by pid (ascending index within a pid)
    cand_start: torch.Tensor  # (Q,) where each query's pid starts in g_order
    cand_count: torch.Tensor  # (Q,) how many gallery items have that pid


def _prepare_ids(qp: torch.Tensor, qc: torch.Tensor, gp: torch.Tensor, gc: torch.Tensor, device) -> _Ids:
    """Candidate lists and (pid, camera) codes from the CPU id tensors, moved to ``device``."""
    # numpy: torch's multi-threaded 1-D sort has a large fixed cost on some builds (~190 ms measured
    # for 82k ids with 2 threads vs 1 ms with one).
    g_order = torch.from_numpy(np.argsort(gp.numpy(), kind="stable"))
    g_sorted = gp[g_order]
    start = torch.searchsorted(g_sorted, qp, right=False)
    stop = torch.searchsorted(g_sorted, qp, right=True)
    pairs = np.concatenate([np.stack([qp.numpy(), qc.numpy()], 1), np.stack([gp.numpy(), gc.numpy()], 1)])
    code = torch.from_numpy(np.unique(pairs, axis=0, return_inverse=True)[1].reshape(-1).astype(np.int64))
    nq = qp.numel()
    return _Ids(*(t.to(device) for t in (code[:nq], code[nq:], qc, gc, g_order, start, stop - start)))


def _num_cells(num_g: int) -> int:
    """Cells of the per-row grid: enough that few items share a cell with a match, few enough to stay cheap."""
    # ~G/16 (power of two, 64..4096): 1024 for Market-1501, 4096 for MSMT17; measured on both, the
    # time is flat within a factor 2 of this choice (fewer cells: more exact comparisons; more: larger tables).
    return int(min(4096, max(64, 1 << max(0, -(-num_g // 16) - 1).bit_length())))


def _bytes_per_row(num_g: int, itemsize: int, cells: int) -> int:
    """Working set of one query row: distances + mapped copy + cell index + flag, and the row's tables."""
    return num_g * (2 * itemsize + 4 + 1) + (cells + 1) * 41


def _expand(start: torch.Tensor, count: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Flatten ranges ``[start_i, start_i + count_i)``: (owner i of each element, element)."""
    owner = torch.repeat_interleave(torch.arange(count.numel(), device=count.device), count)
    first = torch.cumsum(count, 0) - count
    step = torch.arange(owner.numel(), device=count.device) - first[owner]
    return owner, start[owner] + step


def _flatnonzero(mask: torch.Tensor) -> torch.Tensor:
    """Indices of the true entries of a 1-D bool tensor (NumPy's on the CPU: ~4x faster than torch's, measured)."""
    if mask.device.type == "cpu":
        return torch.from_numpy(np.flatnonzero(mask.numpy()))
    return mask.nonzero().squeeze(1)


def _match_positions(
    d: torch.Tensor, S: torch.Tensor, J: torch.Tensor, m: torch.Tensor, cand: torch.Tensor,
    is_invalid: torch.Tensor, q_code: torch.Tensor, g_code: torch.Tensor, cells: int,
) -> torch.Tensor:
    """0-based position of each match among the valid items of its row, ``(rows, width)`` int64.

    ``d`` (rows, G) distances; ``S``/``J`` (rows, width) the match distances sorted by (distance,
    gallery index) and their gallery indices, the first ``m[i]`` slots real; ``cand``/``is_invalid``
    the rows' same-pid gallery items and which of them are invalid; ``q_code`` (rows,) / ``g_code``
    (G,) the (pid, camera) codes. See the module docstring for the method.
    """
    rows, width = S.shape
    num_g = d.shape[1]
    dev = d.device
    stride = cells + 1                      # per-row stride in the flat tables; slot `cells` = padding
    real = torch.arange(width, device=dev)[None, :] < m[:, None]
    # 1. monotone map of every distance to a cell: [S_0, S_last] -> [1, cells - 2], the rest clamped
    lo = S[:, :1]
    hi = S.gather(1, (m - 1).clamp(min=0)[:, None])
    lo = torch.where(torch.isfinite(lo), lo, torch.zeros_like(lo))  # finite lo: d - lo is never NaN
    scale = (cells - 3) / (hi - lo)
    # one match, equal matches, or an infinite one: any finite positive scale keeps the map monotone
    scale = torch.where(torch.isfinite(scale) & (scale > 0), scale, torch.full_like(scale, 2.0**100))
    row_off = torch.arange(rows, device=dev, dtype=d.dtype)[:, None] * stride
    x = torch.sub(d, lo)
    x.mul_(scale).clamp_(-1.0, cells - 2.0).add_(row_off + 1.0)   # in [row*stride, row*stride + cells - 1]
    if torch.isnan(x.sum()):  # x is clamped, so its sum is NaN only for a NaN distance
        raise ValueError("distmat contains NaN; check the features (NaN/inf in embeddings) before computing distances.")
    cell = torch.empty(x.shape, dtype=torch.int32, device=dev)
    cell.copy_(x)                           # floor (x >= 0)
    del x
    flat = cell.view(-1)
    hist = torch.bincount(flat, minlength=rows * stride)
    # 3. invalid items leave the histogram
    inv_cells = cell.gather(1, cand)[is_invalid]
    if inv_cells.numel():
        hist -= torch.bincount(inv_cells, minlength=rows * stride)
    # cells of the matches (padding slots -> the row's padding cell); sorted within each row
    row_base = torch.arange(rows, device=dev)[:, None] * stride
    cT = torch.where(real, cell.gather(1, J).to(torch.int64), row_base + cells).view(-1)
    cum = hist.view(rows, stride).cumsum(1).view(-1)
    pos = (cum[cT] - hist[cT]).view(rows, width)   # items in lower cells
    # 2. items sharing a cell with a match: exact comparison with the match(es) of that cell
    real_f = real.view(-1)
    starts = real_f.clone()
    starts[1:] &= cT[1:] != cT[:-1]         # first match slot of each occupied cell
    first = torch.zeros(rows * stride, dtype=torch.int64, device=dev)
    first[cT[starts]] = torch.arange(rows * width, device=dev)[starts]
    count = torch.bincount(cT[real_f], minlength=rows * stride)
    p = _flatnonzero((count > 0).index_select(0, flat))  # flat positions of those items
    c_k = flat.index_select(0, p)
    t = first.index_select(0, c_k)
    n = count.index_select(0, c_k)
    if bool((n > 1).any()):                 # several matches in one cell: one pair per (item, match)
        owner, t = _expand(t, n)
        p = p.index_select(0, owner)
    r = torch.div(p, num_g, rounding_mode="floor")
    k = p - r * num_g
    dk = d.reshape(-1).index_select(0, p)
    St = S.view(-1).index_select(0, t)
    before = (dk < St) | ((dk == St) & (k < J.view(-1).index_select(0, t)))
    before &= g_code.index_select(0, k) != q_code.index_select(0, r)
    pos += torch.bincount(t[before], minlength=rows * width).view(rows, width)
    return pos


def _chunk_metrics(d: torch.Tensor, a: int, ids: _Ids, cells: int) -> tuple[torch.Tensor, ...]:
    """``(first_pos, AP, INP, num_hits)`` of query rows ``a .. a + len(d)`` (all on ``d``'s device)."""
    rows, num_g = d.shape
    dev = d.device
    cnt = ids.cand_count[a : a + rows]
    width = int(cnt.max())
    if width == 0:  # no query of this chunk has its pid in the gallery
        zeros = torch.zeros(rows, dtype=torch.float64, device=dev)
        if torch.isnan(d).any():
            raise ValueError("distmat contains NaN; check the features (NaN/inf in embeddings) before computing distances.")
        return torch.full((rows,), -1, dtype=torch.int64, device=dev), zeros, zeros, cnt * 0
    # (rows, width) candidate gallery indices with the query's pid, ascending; padding -> col 0
    offs = torch.arange(width, device=dev)
    in_list = offs[None, :] < cnt[:, None]
    flat = (ids.cand_start[a : a + rows, None] + offs[None, :]).clamp_(max=num_g - 1)
    cand = torch.where(in_list, ids.g_order[flat], torch.zeros((), dtype=torch.int64, device=dev))
    same_cam = ids.g_cam[cand] == ids.q_cam[a : a + rows, None]
    is_match = in_list & ~same_cam
    m = is_match.sum(1)
    # Sorted match keys: real matches first, ordered by (distance, gallery index); padding at +inf.
    key_d = torch.where(is_match, d.gather(1, cand), torch.tensor(float("inf"), dtype=d.dtype, device=dev))
    o1 = torch.sort(key_d, dim=1, stable=True).indices           # by distance; cand already by index
    o2 = torch.sort((~is_match).gather(1, o1).to(torch.uint8), dim=1, stable=True).indices
    order = o1.gather(1, o2)
    S = key_d.gather(1, order).contiguous()
    J = cand.gather(1, order).contiguous()
    pos = _match_positions(d, S, J, m, cand, in_list & same_cam, ids.q_code[a : a + rows], ids.g_code, cells)
    # Metrics from positions (0-based); only the first m[i] slots are real matches.
    real = offs[None, :] < m[:, None]
    hits = torch.arange(1, width + 1, dtype=torch.float64, device=dev)[None, :]
    prec = hits / (pos.to(torch.float64) + 1.0)
    ap = torch.where(real, prec, torch.zeros((), dtype=torch.float64, device=dev)).sum(1)
    ap = ap / m.to(torch.float64).clamp(min=1)
    last = pos.gather(1, (m - 1).clamp(min=0)[:, None]).squeeze(1)
    inp = m.to(torch.float64) / (last.to(torch.float64) + 1.0)
    first_pos = torch.where(m > 0, pos[:, 0], torch.full_like(m, -1))
    return first_pos, ap, inp, m


def _summarise(first_pos, ap, inp, num_hits, max_rank: int) -> dict[str, Any]:
    """The averages over valid queries, from the per-query results (host tensors)."""
    valid = num_hits > 0
    num_valid = int(valid.sum())
    if num_valid == 0:
        raise RuntimeError(
            "No valid query: no query has a gallery item with the same pid in a different camera. "
            "Check that q_pids/g_pids use the same id space and that camids are not all equal."
        )
    fp = first_pos[valid]
    hist = torch.bincount(fp.clamp(max=max_rank), minlength=max_rank + 1)[:max_rank]
    cmc = (hist.cumsum(0).to(torch.float64) / num_valid).numpy()
    return {
        "cmc": cmc,
        "mAP": float(ap[valid].mean()),
        "mINP": float(inp[valid].mean()),
        "num_valid_queries": num_valid,
    }


def _check_max_rank(max_rank: Any, num_g: int, stacklevel: int) -> int:
    if isinstance(max_rank, bool) or not isinstance(max_rank, (int, np.integer)) or max_rank < 1:
        raise ValueError(f"max_rank must be an integer >= 1 (e.g. 50); got {max_rank!r}.")
    if max_rank > num_g:
        warnings.warn(
            f"max_rank={max_rank} exceeds the gallery size {num_g}; cmc[r] for r >= {num_g} repeats "
            f"cmc[{num_g - 1}] (= 1.0). Pass max_rank <= {num_g} to silence this.",
            stacklevel=stacklevel + 1,
        )
    return int(max_rank)


class _Threads:
    """Run with ``n`` torch intra-op threads (``None``: leave torch's setting), restored afterwards."""

    def __init__(self, n: int | None):
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ValueError(f"num_threads must be None or an integer >= 1; got {n!r}.")
        self.n, self.prev = n, torch.get_num_threads()

    def __enter__(self):
        if self.n is not None and self.n != self.prev:
            torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        if torch.get_num_threads() != self.prev:
            torch.set_num_threads(self.prev)


def evaluate_rank(
    distmat: Any,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    max_rank: int = 50,
    *,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    num_threads: int | None = 1,
) -> dict[str, Any]:
    """CMC, mAP and mINP of a query-gallery distance matrix (Market-1501 protocol, see module doc).

    Args:
        distmat: ``(Q, G)`` distances (smaller = more similar), numpy or torch, any float dtype
            (integers are converted to float64). NaN is refused; ``+inf`` is allowed. A CUDA tensor
            is evaluated on its device (only per-query results come back).
        q_pids, q_camids: ``(Q,)`` integer person / camera ids of the queries.
        g_pids, g_camids: ``(G,)`` integer person / camera ids of the gallery.
        max_rank: length of the returned CMC curve (>= 1).
        chunk_bytes: working-set budget per query chunk (memory/speed trade-off).
        num_threads: torch intra-op threads used inside the call (restored afterwards); ``None``
            keeps torch's setting. Default 1: the work is memory-bound, so on an idle 2-core machine
            2 threads gain only ~10%, while on cores shared with other processes (a training run,
            data-loader workers) OpenMP's waiting threads made 2-thread calls 3-15x slower than
            1-thread ones (measured with an earlier version of this evaluator).

    Returns:
        ``{"cmc": np.ndarray (max_rank,) float64 fractions, "mAP": float, "mINP": float,
        "num_valid_queries": int}``.
    """
    with _Threads(num_threads):
        return _evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank, chunk_bytes)


def _evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank, chunk_bytes) -> dict[str, Any]:
    dist = _as_tensor(distmat, "distmat", keep_device=True)
    if dist.ndim != 2:
        raise ValueError(f"distmat must be 2-D (num_query, num_gallery); got shape {tuple(dist.shape)}.")
    if dist.is_complex() or dist.dtype == torch.bool:
        raise TypeError(f"distmat must be real-valued distances; got dtype {dist.dtype}.")
    if not dist.is_floating_point():
        dist = dist.to(torch.float64)
    elif dist.dtype in (torch.float16, torch.bfloat16):
        dist = dist.float()  # exact widening: order and ties are unchanged
    num_q, num_g = dist.shape
    if num_q == 0 or num_g == 0:
        raise ValueError(f"distmat is empty (shape {tuple(dist.shape)}); need at least one query and one gallery item.")
    qp = _as_ids(q_pids, "q_pids", num_q)
    gp = _as_ids(g_pids, "g_pids", num_g)
    qc = _as_ids(q_camids, "q_camids", num_q)
    gc = _as_ids(g_camids, "g_camids", num_g)
    max_rank = _check_max_rank(max_rank, num_g, stacklevel=3)  # the caller of evaluate_rank
    ids = _prepare_ids(qp, qc, gp, gc, dist.device)
    cells = _num_cells(num_g)
    chunk = _chunk_rows(num_g, dist.dtype, cells, chunk_bytes)
    parts = []
    for a in range(0, num_q, chunk):
        d = dist[a : a + chunk]
        parts.append(_chunk_metrics(d if d.is_contiguous() else d.contiguous(), a, ids, cells))
    return _summarise(*(torch.cat(x).cpu() for x in zip(*parts)), max_rank)


def _chunk_rows(num_g: int, dtype: torch.dtype, cells: int, chunk_bytes: int) -> int:
    """Query rows per chunk: the working-set budget, and exact float32 row offsets of the cell grid."""
    rows = max(1, chunk_bytes // _bytes_per_row(num_g, torch.empty(0, dtype=dtype).element_size(), cells))
    return int(min(rows, _FLOAT32_EXACT // (cells + 1) - 1))  # the grid's row offsets stay exact float32 integers


def evaluate_features(
    qf: Any,
    gf: Any,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    metric: str = "cosine",
    max_rank: int = 50,
    *,
    device: str | torch.device | None = None,
    chunk_bytes: int = 256 * 2**20,
) -> dict[str, Any]:
    """:func:`evaluate_rank` of the distances between query and gallery features, on ``device``.

    On CUDA (the default when it is available) the distances are computed chunk by chunk on the
    device and each chunk is evaluated there, so the ``(Q, G)`` matrix is never held whole and only
    the per-query results come back to the host. On the CPU this is exactly
    ``evaluate_rank(compute_distance(qf, gf, metric), ...)``.

    Args:
        qf, gf: ``(Q, D)`` / ``(G, D)`` features (numpy or torch, any device).
        metric: ``"cosine"`` or ``"euclidean"``, as in :func:`sisnet.metrics.compute_distance`.
        device: ``"cuda"``, ``"cuda:1"``, ``"cpu"``...; ``None``: CUDA if available, else CPU.
        chunk_bytes: device working-set budget per query chunk (CUDA only).
    """
    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if dev.type == "cpu":
        return evaluate_rank(compute_distance(qf, gf, metric=metric), q_pids, g_pids, q_camids, g_camids, max_rank)
    return _evaluate_on_device(qf, gf, q_pids, g_pids, q_camids, g_camids, metric, max_rank, dev, chunk_bytes)


def _evaluate_on_device(qf, gf, q_pids, g_pids, q_camids, g_camids, metric, max_rank, dev, chunk_bytes):
    """Distance blocks computed and evaluated on ``dev``; only per-query results go to the host."""
    q, g = check_features(qf, gf, metric, device=dev)
    num_q, num_g = q.shape[0], g.shape[0]
    qp, gp = _as_ids(q_pids, "q_pids", num_q), _as_ids(g_pids, "g_pids", num_g)
    qc, gc = _as_ids(q_camids, "q_camids", num_q), _as_ids(g_camids, "g_camids", num_g)
    max_rank = _check_max_rank(max_rank, num_g, stacklevel=3)
    ids = _prepare_ids(qp, qc, gp, gc, dev)
    cells = _num_cells(num_g)
    rows = _chunk_rows(num_g, torch.float32, cells, chunk_bytes)
    parts = [
        tuple(x.cpu() for x in _chunk_metrics(block, a, ids, cells))
        for a, block in distance_blocks(q, g, metric, rows)
    ]
    return _summarise(*(torch.cat(x) for x in zip(*parts)), max_rank)
