"""Speed / memory benchmark: ``python -m sisnet.benchmark [--sections eval,rerank,train,extract,loader,gpu]
[--quick] [--repeats 5] [--step-ms MS] [--out results/benchmarks]`` (``--section`` is the same option).

Every speed figure is a *ratio against a reference measured in the same run*: the two are run
alternately (reference, fast, reference, fast, ...) and the median of the repetitions is used, so
machine noise affects both sides alike. Peak memory is measured in a fresh subprocess per case:
the kernel's peak-RSS counter is reset (``/proc/self/clear_refs``) after the inputs are built, so
the figure is the call's own high-water mark (``extra`` = peak minus RSS before the call).

Sections
--------
* ``eval``: :func:`sisnet.metrics.evaluate_rank` vs :func:`reference_evaluate_rank` (the literal
  per-query NumPy evaluator) on a Market-sized problem (identical results required), its peak
  extra memory, and an MSMT17-sized run (time, peak memory).
* ``rerank``: :func:`sisnet.metrics.re_ranking` vs :func:`reference_re_ranking` (the dense
  published algorithm) on 19,281 images (2048-d, ResNet-50's feature size), each repetition in
  fresh subprocesses (time + peak RSS); then the MSMT17-sized run (93,820 images, 256-d).
* ``train`` / ``extract``: the ``cpu`` profile's model; model-only vs end-to-end steps, SiSNet vs
  baseline step time (with the convolutions' arithmetic ratio beside it, and, in the full run, the same
  ratio at the paper's 256x128 input), feature-extraction images/s in the either-scale and cascaded modes.
* ``loader``: samples/s per data-loader worker at the paper profile's 256x128 (device-fed ``uint8`` path vs
  float32 views made in the worker), the workers needed to feed a step of ``--step-ms`` (measured on a GPU when
  there is one), shared memory per batch, the Market-1501 schedule's time at that step.
* ``gpu``: the paper-profile step on CUDA, fp32 vs bf16 AMP, contiguous vs channels_last, model-only vs
  end-to-end; one "skipped" row without a GPU.

The training sections live in :mod:`sisnet.benchmark_training`.

Problems are synthetic (:func:`make_features`): identities with several images in several cameras,
distractors, noisy features, so rank distributions are realistic. ``--quick`` shrinks the
re-ranking cases and repetitions (goals stated for Market size are then not judged).
On cores shared with other busy processes, multi-threaded torch calls slow down erratically;
the table's footnote records the load average so figures can be read in context.

The table (columns ``section, case, measured, reference, ratio, goal, holds``) is printed and
written to ``<out>/benchmarks.csv`` and ``<out>/benchmarks.md``.
"""
from __future__ import annotations

import argparse
import math
import time
from typing import Any, Callable

import numpy as np

from sisnet.benchmark_training import bench_gpu, bench_loader, bench_train, conv_macs, two_scale_arithmetic

