"""Paired statistics across seeds: the interval and the verdict rule."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sisnet import paper
from sisnet.report import table2_paired
from sisnet.stats import Comparison, paired_difference, paired_table, verdict


def test_paired_difference_matches_a_hand_computed_case():
    # d = a - b per seed = (2, 3, 7): mean 4, sd = sqrt(((−2)² + (−1)² + 3²) / 2) = sqrt(7),
    # t(0.975, 2) = 4.302652729911275 (Student's t table), half width = 4.3027 * sqrt(7) / sqrt(3) = 6.5724
    a = {0: 12.0, 1: 13.0, 2: 17.0, 9: 99.0}  # seed 9 has no partner in b: ignored
    b = {0: 10.0, 1: 10.0, 2: 10.0}
    res = paired_difference(a, b)
    half = 4.302652729911275 * math.sqrt(7) / math.sqrt(3)
    assert res.n_seeds == 3 and res.seeds == (0, 1, 2)
    assert res.mean_diff == pytest.approx(4.0)
    assert res.sd == pytest.approx(math.sqrt(7))
    assert (res.ci_low, res.ci_high) == pytest.approx((4.0 - half, 4.0 + half))
    assert res.verdict == "not distinguishable"  # the interval [-2.57, 10.57] contains 0
    # the same spread, shifted up: the interval clears 0
    shifted = paired_difference({s: v + 3 for s, v in a.items()}, b)
    assert shifted.ci_low == pytest.approx(7.0 - half) and shifted.verdict == "supported"
    assert paired_difference(b, {s: v + 3 for s, v in a.items()}).verdict == "reversed"


def test_pairing_is_by_seed_not_by_position():
    # b's seeds in another order: the differences must be taken seed by seed
    res = paired_difference({0: 1.0, 1: 5.0}, {1: 4.0, 0: 0.0})
    assert res.mean_diff == pytest.approx(1.0) and res.sd == pytest.approx(0.0)


@pytest.mark.parametrize("low, high", [(-1.0, 2.0), (0.0, 3.0), (-2.0, 0.0), (0.0, 0.0), (-1e-9, 1e-9),
                                       (math.nan, 1.0), (1.0, math.nan)])
def test_an_interval_containing_zero_is_never_a_verdict(low, high):
    assert verdict(low, high) == "not distinguishable"


def test_verdict_rule_over_random_intervals():
    rng = np.random.default_rng(0)
    for _ in range(2000):
        lo, hi = np.sort(rng.normal(0, 3, size=2))
        v = verdict(float(lo), float(hi))
        assert (v == "supported") == (lo > 0) and (v == "reversed") == (hi < 0)


def test_one_seed_gives_no_interval_and_no_verdict():
    res = paired_difference({0: 5.0}, {0: 1.0})
    assert res.n_seeds == 1 and math.isnan(res.ci_low) and res.verdict == "not distinguishable"
    with pytest.raises(ValueError, match="no seed in common"):
        paired_difference({0: 1.0}, {1: 1.0})


def test_paired_table_covers_the_papers_claims_per_protocol_and_metric():
    rows = []
    gains = {"Baseline": 0.0, "SiSNet": 5.0, "SiSNet+DRC": 5.0}
    for loss in paper.LOSS_TYPES:
        for method in paper.METHODS:
            for seed in range(4):
                for protocol in ("standard", "cross-scale (query x0.5)"):
                    base = 50 + 3 * seed + (10 if loss == "S.+T." else 0)
                    rows.append({"loss": loss, "method": method, "seed": seed, "protocol": protocol,
                                 "rank1": base + gains[method] + 0.1 * seed * (method == "SiSNet+DRC"),
                                 "mAP": base - 1})
    t = table2_paired(pd.DataFrame(rows))
    assert list(t.columns) == ["loss", "comparison", "protocol", "metric", "mean_diff", "ci_low", "ci_high",
                               "n_seeds", "verdict"]
    assert len(t) == len(paper.CLAIMS) * 2 * 2 and set(t["n_seeds"]) == {4}
    r1 = t[(t["metric"] == "rank1") & (t["protocol"] == "standard")].set_index(["loss", "comparison"])
    assert r1.loc[("S.", "SiSNet - Baseline"), "verdict"] == "supported"  # +5 on every seed
    assert r1.loc[("S.", "SiSNet - Baseline"), "mean_diff"] == pytest.approx(5.0)
    assert r1.loc[("S.+T. - S.", "Baseline: S.+T. - S."), "mean_diff"] == pytest.approx(10.0)
    # +0.1 * seed (0, .1, .2, .3): mean 0.15, sd 0.129, interval [-0.055, 0.355] contains 0
    drc = r1.loc[("S.", "SiSNet+DRC - SiSNet")]
    assert drc["mean_diff"] == pytest.approx(0.15) and drc["verdict"] == "not distinguishable"
    # mAP is identical for every method: the differences are exactly 0 -> interval [0, 0] -> not distinguishable
    m = t[(t["metric"] == "mAP") & (t["comparison"] == "SiSNet - Baseline")]
    assert (m["mean_diff"] == 0).all() and (m["verdict"] == "not distinguishable").all()


def test_paired_table_refuses_duplicate_seeds():
    df = pd.DataFrame([{"loss": "S.", "method": "SiSNet", "seed": 0, "protocol": "standard", "rank1": 1.0},
                       {"loss": "S.", "method": "SiSNet", "seed": 0, "protocol": "standard", "rank1": 2.0},
                       {"loss": "S.", "method": "Baseline", "seed": 0, "protocol": "standard", "rank1": 1.0}])
    with pytest.raises(ValueError, match="several rows per seed"):
        paired_table(df, [Comparison("SiSNet - Baseline", "S.", ("S.", "SiSNet"), ("S.", "Baseline"))], ["rank1"])
