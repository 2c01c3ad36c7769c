"""sisnet.metrics.re_ranking against a simple dense k-reciprocal reference written here."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sisnet.metrics import compute_distance, re_ranking


def dense_reference(qf, gf, k1, k2, lam):
    """Dense k-reciprocal re-ranking, written step by step from the paper (float64 distances)."""
    feats = np.concatenate([qf, gf]).astype(np.float64)
    n, nq = len(feats), len(qf)
    dist = ((feats[:, None, :] - feats[None, :, :]) ** 2).sum(-1)
    dist = (dist / dist.max(axis=0)).T  # column-max normalisation, then transpose (original convention)
    rank = np.argsort(dist, axis=1, kind="stable")

    def recip(i, k):
        fwd = rank[i, : k + 1]
        return [j for j in fwd if i in rank[j, : k + 1]]

    V = np.zeros((n, n))
    half = int(np.around(k1 / 2.0))
    for i in range(n):
        r = recip(i, k1)
        exp = set(r)
        for c in r:
            rc = recip(c, half)
            if len(set(rc) & set(r)) > 2.0 / 3.0 * len(rc):
                exp |= set(rc)
        exp = sorted(exp)
        w = np.exp(-dist[i, exp])
        V[i, exp] = w / w.sum()
    if k2 != 1:
        V = np.stack([V[rank[i, :k2]].mean(0) for i in range(n)])
    jac = np.zeros((nq, n))
    for i in range(nq):
        for j in range(n):
            m = np.minimum(V[i], V[j]).sum()
            jac[i, j] = 1.0 - m / (2.0 - m)
    final = jac * (1 - lam) + dist[:nq] * lam
    return final[:, nq:]


def clustered(rng, n, ids, dim=16, noise=0.6):
    centres = rng.standard_normal((ids, dim))
    lab = rng.integers(0, ids, size=n)
    f = centres[lab] + noise * rng.standard_normal((n, dim))
    return (f / np.linalg.norm(f, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize(
    "seed,k1,k2,lam", [(0, 20, 6, 0.3), (1, 7, 3, 0.3), (2, 5, 1, 0.5), (3, 20, 6, 0.0)]
)
def test_matches_dense_reference(seed, k1, k2, lam):
    rng = np.random.default_rng(seed)
    f = clustered(rng, 110, ids=12)
    qf, gf = f[:30], f[30:]
    ref = dense_reference(qf, gf, k1, k2, lam)
    # small blocks and chunks so the blocked / chunked code paths are all exercised
    got = re_ranking(torch.from_numpy(qf), gf, k1=k1, k2=k2, lambda_value=lam, block=32, jaccard_chunk=7)
    assert got.shape == (30, 80) and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, atol=1e-5)
    # re-ranking must actually change something relative to the original distance
    assert np.abs(got - dense_reference(qf, gf, k1, k2, 1.0)).max() > 1e-2


def test_lambda_one_keeps_original_ordering():
    rng = np.random.default_rng(7)
    f = clustered(rng, 90, ids=9)
    qf, gf = f[:20], f[20:]
    got = re_ranking(qf, gf, lambda_value=1.0)
    orig = compute_distance(qf, gf, metric="euclidean")
    np.testing.assert_array_equal(np.argsort(got, axis=1, kind="stable")[:, :10],
                                  np.argsort(orig, axis=1, kind="stable")[:, :10])
    # and the values are the row-max-normalised squared distances
    np.testing.assert_allclose(got, dense_reference(qf, gf, 20, 6, 1.0), atol=1e-5)


def test_rerank_improves_clustered_retrieval():
    """On clustered data with a shared camera-like nuisance shift, re-ranking should help mAP."""
    from sisnet.metrics.reference import make_features
    from sisnet.metrics import evaluate_rank

    p = make_features(120, 600, 40, 4, dim=32, seed=1, noise=1.1, cam_shift=0.8)
    args = (p["q_pids"], p["g_pids"], p["q_camids"], p["g_camids"])
    base = evaluate_rank(compute_distance(p["qf"], p["gf"], "euclidean"), *args, max_rank=10)
    rr = evaluate_rank(re_ranking(p["qf"], p["gf"]), *args, max_rank=10)
    assert rr["mAP"] > base["mAP"]


def test_errors():
    f = np.zeros((4, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="k1 must be"):
        re_ranking(f, f, k1=0)
    with pytest.raises(ValueError, match="lambda_value"):
        re_ranking(f, f, lambda_value=1.5)
    with pytest.raises(ValueError, match="feature dims"):
        re_ranking(f, np.zeros((4, 5)))
    with pytest.raises(ValueError, match="NaN or inf"):
        re_ranking(np.full((2, 3), np.nan), f)
    with pytest.raises(ValueError, match="2-D"):
        re_ranking(f[0], f)


def test_thread_settings_restored_and_results_unchanged():
    rng = np.random.default_rng(9)
    f = clustered(rng, 70, ids=7)
    before = torch.get_num_threads()
    a = re_ranking(f[:20], f[20:])  # other_threads=1 inside
    assert torch.get_num_threads() == before
    b = re_ranking(f[:20], f[20:], other_threads=None)
    np.testing.assert_allclose(a, b, atol=1e-6)
    with pytest.raises(ValueError, match="other_threads"):
        re_ranking(f[:20], f[20:], other_threads=0)