__all__ = [
    "conv_macs",
    "two_scale_arithmetic",
    "make_eval_problem",
    "make_features",
    "reference_evaluate_rank",
    "main",
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

    from sisnet.metrics.rerank import _sq_dist_block

    feats = np.concatenate([qf, gf]).astype(np.float32)
    n, nq = len(feats), len(qf)
    ft = torch.from_numpy(feats)
    sq = (ft * ft).sum(1)
    dist = np.empty((n, n), dtype=np.float32)
    block = 4096
    for a in range(0, n, block):
        for b in range(a, n, block):
            d = _sq_dist_block(ft[a : a + block], sq[a : a + block], ft[b : b + block], sq[b : b + block]).numpy()
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


# --------------------------------------------------------------------------------------------
# Measurement helpers
# --------------------------------------------------------------------------------------------
COLUMNS = ["section", "case", "measured", "reference", "ratio", "goal", "holds"]
SECTIONS = ("eval", "rerank", "train", "extract", "loader", "gpu")
GiB = 2**30
MiB = 2**20

# Problem sizes: (num_query, num_gallery, num_ids, num_cams, feature_dim)
SIZES: dict[str, dict[str, tuple[int, int, int, int, int]]] = {
    "full": {
        "eval_market": (3368, 15913, 751, 6, 64),
        "eval_msmt": (11659, 82161, 3060, 15, 64),
        "rerank_market": (3368, 15913, 751, 6, 2048),
        "rerank_msmt": (11659, 82161, 3060, 15, 256),
    },
    "quick": {
        "eval_market": (3368, 15913, 751, 6, 64),
        "eval_msmt": (2000, 14000, 520, 15, 64),
        "rerank_market": (600, 2800, 140, 6, 256),
        "rerank_msmt": (1200, 8000, 300, 15, 128),
    },
    "tiny": {  # for the unit test: seconds, not minutes
        "eval_market": (120, 600, 40, 4, 32),
        "eval_msmt": (150, 800, 50, 6, 32),
        "rerank_market": (40, 160, 12, 4, 32),
        "rerank_msmt": (60, 240, 20, 6, 32),
    },
}


def _median(xs: list[float]) -> float:
    return float(np.median(np.asarray(xs, dtype=np.float64)))


def _fmt_s(seconds: float) -> str:
    return f"{seconds:.3g} s"


def _fmt_bytes(n: float) -> str:
    return f"{n / GiB:.2f} GiB" if n >= GiB else f"{n / MiB:.0f} MiB"


def _row(section: str, case: str, measured: str, reference: str, ratio: float | None, goal: str, holds: bool | None) -> dict:
    return {
        "section": section,
        "case": case,
        "measured": measured,
        "reference": reference,
        "ratio": None if ratio is None or not math.isfinite(ratio) else round(float(ratio), 3),
        "goal": goal,
        "holds": holds,
    }


def _alternate(reference: Callable[[], Any], fast: Callable[[], Any], repeats: int) -> tuple[list[float], list[float], Any, Any]:
    """Time ``reference`` and ``fast`` alternately ``repeats`` times each; returns both time lists and last outputs."""
    t_ref, t_fast = [], []
    out_ref = out_fast = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out_ref = reference()
        t_ref.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        out_fast = fast()
        t_fast.append(time.perf_counter() - t0)
    return t_ref, t_fast, out_ref, out_fast


def _rss_bytes(field: str) -> int | None:
    """``VmRSS`` / ``VmHWM`` of this process from /proc (Linux), in bytes."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter (Linux ``clear_refs`` 5) so the next peak is the call's own."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _child_case(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one case in this (fresh) process: build inputs, then time + peak memory of the call only."""
    import gc
    import resource

    case, size = spec["case"], tuple(spec["size"])
    nq, ng, ids, cams, dim = size
    if case in ("eval", "eval_ref"):
        from sisnet.metrics import evaluate_rank

        p = make_eval_problem(nq, ng, ids, cams, dim=dim, seed=spec.get("seed", 0))
        fn = evaluate_rank if case == "eval" else reference_evaluate_rank
        call = lambda: fn(p["distmat"], p["q_pids"], p["g_pids"], p["q_camids"], p["g_camids"])  # noqa: E731
        input_bytes = p["distmat"].nbytes
    elif case in ("rerank", "rerank_ref"):
        from sisnet.metrics import re_ranking

        p = make_features(nq, ng, ids, cams, dim=dim, seed=spec.get("seed", 0))
        fn = re_ranking if case == "rerank" else reference_re_ranking
        call = lambda: fn(p["qf"], p["gf"])  # noqa: E731
        input_bytes = p["qf"].nbytes + p["gf"].nbytes
    else:
        raise ValueError(f"unknown child case {case!r}")
    gc.collect()
    base = _rss_bytes("VmRSS")
    exact = _reset_peak_rss() and base is not None
    if not exact:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t0 = time.perf_counter()
    out = call()
    seconds = time.perf_counter() - t0
    peak = _rss_bytes("VmHWM") if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result: dict[str, Any] = {
        "seconds": seconds,
        "peak_bytes": peak,
        "base_bytes": base,
        "extra_bytes": max(0, peak - base),
        "input_bytes": input_bytes,
        "peak_exact": exact,
    }
    if case.startswith("eval"):
        result["metrics"] = {"cmc": [float(x) for x in out["cmc"]], "mAP": out["mAP"], "mINP": out["mINP"]}
    elif spec.get("save"):
        np.save(spec["save"], out)
    return result


def _run_child(spec: dict[str, Any], timeout_s: float = 3600) -> dict[str, Any]:
    """Run :func:`_child_case` in a fresh interpreter (memory peaks never mix between cases)."""
    import json
    import os
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "sisnet.benchmark", "--child", json.dumps(spec)]
    env = os.environ.copy()
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # importable without install
    env["PYTHONPATH"] = os.pathsep.join([pkg_parent] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout)[-2000:]
        return {"error": f"exit code {proc.returncode}: {tail.strip().splitlines()[-1] if tail.strip() else ''}",
                "stderr": tail}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------
