"""The convergence paragraph of notebook 03: whether the grid's runs have flattened, and what twice the schedule
changes (generated from :mod:`sisnet.report.schedule_checks`' tables)."""
from __future__ import annotations

import pandas as pd

from sisnet.report.schedule_checks import SCHEDULE_CHECK_LIMIT
from sisnet.report.validation import TOLERANCE

__all__ = ["discuss_convergence"]


def discuss_convergence(summary: pd.DataFrame, check: pd.DataFrame | None) -> str:
    """Markdown: whether every configuration has flattened, and the 2x-schedule check when it was run."""
    lines = []
    if "flat" in summary:
        n_flat = int(summary["flat"].sum())
        worst = summary.loc[summary["last_change"].abs().idxmax()]
        lines.append(f"**Convergence:** {n_flat} of {len(summary)} configurations move by at most {TOLERANCE:g} points "
                     f"of rank-1 (mean over seeds) between their last two evaluations; the largest move is "
                     f"{worst['last_change']:+.1f} ({worst['loss']} {worst['method']}).")
    if check is None or not len(check):
        lines.append("The 2x-schedule check (`python -m sisnet.experiments convergence`) has not been run for these "
                     "results.")
    else:
        ok = int(check["within_limit"].sum())
        big = check.loc[check["rank1_diff"].abs().idxmax()]
        lines.append(f"Twice the schedule (seed {int(check['seed'].iloc[0])}) changes rank-1 by at most "
                     f"{SCHEDULE_CHECK_LIMIT:g} points for {ok} of {len(check)} configurations; the largest change is "
                     f"{big['rank1_diff']:+.1f} ({big['loss']} {big['method']}).")
        if ok < len(check):
            lines.append(_claims_at_both_lengths(check))
    return " ".join(lines)


def _claims_at_both_lengths(check: pd.DataFrame) -> str:
    """The paper's Table 2 claims on the 2x-check's one seed, at the schedule and at twice it (rank-1 differences;
    one seed, so no interval): does a longer schedule move them, and which way?"""
    from sisnet import paper

    r1 = {(r["loss"], r["method"]): (r["rank1_1x"], r["rank1_2x"]) for _, r in check.iterrows()}
    parts = []
    for name, _, a, b in paper.CLAIMS:
        if a in r1 and b in r1:
            label = name if ":" in name else f"{name} ({a[0]})"
            parts.append(f"{label} {r1[a][0] - r1[b][0]:+.1f} -> {r1[a][1] - r1[b][1]:+.1f}")
    if not parts:
        return ""
    return ("So the runs had not converged on test, although their last two evaluations were flat. The paper's claims on that seed, rank-1 difference at the schedule -> at twice it (one seed, no "
            "interval): " + "; ".join(parts) + ".")
