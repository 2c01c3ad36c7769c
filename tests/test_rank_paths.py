"""evaluate_rank's histogram-and-exact-cell counting against the literal evaluator, path by path.

Every case is compared with :func:`sisnet.metrics.reference.reference_evaluate_rank` (stable argsort
of each row, the definition). The cases are chosen so that each branch of
``sisnet.metrics.rank._match_positions`` runs: items in lower / higher cells than a match, items sharing
a match's cell (exact comparison), several matches in one cell, the fallback scale (one match, equal
matches, infinite match distances), chunks without any candidate, invalid items, queries without a
valid match; on good, weak and random rankings.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import sisnet.metrics.rank as rank
from sisnet.metrics import compute_distance, evaluate_features, evaluate_rank
from sisnet.metrics.reference import make_eval_problem, make_features, reference_evaluate_rank


def ids_case(rng, num_q, num_g, num_ids, num_cams):
    """Ids with distractors (pid 0), junk (pid -1) and queries without a valid match."""
    q_pids = rng.integers(1, num_ids + 1, size=num_q)
    g_pids = rng.integers(-1, num_ids + 1, size=num_g)
    q_camids = rng.integers(0, num_cams, size=num_q)
    g_camids = rng.integers(0, num_cams, size=num_g)
    q_pids[-2] = num_ids + 7                              # pid absent from the gallery
    q_pids[-1], q_camids[-1] = num_ids + 8, 0             # pid only in the query's own camera
    g_pids[:2], g_camids[:2] = num_ids + 8, 0
    return q_pids, g_pids, q_camids, g_camids


def distances(rng, kind, q_pids, g_pids, dtype=np.float32):
    same = q_pids[:, None] == g_pids[None, :]
    shape = same.shape
    if kind == "good":      # matches mostly in front
        d = rng.random(shape) + 0.8 * same * rng.random(shape) * -1
    elif kind == "weak":    # matches mostly behind (mINP near 0)
        d = rng.random(shape) + 0.7 * same
    elif kind == "random":
        d = rng.standard_normal(shape)
    elif kind == "ties":    # few distinct values: exact ties everywhere, within and across cells
        d = rng.integers(0, 5, size=shape) * 0.25 - 0.5 * same * rng.integers(0, 2, size=shape)
    elif kind == "infinite":  # +-inf and signed zeros among finite values, matches included
        d = rng.integers(-1, 3, size=shape).astype(np.float64)
        d[rng.random(shape) < 0.15] = np.inf
        d[rng.random(shape) < 0.05] = -np.inf
        d[d == 0] *= np.where(rng.random(int((d == 0).sum())) < 0.5, -1.0, 1.0)
    else:
        raise ValueError(kind)
    return np.asarray(d, dtype=dtype)


def assert_equal(got, ref):
    assert got["num_valid_queries"] == ref["num_valid_queries"]
    np.testing.assert_allclose(got["cmc"], ref["cmc"], rtol=0, atol=1e-12)
    assert got["mAP"] == pytest.approx(ref["mAP"], rel=0, abs=1e-12)
    assert got["mINP"] == pytest.approx(ref["mINP"], rel=0, abs=1e-12)


@pytest.mark.parametrize("kind", ["good", "weak", "random", "ties", "infinite"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_random_cases_match_literal(kind, dtype):
    for seed in range(4):
        rng = np.random.default_rng(seed)
        ids = ids_case(rng, num_q=31, num_g=203, num_ids=6, num_cams=3)
        d = distances(rng, kind, ids[0], ids[1], dtype)
        ref = reference_evaluate_rank(d, *ids, max_rank=12)
        assert ref["num_valid_queries"] < 31
        assert_equal(evaluate_rank(d, *ids, max_rank=12), ref)
        assert_equal(evaluate_rank(d, *ids, max_rank=12, chunk_bytes=1), ref)  # one row per chunk


@pytest.mark.parametrize("cells", [4, 5, 16])
@pytest.mark.parametrize("kind", ["good", "weak", "ties"])
def test_coarse_grids_force_exact_comparisons(monkeypatch, cells, kind):
    """Few cells: most items share a match's cell, often with several matches (the pair expansion)."""
    monkeypatch.setattr(rank, "_num_cells", lambda num_g: cells)
    for seed in range(3):
        rng = np.random.default_rng(100 + seed)
        ids = ids_case(rng, num_q=25, num_g=150, num_ids=3, num_cams=2)
        d = distances(rng, kind, ids[0], ids[1])
        assert_equal(evaluate_rank(d, *ids, max_rank=8, chunk_bytes=10_000), reference_evaluate_rank(d, *ids, max_rank=8))


def test_exact_comparisons_are_counted(monkeypatch):
    """Sanity of the test above: with 4 cells most items are compared exactly, with 4096 few are."""
    seen = []
    orig = rank._flatnonzero
    monkeypatch.setattr(rank, "_flatnonzero", lambda mask: seen.append(float(mask.float().mean())) or orig(mask))
    rng = np.random.default_rng(3)
    ids = ids_case(rng, num_q=20, num_g=4000, num_ids=300, num_cams=3)  # ~9 matches per query
    d = distances(rng, "random", ids[0], ids[1])
    monkeypatch.setattr(rank, "_num_cells", lambda num_g: 4)
    evaluate_rank(d, *ids)
    coarse = np.mean(seen)
    seen.clear()
    monkeypatch.setattr(rank, "_num_cells", lambda num_g: 4096)
    evaluate_rank(d, *ids)
    assert coarse > 0.3 and np.mean(seen) < 0.05


