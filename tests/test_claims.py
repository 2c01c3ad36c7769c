"""The generic claims renderer and forest plot: verdicts read off the interval shown (adjusted when present)."""
from __future__ import annotations

import pandas as pd
import pytest

from sisnet.report.claims import claim_lines, family_sentence, forest_plot, render_claims


def _frame(**holm):
    rows = pd.DataFrame({"comparison": ["A - B", "C - D", "E - F"], "protocol": ["standard", "standard", "cross"],
                         "metric": "mAP", "mean_diff": [2.0, 1.0, -3.0], "ci_low": [0.5, 0.2, -5.0],
                         "ci_high": [3.5, 1.8, -1.0], "n_seeds": 5})
    return rows.assign(**holm)


def test_an_interval_that_contains_zero_is_never_rendered_supported():
    plain = claim_lines(_frame())
    assert [line.rsplit("**", 2)[-2] for line in plain] == ["supported", "supported", "reversed"]
    # the adjusted interval of C - D contains 0: its line says so even though the unadjusted one does not
    adjusted = _frame(ci_low_holm=[0.1, -0.4, -6.0], ci_high_holm=[3.9, 2.4, 0.2])
    lines = claim_lines(adjusted)
    assert "Holm 95 % [-0.4, +2.4]" in lines[1] and lines[1].endswith("**not distinguishable**")
    assert "unadjusted [+0.2, +1.8]" in lines[1]
    assert lines[2].endswith("**not distinguishable**") and lines[0].endswith("**supported**")
    assert family_sentence(adjusted, "F") == ("F: of 3 claims, 1 supported, 0 reversed, 2 not distinguishable "
                                              "(Holm-adjusted).")
    text = render_claims(adjusted, "F")
    assert text.splitlines()[0].startswith("F: of 3") and text.count("\n- **") == 3


def test_forest_plot_groups_by_protocol():
    fig = forest_plot(_frame(ci_low_holm=[0.1, -0.4, -6.0], ci_high_holm=[3.9, 2.4, 0.2]), "t")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["A - B (mAP)", "C - D (mAP)", "E - F (mAP)"]
    assert {t.get_text() for t in ax.texts} == {"standard", "cross"}


def _table2_like():
    """A synthetic Table 2 paired frame: the primary family's six rows (one clearly decided) and two others."""
    from sisnet.report.claims import SYNTHETIC_PRIMARY as fam

    rows = [dict(loss=fam.loss, comparison=c, protocol=p, metric=fam.metric, mean_diff=d, ci_low=d - 1.0,
                 ci_high=d + 1.0, n_seeds=5, verdict="x")
            for p in fam.protocols for c, d in zip(fam.comparisons, (8.0, 0.5, 1.2))]
    rows += [dict(rows[0], loss="S.", mean_diff=6.0, ci_low=5.0, ci_high=7.0),  # the same claim under S.: exploratory
             dict(rows[0], metric="rank1", mean_diff=-6.0, ci_low=-7.0, ci_high=-5.0)]
    return pd.DataFrame(rows)


def test_with_family_adjusts_the_primary_family_only_and_the_tally_counts_it_alone():
    from sisnet.report.claims import render_families, with_family

    out = with_family(_table2_like())
    primary = out[out["family"] == "primary"]
    assert len(primary) == 6 and (out["family"] == "exploratory").sum() == 2
    assert primary["ci_low_holm"].notna().all() and out.loc[out["family"] != "primary", "ci_low_holm"].isna().all()
    assert (primary["ci_high_holm"] - primary["ci_low_holm"] > primary["ci_high"] - primary["ci_low"]).all()  # wider
    # +1.2 +- 1.0 is supported unadjusted, not after Holm; +8.0 stays supported
    assert list(primary["verdict_holm"][:3]) == ["supported", "not distinguishable", "not distinguishable"]
    text = render_families(out, "T2")
    first = text.splitlines()[0]
    assert first == "T2, primary family: of 6 claims, 2 supported, 0 reversed, 4 not distinguishable (Holm-adjusted)."
    assert "Exploratory (2 comparisons" in text and "-6.0 points, 95 % [-7.0, -5.0], n = 5 seeds: **reversed**" in text
    assert with_family(out) is out  # a frame that has its families keeps them


def test_one_seed_claims_say_so_and_claims_table_reads_the_adjusted_interval():
    from sisnet.report.claims import claims_table, with_family

    one = _frame().assign(ci_low=float("nan"), ci_high=float("nan"), n_seeds=1)
    assert all(line.endswith("no interval (one seed), n = 1 seeds: **not distinguishable**") for line in claim_lines(one))
    table = claims_table(with_family(_table2_like()).query("family == 'primary'"))
    lines = table.splitlines()
    assert lines[0] == "| claim | standard mAP | cross-scale (query x0.5) mAP |" and len(lines) == 5
    assert "| SiSNet - Baseline (S.+T.) | +1.2 [" in table and "**not distinguishable** |" in lines[4]


def test_table3_gaps_become_claims_paired_by_seed():
    from sisnet.report.tables import PROTOCOL_GAP, table3_paired

    runs = pd.DataFrame([dict(loss="S.", method=m, seed=s, rank1_gap=g + 0.1 * s, mAP_gap=g - 0.1 * s, n_evals=2,
                              run_id="r") for m, g in (("Baseline", 5.0), ("SiSNet", 2.0), ("SiSNet+DRC", 2.5))
                         for s in range(4)])
    paired = table3_paired(runs)
    assert list(paired["comparison"].unique()) == ["gap(Baseline) - gap(SiSNet)", "gap(SiSNet) - gap(SiSNet+DRC)"]
    assert set(paired["protocol"]) == {PROTOCOL_GAP} and (paired["n_seeds"] == 4).all()
    by = paired.set_index(["comparison", "metric"])
    assert by.loc[("gap(Baseline) - gap(SiSNet)", "rank1"), "mean_diff"] == pytest.approx(3.0)
    assert by.loc[("gap(SiSNet) - gap(SiSNet+DRC)", "mAP"), "mean_diff"] == pytest.approx(-0.5)
