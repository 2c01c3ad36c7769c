"""The generated discussion states the verdicts and numbers of the tables it is given, and nothing else."""
from __future__ import annotations

import pandas as pd

from sisnet import paper
from sisnet.report import table2_paired
from sisnet.report.discussion import discuss_cams, discuss_table2, discuss_table3


def _per_run(gain: float, noise: list[float]) -> pd.DataFrame:
    rows = []
    for loss in paper.LOSS_TYPES:
        for method in paper.METHODS:
            for seed, eps in enumerate(noise):
                v = 50 + (gain if method != "Baseline" else 0.0) + (eps if method == "SiSNet" else 0.0)
                rows.append({"loss": loss, "method": method, "seed": seed, "protocol": "standard", "rank1": v,
                             "mAP": v - 10})
    return pd.DataFrame(rows)


def test_table2_discussion_reports_verdicts_from_the_intervals():
    text = discuss_table2(table2_paired(_per_run(5.0, [0.0, 0.5, -0.5, 0.2, -0.2])))
    assert "n = 5 seeds" in text
    assert "SiSNet - Baseline (S.): R1 +5.0" in text and "**supported**" in text
    assert "Against the paper" not in text  # nothing is reversed
    flipped = discuss_table2(table2_paired(_per_run(-5.0, [0.0, 0.5, -0.5, 0.2, -0.2])))
    assert "**reversed**" in flipped and "Against the paper" in flipped and "SiSNet - Baseline (standard, R1)" in flipped


def test_table2_discussion_says_when_intervals_are_too_wide():
    text = discuss_table2(table2_paired(_per_run(1.0, [0.0, 9.0, -9.0])), goal_half_width=3.0)
    assert "Precision:" in text and "seeds would bring the widest to ±3" in text
    assert "not distinguishable" in text


def test_table3_and_cam_discussions_use_the_given_numbers():
    per_run = pd.DataFrame([{"loss": "S.", "method": m, "seed": s, "rank1_gap": g + 0.1 * s, "mAP_gap": g}
                            for m, g in (("Baseline", 3.0), ("SiSNet", 1.0), ("SiSNet+DRC", 0.5)) for s in range(3)])
    text = discuss_table3(per_run)
    assert "gap(Baseline) - gap(SiSNet) +2.0" in text and "measured Baseline +3.1" in text
    agreement = pd.DataFrame({"corr_mean": [0.99, 0.95, 0.97]}, index=list(paper.METHODS))
    on_person = pd.DataFrame({"method": list(paper.METHODS), "person_share_mean": [0.2, 0.3, 0.62],
                              "mask_area_mean": [0.27, 0.27, 0.27]})
    cams = discuss_cams(agreement, on_person)
    assert "Baseline 0.99" in cams and "SiSNet+DRC 0.62" in cams and "Baseline 0.20" in cams
    assert "1 of 3 models put no more of their map on the person than a uniform map" in cams  # 0.20 < area 0.27
    above = discuss_cams(agreement, on_person.assign(person_share_mean=[0.4, 0.5, 0.62]))
    assert "2 of 3 stay below 0.6" in above and "uniform map:" not in above
    goal = discuss_cams(agreement, on_person.assign(person_share_mean=[0.6, 0.7, 0.62]))
    assert "Every model puts at least 0.6" in goal
