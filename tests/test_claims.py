"""The generic claims renderer and forest plot: verdicts read off the interval shown (adjusted when present)."""
from __future__ import annotations

import pandas as pd

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