def bench_eval(size_name: str, repeats: int, log: Callable[[str], None]) -> list[dict]:
    from sisnet.metrics import evaluate_rank

    rows = []
    nq, ng, ids, cams, dim = SIZES[size_name]["eval_market"]
    p = make_eval_problem(nq, ng, ids, cams, dim=dim, seed=0)
    args = (p["distmat"], p["q_pids"], p["g_pids"], p["q_camids"], p["g_camids"])
    evaluate_rank(*args)  # warm-up (thread pools, allocator)
    log(f"eval: {nq}x{ng} literal reference vs evaluate_rank, {repeats} alternating repeats")
    t_ref, t_fast, ref, got = _alternate(lambda: reference_evaluate_rank(*args), lambda: evaluate_rank(*args), repeats)
    sp_up = _median(t_ref) / _median(t_fast)
    label = f"{nq}x{ng} ({ids} ids + distractors, {cams} cams)"
    at_goal = (nq, ng) == SIZES["full"]["eval_market"][:2]  # the goal is stated for the Market size
    note = "" if at_goal else " (Market-size goal; not judged at this size)"
    rows.append(_row("eval", f"evaluate_rank time, {label}", _fmt_s(_median(t_fast)),
                     _fmt_s(_median(t_ref)) + " literal per-query NumPy", sp_up, "speed-up >= 5x" + note,
                     (sp_up >= 5) if at_goal else None))
    diff = max(float(np.abs(np.asarray(got["cmc"]) - np.asarray(ref["cmc"])).max()),
               abs(got["mAP"] - ref["mAP"]), abs(got["mINP"] - ref["mINP"]))
    rows.append(_row("eval", f"max |diff| of CMC/mAP/mINP vs literal, {label}",
                     f"{diff:.1e} (mAP {got['mAP']:.4f}, R1 {got['cmc'][0]:.4f}, mINP {got['mINP']:.4f})",
                     "literal per-query NumPy", None, "<= 1e-6", diff <= 1e-6))
    del args, p
    log("eval: peak extra memory (fresh subprocess)")
    mem = _run_child({"case": "eval", "size": [nq, ng, ids, cams, dim]})
    if "error" in mem:
        rows.append(_row("eval", f"peak extra memory, {label}", mem["error"], "", None, "< 2x distmat", False))
    else:
        ratio = mem["extra_bytes"] / mem["input_bytes"]
        rows.append(_row("eval", f"peak extra memory, {label}", _fmt_bytes(mem["extra_bytes"]),
                         _fmt_bytes(mem["input_bytes"]) + " distmat", ratio, "< 2x distmat" + note,
                         (ratio < 2) if at_goal else None))
    nq, ng, ids, cams, dim = SIZES[size_name]["eval_msmt"]
    label = f"{nq}x{ng} ({ids} ids, {cams} cams)"
    log(f"eval: MSMT17-sized {label} (fresh subprocess)")
    mem = _run_child({"case": "eval", "size": [nq, ng, ids, cams, dim]})
    if "error" in mem:
        rows.append(_row("eval", f"MSMT17-sized evaluate_rank, {label}", mem["error"], "", None, "runs within 24 GB", False))
    else:
        ratio = mem["extra_bytes"] / mem["input_bytes"]
        rows.append(_row("eval", f"MSMT17-sized evaluate_rank time, {label}", _fmt_s(mem["seconds"]), "", None,
                         "runs (time reported)", True))
        rows.append(_row("eval", f"MSMT17-sized peak memory, {label}",
                         f"{_fmt_bytes(mem['peak_bytes'])} total, {_fmt_bytes(mem['extra_bytes'])} extra",
                         _fmt_bytes(mem["input_bytes"]) + " distmat", ratio, "total < 24 GB; extra < 2x distmat",
                         mem["peak_bytes"] < 24e9 and (ratio < 2 or not at_goal)))
    return rows


