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
    # the goal's own scope: rank-1, standard protocol, the S.+T. and S.+T. - S. comparisons; only SiSNet is noisy
    # and the same on both losses, so the two S.+T. comparisons with SiSNet in them miss ±3, the other four meet it
    scope = text.split("*The goal's scope*")[1]
    assert "4 of 6 half-widths are within ±3" in scope, scope
    assert "The widest, SiSNet" in scope and "seeds would bring it to ±3" in scope
    precise = discuss_table2(table2_paired(_per_run(1.0, [0.0, 0.5, -0.5])), goal_half_width=3.0)
    assert "6 of 6 half-widths are within ±3" in precise and "The widest" not in precise


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


def _triplet_runs(gap_standard: list[float], gap_clean: list[float]) -> pd.DataFrame:
    """Baseline runs of both losses under the two protocols of ``triplet_diagnosis``; S.+T. = S. + gap."""
    rows = []
    for seed, (g_std, g_clean) in enumerate(zip(gap_standard, gap_clean)):
        for protocol, gap in (("standard", g_std), ("standard, gallery without distractors", g_clean)):
            for loss, delta in (("S.", 0.0), ("S.+T.", gap)):
                rows.append({"loss": loss, "method": "Baseline", "seed": seed, "protocol": protocol,
                             "rank1": 90 + delta, "mAP": 80 + 2 * delta,
                             "loss_id_first": 5.0, "loss_id_last": 1.5 if loss == "S.+T." else 1.7,
                             "loss_triplet_first": 6.0 if loss == "S.+T." else 0.0,
                             "loss_triplet_last": 0.1 if loss == "S.+T." else 0.0})
    return pd.DataFrame(rows)


def test_triplet_discussion_says_whether_the_distractors_make_the_gap():
    from sisnet.report.discussion import discuss_triplet
    from sisnet.stats import Comparison, paired_table

    comp = [Comparison("Baseline: S.+T. - S.", "S.+T. - S.", ("S.+T.", "Baseline"), ("S.", "Baseline"))]
    still = _triplet_runs([-5.0, -6.0, -4.0], [-4.0, -5.0, -3.5])
    text = discuss_triplet(still, paired_table(still, comp))
    assert "n = 3" in text and "standard: R1 -5.0" in text
    assert "distractors are not what makes the gap" in text and "still reversed" in text
    assert "from 6.00 in the first epoch to 0.10" in text and "1.50 with it and 1.70 without" in text
    closed = _triplet_runs([-5.0, -6.0, -4.0], [1.0, -1.0, 0.5])
    text = discuss_triplet(closed, paired_table(closed, comp))
    assert "distractors are what makes the gap" in text and "no longer reversed" in text
    # the validation rows: the last chosen candidate that trained the Baseline with both losses
    choices = pd.DataFrame({"choice": ["lr", "lr"], "candidate": ["a", "b"], "chosen": [False, True]})
    vruns = pd.DataFrame({"choice": ["lr"] * 4, "candidate": ["a", "a", "b", "b"], "method": ["Baseline"] * 4,
                          "loss": ["S.", "S.+T.", "S.", "S.+T."], "seed": [0] * 4,
                          "rank1": [10.0, 20.0, 96.0, 97.0], "mAP": [5.0, 6.0, 95.0, 90.0]})
    text = discuss_triplet(still, paired_table(still, comp), vruns, choices)
    assert "S.+T. R1 97.0 vs S. 96.0, mAP 90.0 vs 95.0" in text and "holds there in rank-1 but not in mAP" in text
    check = pd.DataFrame({"loss": ["S.", "S.+T."], "method": ["Baseline"] * 2, "seed": [0, 0],
                          "rank1_1x": [96.0, 88.5], "rank1_2x": [96.9, 92.3]})
    text = discuss_triplet(still, paired_table(still, comp), schedule_check=check)
    assert "gap narrows: -7.5 at the schedule, -4.6 at twice it" in text


def test_cam_discussion_says_where_the_maps_come_from():
    agreement = pd.DataFrame({"corr_mean": [0.95]}, index=["Baseline"])
    on_person = pd.DataFrame({"loss": ["S."], "method": ["Baseline"], "person_share": [0.25],
                              "uniform_map_share": [0.26], "activation_share": [0.18], "outer_share": [0.55],
                              "uniform_outer_share": [0.5]})
    backbone = pd.DataFrame({"weights": ["imagenet"], "activation_share_mean": [0.28]})
    text = discuss_cams(agreement, on_person, backbone)
    assert "puts 0.18 of its mass on the person" in text and "0.28 for the backbone before" in text
    assert "does not favour the person" in text and "moved it away from the person" in text
    on_person["activation_share"] = 0.4
    text = discuss_cams(agreement, on_person, backbone)
    assert "does favour the person" in text and "moved it towards the person" in text
