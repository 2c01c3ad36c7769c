"""The worked query of notebook 01 computes the same AP, INP and first-hit rank as evaluate_rank."""
from __future__ import annotations

import numpy as np
import pytest

from sisnet.metrics import evaluate_rank
from sisnet.report.protocol import STATUS_MATCH, STATUS_REMOVED, worked_query


@pytest.mark.parametrize("seed", range(40))
def test_worked_query_equals_evaluate_rank(seed):
    rng = np.random.default_rng(seed)
    g = int(rng.integers(5, 60))
    g_pids = rng.integers(0, 6, size=g)  # pid 0: distractors
    g_cams = rng.integers(0, 3, size=g)
    q_pid, q_cam = int(rng.integers(1, 6)), int(rng.integers(0, 3))
    # quantised distances: many exact ties, which the stable order must break by gallery index
    d = rng.integers(0, 8, size=g).astype(np.float64) / 4
    ranked, summary = worked_query(d, q_pid, q_cam, g_pids, g_cams)
    valid = ~((g_pids == q_pid) & (g_cams == q_cam))
    has_match = bool(np.any(valid & (g_pids == q_pid)))
    assert summary["num_matches"] == int(np.sum(valid & (g_pids == q_pid)))
    assert (ranked["status"] == STATUS_REMOVED).sum() == int(np.sum(~valid))
    if not has_match:
        assert np.isnan(summary["AP"])
        return
    res = evaluate_rank(d[None], [q_pid], g_pids, [q_cam], g_cams, max_rank=g)
    assert summary["AP"] == pytest.approx(res["mAP"], abs=1e-12)
    assert summary["INP"] == pytest.approx(res["mINP"], abs=1e-12)
    cmc = np.asarray(res["cmc"])
    assert cmc[summary["first_hit_rank"] - 1] == 1.0
    assert summary["first_hit_rank"] == 1 or cmc[summary["first_hit_rank"] - 2] == 0.0


def test_worked_query_labels_a_hand_made_case():
    # gallery: 0 = same id same cam (removed), 1 = distractor, 2 = match, 3 = other id, 4 = match
    ranked, summary = worked_query([0.1, 0.2, 0.3, 0.4, 0.5], 7, 0, [7, 0, 7, 3, 7], [0, 1, 1, 2, 2])
    assert list(ranked["status"][:2]) == [STATUS_REMOVED, "distractor (pid 0)"]
    hits = ranked[ranked["status"] == STATUS_MATCH]
    assert list(hits["rank"]) == [2, 4] and list(hits["precision"]) == [0.5, 0.5]
    assert summary == {"AP": 0.5, "INP": 0.5, "first_hit_rank": 2, "num_matches": 2}