def bench_rerank(size_name: str, repeats: int, log: Callable[[str], None]) -> list[dict]:
    import os
    import tempfile

    rows = []
    nq, ng, ids, cams, dim = SIZES[size_name]["rerank_market"]
    label = f"{nq + ng} images ({nq} q + {ng} g, {dim}-d)"
    t_ref, t_fast, p_ref, p_fast = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        f_ref, f_fast = os.path.join(tmp, "ref.npy"), os.path.join(tmp, "fast.npy")
        for r in range(repeats):
            log(f"rerank: {label} dense reference vs re_ranking, repeat {r + 1}/{repeats} (fresh subprocesses)")
            a = _run_child({"case": "rerank_ref", "size": [nq, ng, ids, cams, dim], "save": f_ref if r == 0 else None})
            b = _run_child({"case": "rerank", "size": [nq, ng, ids, cams, dim], "save": f_fast if r == 0 else None})
            for res, ts, ps in ((a, t_ref, p_ref), (b, t_fast, p_fast)):
                if "error" in res:
                    raise RuntimeError(f"re-ranking benchmark case failed: {res['error']}\n{res.get('stderr', '')}")
                ts.append(res["seconds"])
                ps.append(res["peak_bytes"])
        diff = float(np.abs(np.load(f_ref) - np.load(f_fast)).max())
    sp_up = _median(t_ref) / _median(t_fast)
    at_goal = size_name == "full"  # the goals are stated for the Market-sized problem
    note = "" if at_goal else " (Market-size goal; not judged at this size)"
    rows.append(_row("rerank", f"re_ranking time, {label}", _fmt_s(_median(t_fast)), _fmt_s(_median(t_ref)) + " dense",
                     sp_up, "speed-up >= 3x" + note, (sp_up >= 3) if at_goal else None))
    peak = max(p_fast)
    rows.append(_row("rerank", f"re_ranking peak memory (process RSS), {label}", _fmt_bytes(peak),
                     _fmt_bytes(max(p_ref)) + " dense", peak / max(p_ref), "< 4 GB" + note,
                     (peak < 4e9) if at_goal else None))
    rows.append(_row("rerank", f"max |diff| vs dense reference, {label}", f"{diff:.1e}", "dense (float32)", None,
                     "<= 1e-5", diff <= 1e-5))
    nq, ng, ids, cams, dim = SIZES[size_name]["rerank_msmt"]
    label = f"{nq + ng} images ({nq} q + {ng} g, {dim}-d)"
    log(f"rerank: MSMT17-sized {label} (fresh subprocess)")
    res = _run_child({"case": "rerank", "size": [nq, ng, ids, cams, dim]})
    if "error" in res:
        rows.append(_row("rerank", f"MSMT17-sized re_ranking, {label}", res["error"], "", None, "completes within 24 GB", False))
    else:
        rows.append(_row("rerank", f"MSMT17-sized re_ranking time, {label}", _fmt_s(res["seconds"]), "", None,
                         "completes (time reported)", True))
        dense_bytes = 4 * 4 * (nq + ng) ** 2  # dist, argsort (int32), V, V_qe at float32
        rows.append(_row("rerank", f"MSMT17-sized re_ranking peak memory (process RSS), {label}",
                         _fmt_bytes(res["peak_bytes"]), f"~{_fmt_bytes(dense_bytes)} dense (4 N x N arrays, estimate)",
                         res["peak_bytes"] / dense_bytes, "completes within 24 GB", res["peak_bytes"] < 24e9))
    return rows


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------
def write_table(rows: list[dict], out_dir: str) -> tuple[str, str]:
    """Write ``benchmarks.csv`` and ``benchmarks.md`` (atomically) into ``out_dir``; returns the paths."""
    import os

    import pandas as pd

    from sisnet.utils import atomic_write, ensure_writable_dir

    ensure_writable_dir(out_dir, "benchmark output folder (--out)")
    df = pd.DataFrame(rows, columns=COLUMNS)
    csv_path, md_path = os.path.join(out_dir, "benchmarks.csv"), os.path.join(out_dir, "benchmarks.md")
    with atomic_write(csv_path, "w", encoding="utf-8", newline="") as fh:
        df.to_csv(fh, index=False)
    with atomic_write(md_path, "w", encoding="utf-8") as fh:
        fh.write(_markdown(df))
    return csv_path, md_path


def _markdown(df) -> str:
    from sisnet.provenance import load_average, machine

    def cell(v: Any) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return ""
        if isinstance(v, bool):
            return "yes" if v else "NO"
        return str(v).replace("|", "\\|")

    head = "| " + " | ".join(COLUMNS) + " |\n| " + " | ".join("---" for _ in COLUMNS) + " |\n"
    body = "".join("| " + " | ".join(cell(r[c]) for c in COLUMNS) + " |\n" for r in df.to_dict("records"))
    m = machine()
    meta = (f"\n_{time.strftime('%Y-%m-%d %H:%M:%S')}, {m['processor']}, {m['usable_cores']} usable cores, "
            f"{load_average()}. ratio = reference / measured for times (speed-up), measured / reference otherwise._\n")
    return "# sisnet benchmark\n\n" + head + body + meta


