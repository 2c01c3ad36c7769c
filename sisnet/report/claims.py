"""Paired-claim tables rendered for reading: one line per claim, a one-sentence summary per family, a forest plot.

Input: a frame of paired differences (:func:`sisnet.stats.paired_table`, optionally with the Holm columns of
:func:`sisnet.stats.holm_family`): ``comparison, protocol, metric, mean_diff, ci_low, ci_high, n_seeds, verdict``
and, when adjusted, ``ci_low_holm, ci_high_holm, verdict_holm``. The verdict shown is the adjusted one when the
frame has it; an interval that contains 0 is never rendered as supported or reversed (:func:`sisnet.stats.verdict`).
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from sisnet.report.io import plt as _plt
from sisnet.stats import verdict

__all__ = ["claim_lines", "family_sentence", "render_claims", "forest_plot"]


def _signed(x: float) -> str:
    return f"{x:+.1f}"


def _interval(row: Any) -> tuple[float, float, str]:
    if "ci_low_holm" in row and pd.notna(row.get("ci_low_holm")):
        return row["ci_low_holm"], row["ci_high_holm"], "Holm 95 %"
    return row["ci_low"], row["ci_high"], "95 %"


def claim_lines(frame: pd.DataFrame, unit: str = "points") -> list[str]:
    """One markdown bullet per claim: estimate, interval, n and the verdict read off that interval."""
    lines = []
    for _, row in frame.iterrows():
        lo, hi, label = _interval(row)
        v = verdict(float(lo), float(hi))
        extra = ""
        if label.startswith("Holm"):
            extra = f"; unadjusted [{_signed(row['ci_low'])}, {_signed(row['ci_high'])}]"
        lines.append(f"- **{row['comparison']}**, {row['protocol']} {row['metric']}: {_signed(row['mean_diff'])} {unit}, "
                     f"{label} [{_signed(lo)}, {_signed(hi)}], n = {int(row['n_seeds'])} seeds{extra}: **{v}**")
    return lines


def family_sentence(frame: pd.DataFrame, name: str) -> str:
    """``"<name>: of N claims, a supported, b reversed, c not distinguishable (Holm-adjusted)."``"""
    verdicts = [verdict(float(lo), float(hi)) for lo, hi, _ in (_interval(r) for _, r in frame.iterrows())]
    adjusted = "ci_low_holm" in frame.columns and frame["ci_low_holm"].notna().any()
    counts = {v: verdicts.count(v) for v in ("supported", "reversed", "not distinguishable")}
    return (f"{name}: of {len(verdicts)} claims, {counts['supported']} supported, {counts['reversed']} reversed, "
            f"{counts['not distinguishable']} not distinguishable" + (" (Holm-adjusted)." if adjusted else "."))


def render_claims(frame: pd.DataFrame, name: str, unit: str = "points") -> str:
    """The family sentence followed by its claim lines, as markdown."""
    return "\n".join([family_sentence(frame, name), "", *claim_lines(frame, unit)]) + "\n"


def forest_plot(frame: pd.DataFrame, title: str, unit: str = "points"):
    """Each claim's paired difference with its (adjusted, when present) interval, grouped by protocol; the
    unadjusted interval is drawn thin beneath the adjusted one, each coloured by its own verdict. Returns the figure."""
    plt = _plt()
    protocols = list(dict.fromkeys(frame["protocol"]))
    rows = []
    for p in protocols:
        rows += [(p, r) for _, r in frame[frame["protocol"] == p].iterrows()]
    fig, ax = plt.subplots(figsize=(8, 0.55 * len(rows) + 1.2 + 0.3 * len(protocols)))
    colours = {"supported": "#1a7f37", "reversed": "#cf222e", "not distinguishable": "#57606a"}
    y, ticks, labels, last = 0.0, [], [], None
    for protocol, r in rows:
        if protocol != last:
            y += 0.6
            ax.text(0.0, y, protocol, transform=ax.get_yaxis_transform(), fontsize=11, fontweight="bold", va="center",
                    ha="left")
            y += 0.8
            last = protocol
        lo, hi, _ = _interval(r)
        v = verdict(float(lo), float(hi))
        raw = verdict(float(r["ci_low"]), float(r["ci_high"]))
        ax.plot([r["ci_low"], r["ci_high"]], [y + 0.25, y + 0.25], color=colours[raw], lw=1.2)
        ax.plot([lo, hi], [y, y], color=colours[v], lw=4, solid_capstyle="butt")
        ax.plot(r["mean_diff"], y, "o", color="black", ms=6, zorder=3)
        ticks.append(y)
        labels.append(f"{r['comparison']} ({r['metric']})")
        y += 1.0
    ax.axvline(0, color="black", lw=1)
    ax.set_yticks(ticks, labels, fontsize=10)
    ax.set_ylim(y, 0)
    ax.set_xlabel(f"paired difference ({unit}); thick: Holm-adjusted 95 %, thin: unadjusted", fontsize=10)
    handles = [plt.Line2D([], [], color=c, lw=4, label=k) for k, c in colours.items()]
    ax.legend(handles=handles, fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3, frameon=False)
    ax.set_title(title, fontsize=12)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig
