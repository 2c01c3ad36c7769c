"""sisnet.metrics.evaluate_rank / compute_distance against a deliberately simple reference loop."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sisnet.metrics import compute_distance, evaluate_rank


def simple_reference(distmat, q_pids, g_pids, q_camids, g_camids, max_rank):
    """Plain Python: rank valid items by (distance, gallery index), then count."""
    cmcs, aps, inps = [], [], []
    for i in range(len(q_pids)):
        valid = [k for k in range(len(g_pids)) if not (g_pids[k] == q_pids[i] and g_camids[k] == q_camids[i])]
        ranked = sorted(valid, key=lambda k: (float(distmat[i][k]), k))
        hits = [r for r, k in enumerate(ranked) if g_pids[k] == q_pids[i]]  # 0-based positions
        if not hits:
            continue
        cmcs.append([1.0 if hits[0] <= r else 0.0 for r in range(max_rank)])
        aps.append(sum((h + 1) / (r + 1) for h, r in enumerate(hits)) / len(hits))
        inps.append(len(hits) / (hits[-1] + 1))
    return {
        "cmc": np.mean(cmcs, axis=0),
        "mAP": float(np.mean(aps)),
        "mINP": float(np.mean(inps)),
        "num_valid_queries": len(cmcs),
    }


def random_case(rng, num_q, num_g, num_ids, num_cams, ties: bool, dtype=np.float32):
    q_pids = rng.integers(1, num_ids + 1, size=num_q)
    g_pids = rng.integers(0, num_ids + 1, size=num_g)  # pid 0 = distractors
    q_camids = rng.integers(0, num_cams, size=num_q)
    g_camids = rng.integers(0, num_cams, size=num_g)
    # two queries without a valid match: one pid absent from the gallery, one seen only in its own camera
    q_pids[-2] = 999
    q_pids[-1], q_camids[-1] = 998, 0
    g_pids[:2], g_camids[:2] = 998, 0
    if ties:  # few distinct values -> many exact ties between matches and non-matches
        distmat = rng.integers(0, 6, size=(num_q, num_g)).astype(dtype) * dtype(0.25)
    else:
        distmat = rng.random((num_q, num_g)).astype(dtype)
        same = q_pids[:, None] == g_pids[None, :]
        distmat = (distmat - 0.3 * same).astype(dtype)  # matches tend to be closer (and some negative)
    return distmat, q_pids, g_pids, q_camids, g_camids


def assert_same(got, ref):
    assert got["num_valid_queries"] == ref["num_valid_queries"]
    np.testing.assert_allclose(got["cmc"], ref["cmc"], atol=1e-12)
    assert got["mAP"] == pytest.approx(ref["mAP"], abs=1e-12)
    assert got["mINP"] == pytest.approx(ref["mINP"], abs=1e-12)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_simple_reference(seed, dtype, ties):
    rng = np.random.default_rng(seed)
    case = random_case(rng, num_q=23, num_g=61, num_ids=7, num_cams=3, ties=ties, dtype=dtype)
    # small chunk budget -> several query chunks are exercised
    got = evaluate_rank(*case, max_rank=10, chunk_bytes=61 * 16 * 5)
    ref = simple_reference(*case, max_rank=10)
    assert ref["num_valid_queries"] < 23  # some queries have no valid match and are skipped
    assert_same(got, ref)


def test_hand_computed_example():
    # one query (pid 1, cam 0); gallery ranked by distance: [g2 same cam -> removed], g0 hit, g3 miss, g1 hit
    distmat = np.array([[0.2, 0.9, 0.1, 0.5]], dtype=np.float32)
    g_pids = np.array([1, 1, 1, 0])
    g_camids = np.array([1, 2, 0, 1])
    out = evaluate_rank(distmat, np.array([1]), g_pids, np.array([0]), g_camids, max_rank=3)
    np.testing.assert_allclose(out["cmc"], [1.0, 1.0, 1.0])
    assert out["mAP"] == pytest.approx((1 / 1 + 2 / 3) / 2)
    assert out["mINP"] == pytest.approx(2 / 3)
    assert out["num_valid_queries"] == 1


def test_ties_follow_gallery_index():
    # all distances equal: order is gallery index order. pid 1 hits at valid positions 1 and 3.
    distmat = np.zeros((1, 4), dtype=np.float32)
    out = evaluate_rank(distmat, [1], [0, 1, 0, 1], [0], [1, 1, 1, 1], max_rank=2)
    np.testing.assert_allclose(out["cmc"], [0.0, 1.0])
    assert out["mAP"] == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert out["mINP"] == pytest.approx(2 / 4)


def test_negative_zero_equals_zero():
    # -0.0 and +0.0 are equal distances: the tie rule (gallery index) decides, as in np.argsort.
    distmat = np.array([[0.0, -0.0, 0.5]], dtype=np.float32)
    out = evaluate_rank(distmat, [1], [0, 1, 0], [0], [1, 1, 1], max_rank=1)
    assert out["cmc"][0] == 0.0  # item 0 (non-match) comes first
    assert out["mAP"] == pytest.approx(0.5)


def test_larger_problem_and_torch_inputs():
    from sisnet.metrics.reference import make_eval_problem, reference_evaluate_rank

    p = make_eval_problem(num_query=150, num_gallery=900, num_ids=60, num_cams=4, seed=3)
    args = (p["distmat"], p["q_pids"], p["g_pids"], p["q_camids"], p["g_camids"])
    ref = reference_evaluate_rank(*args, max_rank=20)
    assert 0.2 < ref["cmc"][0] < 0.999 and ref["mAP"] < ref["cmc"][0]  # realistic, not trivial
    got = evaluate_rank(*(torch.as_tensor(x) for x in args), max_rank=20, chunk_bytes=900 * 16 * 40)
    assert_same(got, ref)
    assert isinstance(got["cmc"], np.ndarray) and got["cmc"].shape == (20,)
    assert isinstance(got["mAP"], float) and isinstance(got["mINP"], float)


def test_max_rank_beyond_gallery_pads_and_warns():
    rng = np.random.default_rng(5)
    case = random_case(rng, num_q=6, num_g=5, num_ids=2, num_cams=2, ties=False)
    with pytest.warns(UserWarning, match="exceeds the gallery size"):
        got = evaluate_rank(*case, max_rank=8)
    ref = simple_reference(*case, max_rank=8)
    assert_same(got, ref)
    assert np.all(got["cmc"][5:] == got["cmc"][4])
    assert got["cmc"][-1] == 1.0


def test_errors():
    d = np.zeros((2, 3), dtype=np.float32)
    q, g = np.array([1, 2]), np.array([1, 2, 3])
    qc, gc = np.array([0, 0]), np.array([1, 1, 1])
    with pytest.raises(ValueError, match="q_pids has 3 entries"):
        evaluate_rank(d, g, g, qc, gc)
    with pytest.raises(ValueError, match="g_camids has 2 entries"):
        evaluate_rank(d, q, g, qc, qc)
    with pytest.raises(ValueError, match="2-D"):
        evaluate_rank(d[0], q, g, qc, gc)
    with pytest.raises(ValueError, match="max_rank"):
        evaluate_rank(d, q, g, qc, gc, max_rank=0)
    bad = d.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        evaluate_rank(bad, q, g, qc, gc, max_rank=3)
    with pytest.raises(RuntimeError, match="No valid query"):
        evaluate_rank(d, q, g, qc, np.array([0, 0, 0]), max_rank=3)  # every match is in the query's own camera
    with pytest.raises(ValueError, match="integer ids"):
        evaluate_rank(d, np.array([1.5, 2.0]), g, qc, gc)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_compute_distance(metric):
    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(0)
    qf = rng.standard_normal((17, 8)).astype(np.float32)
    gf = rng.standard_normal((29, 8)).astype(np.float32)
    got = compute_distance(torch.from_numpy(qf), gf, metric=metric, chunk_rows=5)
    want = cdist(qf, gf, "cosine") if metric == "cosine" else cdist(qf, gf, "sqeuclidean")
    assert got.dtype == np.float32 and got.shape == (17, 29)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_compute_distance_errors():
    with pytest.raises(ValueError, match="metric must be one of"):
        compute_distance(np.zeros((2, 3)), np.zeros((2, 3)), metric="manhattan")
    with pytest.raises(ValueError, match="feature dims"):
        compute_distance(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="NaN or inf"):
        compute_distance(np.full((2, 3), np.nan), np.zeros((2, 3)))


def test_strided_readonly_and_integer_inputs():
    rng = np.random.default_rng(11)
    case = list(random_case(rng, num_q=12, num_g=40, num_ids=5, num_cams=3, ties=True))
    ref = simple_reference(*case, max_rank=5)
    wide = np.zeros((12, 80), dtype=np.float32)
    wide[:, ::2] = case[0]
    strided = wide[:, ::2]  # non-contiguous view
    strided.flags.writeable = False
    assert_same(evaluate_rank(strided, *case[1:], max_rank=5), ref)
    flipped = np.ascontiguousarray(case[0][:, ::-1])[:, ::-1]  # negative strides
    assert_same(evaluate_rank(flipped, *case[1:], max_rank=5), ref)
    as_int = (case[0] * 4).astype(np.int32)  # integer distances: same order and ties
    assert_same(evaluate_rank(as_int, *case[1:], max_rank=5), ref)


def test_num_threads_is_restored_and_validated():
    rng = np.random.default_rng(3)
    case = random_case(rng, num_q=10, num_g=30, num_ids=4, num_cams=3, ties=False)
    before = torch.get_num_threads()
    a = evaluate_rank(*case, max_rank=5)  # default: 1 thread inside
    assert torch.get_num_threads() == before
    b = evaluate_rank(*case, max_rank=5, num_threads=None)
    assert_same(a, b)
    with pytest.raises(ValueError, match="num_threads"):
        evaluate_rank(*case, max_rank=5, num_threads=0)