def main(argv: list[str] | None = None) -> list[dict]:
    """Run the benchmark CLI (see ``--help``); returns the table rows (list of dicts)."""
    parser = argparse.ArgumentParser(prog="python -m sisnet.benchmark", description="Speed/memory benchmark of sisnet's evaluation, re-ranking, training and extraction; "
                                     "every speed figure is a ratio against a reference run alternately in the same run.")
    parser.add_argument("--sections", "--section", dest="sections", default=",".join(SECTIONS),
                        help=f"comma-separated subset of {','.join(SECTIONS)} (default: all)")
    parser.add_argument("--step-ms", type=float, default=None,
                        help="loader: the training step time (ms) to size the workers for (default: measured on a GPU, "
                        "else an assumed 20 ms)")
    parser.add_argument("--quick", action="store_true", help="smaller problems and fewer repeats (a minute or two on an idle 2-core machine)")
    parser.add_argument("--size", choices=sorted(SIZES), default=None, help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=None, help="alternating repetitions per timing (default 5; quick 3)")
    parser.add_argument("--rerank-repeats", type=int, default=None,
                        help="repetitions of the (slow) dense re-ranking reference (default 2; quick 2)")
    parser.add_argument("--out", default="results/benchmarks", help="output folder for benchmarks.csv / .md")
    parser.add_argument("--dataset-dir", default="data/synthetic", help="the synthetic dataset folder for train/extract")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads for every case (default: torch's default, all cores)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    import os

    import torch

    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads must be >= 1")
        prev_threads, prev_env = torch.get_num_threads(), os.environ.get("SISNET_BENCH_THREADS")
        torch.set_num_threads(args.threads)
        os.environ["SISNET_BENCH_THREADS"] = str(args.threads)  # read by the child processes
        try:
            return _main(args, parser)
        finally:
            torch.set_num_threads(prev_threads)
            if prev_env is None:
                os.environ.pop("SISNET_BENCH_THREADS", None)
            else:
                os.environ["SISNET_BENCH_THREADS"] = prev_env
    if os.environ.get("SISNET_BENCH_THREADS"):
        torch.set_num_threads(int(os.environ["SISNET_BENCH_THREADS"]))
    return _main(args, parser)


def _main(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[dict]:
    import json
    import sys

    if args.child is not None:
        print(json.dumps(_child_case(json.loads(args.child))))
        return []
    sections = tuple(s.strip() for s in args.sections.split(",") if s.strip())
    bad = [s for s in sections if s not in SECTIONS]
    if bad or not sections:
        parser.error(f"unknown section(s) {bad}; choose from {','.join(SECTIONS)}")
    size = args.size or ("quick" if args.quick else "full")
    repeats = args.repeats or (3 if size != "full" else 5)
    rr_repeats = args.rerank_repeats or 2
    if repeats < 1 or rr_repeats < 1:
        parser.error("--repeats and --rerank-repeats must be >= 1")
    if args.step_ms is not None and not args.step_ms > 0:
        parser.error("--step-ms must be > 0")

    def log(msg: str) -> None:
        print(f"[benchmark {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    from sisnet.utils import ensure_writable_dir

    ensure_writable_dir(args.out, "benchmark output folder (--out)")  # fail before any work
    rows: list[dict] = []
    if "eval" in sections:
        rows += bench_eval(size, repeats, log)
    if "rerank" in sections:
        rows += bench_rerank(size, rr_repeats, log)
    if "train" in sections or "extract" in sections:
        rows += bench_train(size, repeats, args.dataset_dir, log,
                            tuple(s for s in sections if s in ("train", "extract")))
    if "loader" in sections:
        rows += bench_loader(size, repeats, args.step_ms, log)
    if "gpu" in sections:
        rows += bench_gpu(size, repeats, log)
    csv_path, md_path = write_table(rows, args.out)
    import pandas as pd

    with pd.option_context("display.max_colwidth", 80, "display.width", 250):
        print(pd.DataFrame(rows, columns=COLUMNS).to_string(index=False))
    print(f"\nwritten: {csv_path}, {md_path}")
    return rows


if __name__ == "__main__":
    main()
