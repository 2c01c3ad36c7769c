"""Paired-claim tables rendered for reading: one line per claim, a one-sentence summary per family, a forest plot.

Input: a frame of paired differences (:func:`sisnet.stats.paired_table`, optionally with the Holm columns of
:func:`sisnet.stats.holm_family`): ``comparison, protocol, metric, mean_diff, ci_low, ci_high, n_seeds, verdict``
and, when adjusted, ``ci_low_holm, ci_high_holm, verdict_holm``. The verdict shown is the adjusted one when the
frame has it; an interval that contains 0 is never rendered as supported or reversed (:func:`sisnet.stats.verdict`).
A frame with a ``family`` column is rendered family by family (:func:`render_families`): the tally counts the
primary family only, the other rows are labelled exploratory. :func:`with_family` gives a table without Holm
columns its primary family (:data:`SYNTHETIC_PRIMARY` for the synthetic Table 2).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from sisnet.report.io import plt as _plt
from sisnet.stats import holm_family, verdict

__all__ = ["claim_lines", "family_sentence", "render_claims", "render_families", "claims_table", "forest_plot",
           "with_family", "Family", "SYNTHETIC_PRIMARY"]


@dataclass(frozen=True)
class Family:
    """A pre-registered family: these ``comparisons`` under ``loss``, each under every one of ``protocols``, in
    ``metric``; Holm's adjustment runs over its rows."""

    comparisons: tuple[str, ...]
    loss: str
    protocols: tuple[str, ...]
    metric: str

    def rows(self, paired: pd.DataFrame) -> pd.Series:
        return (paired["comparison"].isin(self.comparisons) & (paired["loss"] == self.loss)
                & paired["protocol"].isin(self.protocols) & (paired["metric"] == self.metric))


#: The synthetic Table 2's primary family, the same claims as the real experiment's: SiSNet against the
#: augmentation control, what DRC adds, SiSNet against the Baseline; S.+T., standard and cross-scale, mAP.
SYNTHETIC_PRIMARY = Family(("SiSNet - Baseline+LR aug.", "SiSNet+DRC - SiSNet", "SiSNet - Baseline"), "S.+T.",
                           ("standard", "cross-scale (query x0.5)"), "mAP")


def with_family(paired: pd.DataFrame, family: Family = SYNTHETIC_PRIMARY) -> pd.DataFrame:
    """``paired`` with a ``family`` column: Holm's adjustment (:func:`sisnet.stats.holm_family`) over the rows of
    ``family`` (first, in its order), every other row ``exploratory`` with no adjusted interval."""
    if "family" in paired.columns:
        return paired
    mask = family.rows(paired)
    order = {c: i for i, c in enumerate(family.comparisons)}
    primary = paired[mask].sort_values(["protocol", "comparison"], kind="stable",
                                       key=lambda s: s.map(order) if s.name == "comparison" else
                                       s.map({p: i for i, p in enumerate(family.protocols)}))
    primary = holm_family(primary) if len(primary) else primary
    out = pd.concat([primary.assign(family="primary"), paired[~mask].assign(family="exploratory")], ignore_index=True)
    return out[["family", *[c for c in out.columns if c != "family"]]]


def _signed(x: float) -> str:
    return "-" if pd.isna(x) else f"{x:+.1f}"


def _span(lo: float, hi: float) -> str:
    return "no interval (one seed)" if pd.isna(lo) else f"[{_signed(lo)}, {_signed(hi)}]"


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
        extra = f"; unadjusted {_span(row['ci_low'], row['ci_high'])}" if label.startswith("Holm") else ""
        lines.append(f"- **{_label(row)}**, {row['protocol']} {row['metric']}: {_signed(row['mean_diff'])} {unit}, "
                     f"{label} {_span(lo, hi)}, n = {int(row['n_seeds'])} seeds{extra}: **{v}**")
    return lines


def _label(row: Any) -> str:
    """The claim's name, with its loss unless the name already says it (``Baseline: S.+T. - S.``)."""
    loss = str(row.get("loss", "") or "")
    name = str(row["comparison"])
    return name if not loss or ":" in name or name.endswith(loss) else f"{name} ({loss})"


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


def render_families(frame: pd.DataFrame, name: str, unit: str = "points") -> str:
    """Markdown: the primary family (its sentence, the tally over it alone, and its lines), then every other row
    under "exploratory" (unadjusted, not in the tally), grouped by protocol. ``frame`` has a ``family`` column
    (:func:`with_family`)."""
    primary, rest = frame[frame["family"] == "primary"], frame[frame["family"] != "primary"]
    parts = [render_claims(primary, f"{name}, primary family") if len(primary) else f"{name}: no primary family.\n"]
    if len(rest):
        parts.append(f"Exploratory ({len(rest)} comparisons, unadjusted 95 % intervals; not in the tally above):\n")
        for protocol, sub in rest.groupby("protocol", sort=False):
            parts.append(f"*{protocol}*\n\n" + "\n".join(claim_lines(sub, unit)) + "\n")
    return "\n".join(parts)


def claims_table(frame: pd.DataFrame) -> str:
    """A compact Markdown table of claims: one row per claim, one column per protocol and metric, each cell the
    estimate, the interval shown (adjusted when present) and the verdict read off it."""
    cols = list(dict.fromkeys(f"{p} {m}" for p, m in zip(frame["protocol"], frame["metric"])))
    cells: dict[str, dict[str, str]] = {}
    for _, row in frame.iterrows():
        lo, hi, _ = _interval(row)
        cells.setdefault(_label(row), {})[f"{row['protocol']} {row['metric']}"] = (
            f"{_signed(row['mean_diff'])} {_span(lo, hi)} **{verdict(float(lo), float(hi))}**")
    lines = ["| claim | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(c.get(k, "") for k in cols) + " |" for name, c in cells.items()]
    return "\n".join(lines) + "\n"


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
        labels.append(f"{_label(r)} ({r['metric']})")
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