def test_fallback_scales_and_candidate_free_chunks():
    rng = np.random.default_rng(7)
    num_q, num_g = 12, 40
    q_pids = np.arange(1, num_q + 1)
    q_pids[:4] = 50                                    # chunk of queries with no candidate at all
    g_pids = rng.integers(0, num_q + 1, size=num_g)
    q_camids, g_camids = np.zeros(num_q, int), rng.integers(1, 3, size=num_g)
    g_pids[5:8] = 7                                    # query pid 7: three matches ...
    d = rng.random((num_q, num_g)).astype(np.float32)
    d[6, 5:8] = 0.5                                    # ... all at one distance (hi == lo)
    d[7, g_pids == 8] = np.inf                          # pid 8: matches at +inf (infinite range)
    d[8, :] = -np.inf                                   # a row of -inf: lo is not finite
    d[9, :] = d[9, 0]                                   # a constant row
    ids = (q_pids, g_pids, q_camids, g_camids)
    assert_equal(evaluate_rank(d, *ids, max_rank=5, chunk_bytes=1), reference_evaluate_rank(d, *ids, max_rank=5))
    assert_equal(evaluate_rank(d, *ids, max_rank=5), reference_evaluate_rank(d, *ids, max_rank=5))


@pytest.mark.parametrize("noise", [0.5, 1.5, 4.0])  # good, weak, near-random models
def test_realistic_problems_at_every_quality(noise):
    p = make_eval_problem(60, 1500, 40, 4, dim=16, seed=5, noise=noise)
    args = (p["distmat"], p["q_pids"], p["g_pids"], p["q_camids"], p["g_camids"])
    ref = reference_evaluate_rank(*args)
    assert_equal(evaluate_rank(*args), ref)
    assert_equal(evaluate_rank(*args, chunk_bytes=200_000), ref)
    quantised = np.round(p["distmat"] * 64) / 64              # realistic ranks with many ties
    assert_equal(evaluate_rank(quantised, *args[1:]), reference_evaluate_rank(quantised, *args[1:]))


def test_low_precision_and_integer_inputs():
    rng = np.random.default_rng(2)
    ids = ids_case(rng, num_q=15, num_g=90, num_ids=4, num_cams=3)
    d = distances(rng, "ties", ids[0], ids[1])
    ref = reference_evaluate_rank(d, *ids, max_rank=5)
    assert_equal(evaluate_rank(d.astype(np.float16), *ids, max_rank=5), ref)
    assert_equal(evaluate_rank(torch.from_numpy(d).to(torch.bfloat16), *ids, max_rank=5), ref)
    assert_equal(evaluate_rank((d * 4).astype(np.int64), *ids, max_rank=5), ref)


def test_nan_is_refused_wherever_it_is():
    rng = np.random.default_rng(4)
    ids = ids_case(rng, num_q=8, num_g=30, num_ids=3, num_cams=2)
    for row in (0, 6, 7):  # rows with candidates, and row 6 without any (its pid is not in the gallery)
        d = rng.random((8, 30)).astype(np.float32)
        d[row, 11] = np.nan
        with pytest.raises(ValueError, match="NaN"):
            evaluate_rank(d, *ids, max_rank=5, chunk_bytes=1)


def test_evaluate_features_cpu_and_device_loop():
    """CPU: exactly evaluate_rank(compute_distance(...)). The device loop (distance blocks evaluated
    where they are computed), run here on the CPU, gives the same metrics."""
    f = make_features(70, 400, 25, 4, dim=16, seed=8, noise=1.2)
    ids = (f["q_pids"], f["g_pids"], f["q_camids"], f["g_camids"])
    for metric in ("cosine", "euclidean"):
        want = evaluate_rank(compute_distance(f["qf"], f["gf"], metric), *ids)
        assert_equal(evaluate_features(f["qf"], f["gf"], *ids, metric=metric, device="cpu"), want)
        got = rank._evaluate_on_device(f["qf"], f["gf"], *ids, metric, 50, torch.device("cpu"), 30_000)
        assert_equal(got, want)
    with pytest.raises(ValueError, match="metric must be one of"):
        evaluate_features(f["qf"], f["gf"], *ids, metric="manhattan", device="cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    f = make_features(300, 3000, 100, 6, dim=32, seed=9, noise=1.3)
    ids = (f["q_pids"], f["g_pids"], f["q_camids"], f["g_camids"])
    d = compute_distance(f["qf"], f["gf"])
    want = evaluate_rank(d, *ids)
    assert_equal(evaluate_rank(torch.from_numpy(d).cuda(), *ids), want)
    got = evaluate_features(torch.from_numpy(f["qf"]).cuda(), f["gf"], *ids, device="cuda", chunk_bytes=2**20)
    assert got["num_valid_queries"] == want["num_valid_queries"]
    # cuBLAS and the CPU's matmul may round a distance differently (a near-tie can swap)
    assert got["mAP"] == pytest.approx(want["mAP"], abs=1e-3)
