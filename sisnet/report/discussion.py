"""Discussion text generated from the results tables: what the numbers support, reverse or cannot decide.

Every number and verdict in a notebook's closing discussion comes from here, computed from the tables the
notebook has just written, so prose and results cannot drift apart. Verdicts are read off 95 % t-intervals of
differences paired by seed (:mod:`sisnet.stats`); nothing here is typed by hand.
"""
from __future__ import annotations

import math
from typing import Sequence

import pandas as pd

from sisnet import paper
from sisnet.stats import paired_difference

__all__ = ["discuss_table2", "discuss_table3", "discuss_cams", "discuss_scale_robustness", "discuss_training",
           "discuss_table1", "discuss_footage", "discuss_triplet", "GOAL_HALF_WIDTH", "FLAT_POINTS"]

#: The interval half-width (points) below which a comparison counts as measured precisely enough.
GOAL_HALF_WIDTH = 3.0
#: The share of CAM mass on the person that the experiment issue sets as the goal for trained models.
PERSON_SHARE_GOAL = 0.6
#: A run counts as flattened when its either-scale rank-1 moves by at most this much between its last two evaluations.
FLAT_POINTS = 1.5
_LABEL = {"rank1": "R1", "mAP": "mAP"}


def _signed(v: float) -> str:
    return "-" if isinstance(v, float) and math.isnan(v) else f"{v:+.1f}"


def _interval(low: float, high: float) -> str:
    return "no interval (one seed)" if math.isnan(low) else f"[{low:+.1f}, {high:+.1f}]"


def _claim_label(comparison: str, loss: str) -> str:
    """A paired-table row's name: the comparison, with its loss unless the comparison already names it."""
    return comparison if comparison.endswith(loss) or ":" in comparison else f"{comparison} ({loss})"


def _counts(verdicts: Sequence[str]) -> str:
    parts = [f"{sum(v == k for v in verdicts)} {k}" for k in ("supported", "reversed", "not distinguishable")]
    return ", ".join(parts)


def discuss_table2(paired: pd.DataFrame, *, goal_half_width: float = GOAL_HALF_WIDTH) -> str:
    """Markdown: each of the paper's Table 2 claims under each protocol, its paired interval and verdict.

    ``paired`` is :func:`sisnet.report.table2_paired`'s table. Ends with what differs from the paper and
    how far the intervals are from ``goal_half_width``.
    """
    if not len(paired):
        return "No paired comparison could be made (the grid has no pair of configurations sharing a seed)."
    n = int(paired["n_seeds"].max())
    lines = [f"**What the measured Table 2 says** (differences paired by seed, n = {n} seed{'s' if n > 1 else ''}; "
             f"mean [95 % t-interval] in points; a claim is *supported* only when its whole interval lies above 0):", ""]
    for protocol, sub in paired.groupby("protocol", sort=False):
        lines.append(f"*{protocol} protocol*")
        lines.append("")
        for (loss, comp), rows in sub.groupby(["loss", "comparison"], sort=False):
            cells = []
            for _, r in rows.iterrows():
                cells.append(f"{_LABEL.get(r['metric'], r['metric'])} {_signed(r['mean_diff'])} "
                             f"{_interval(r['ci_low'], r['ci_high'])} **{r['verdict']}**")
            lines.append(f"- {_claim_label(comp, loss)}: " + "; ".join(cells))
        lines.append("")
    controls = {c[0] for c in paper.CONTROL_COMPARISONS}
    is_control = paired["comparison"].isin(controls)
    r1 = paired[(paired["metric"] == "rank1") & ~is_control]
    lines.append(f"Rank-1 verdicts on the paper's claims over all protocols: {_counts(list(r1['verdict']))} "
                 f"(of {len(r1)}).")
    c1 = paired[(paired["metric"] == "rank1") & is_control]
    if len(c1):
        lines.append("")
        lines.append(f"**The augmentation control** ({paper.CONTROL}: one branch that sees the second-scale view of "
                     f"half its images; not in the paper): rank-1 verdicts of SiSNet / SiSNet+DRC against it, all "
                     f"protocols: {_counts(list(c1['verdict']))} (of {len(c1)}). *Supported* there means a gain beyond "
                     "seeing low-resolution images.")
    reversed_rows = paired[(paired["verdict"] == "reversed") & ~is_control]
    if len(reversed_rows):
        names = sorted({f"{r['comparison']} ({r['protocol']}, {_LABEL.get(r['metric'], r['metric'])})"
                        for _, r in reversed_rows.iterrows()})
        lines.append("")
        lines.append("**Against the paper:** the paper reports a gain for each of these, measured here as a loss whose "
                     "interval lies below 0: " + "; ".join(names) + ".")
    half = ((paired["ci_high"] - paired["ci_low"]) / 2).dropna()
    if len(half):
        worst = float(half.max())
        lines.append("")
        if worst > goal_half_width:
            need = _seeds_needed(worst, n, goal_half_width)
            lines.append(f"**Precision:** half-widths run from {half.min():.1f} to {worst:.1f} points; at this spread "
                         f"about {need} seeds would bring the widest to ±{goal_half_width:g}. Until then a *not "
                         f"distinguishable* verdict means the experiment cannot tell, not that the methods are equal.")
        else:
            lines.append(f"**Precision:** every half-width is at most {worst:.1f} points (goal ±{goal_half_width:g}).")
        goal = _goal_precision(paired, n, goal_half_width)
        if goal:
            lines.append("")
            lines.append(goal)
    return "\n".join(lines)


def _seeds_needed(half_width: float, n: int, goal_half_width: float) -> int:
    """Seeds for an interval of ``half_width`` at ``n`` seeds to reach ``goal_half_width``: the half-width shrinks
    as 1/sqrt(n) at the same spread (the t-quantile's own shrinking is left out, so this errs high)."""
    return math.ceil(n * (half_width / goal_half_width) ** 2)


def _goal_precision(paired: pd.DataFrame, n: int, goal_half_width: float) -> str:
    """The experiment issue's precision goal, on its own scope: rank-1, standard protocol, every comparison with
    the triplet loss (S.+T. between methods, and S.+T. - S.); which meet ±goal and what the widest would need."""
    from sisnet.report.tables import PROTOCOL_STANDARD

    scope = paired[(paired["metric"] == "rank1") & (paired["protocol"] == PROTOCOL_STANDARD)
                   & paired["loss"].str.startswith("S.+T.")].dropna(subset=["ci_low"])
    if not len(scope):
        return ""
    half = (scope["ci_high"] - scope["ci_low"]) / 2
    met = int((half <= goal_half_width).sum())
    widest = scope.loc[half.idxmax()]
    text = (f"*The goal's scope* (rank-1, standard protocol, the {len(scope)} comparisons with the triplet loss): "
            f"{met} of {len(scope)} half-widths are within ±{goal_half_width:g} ({half.min():.1f} to "
            f"{half.max():.1f}).")
    if met < len(scope):
        need = _seeds_needed(float(half.max()), n, goal_half_width)
        text += (f" The widest, {_claim_label(widest['comparison'], widest['loss'])}, is ±{half.max():.1f}; at its spread about {need} seeds would bring it to "
                 f"±{goal_half_width:g}.")
    return text


def discuss_triplet(per_run: pd.DataFrame, paired: pd.DataFrame, validation_runs: pd.DataFrame | None = None,
                    validation_choices: pd.DataFrame | None = None, schedule_check: pd.DataFrame | None = None,
                    schedule_runs: pd.DataFrame | None = None) -> str:
    """Markdown: what :func:`sisnet.report.triplet_diagnosis` measured about the S.+T. - S. gap of one method,
    (given the validation sweep's ``validation_runs`` / ``validation_choices`` tables) the same gap on the
    validation split at the last chosen candidate that trained that method with both losses, (given
    ``convergence_2x``, :func:`sisnet.report.validation.schedule_check`) the gap at twice the schedule on one
    seed, and (given ``triplet_schedule_runs``, :func:`sisnet.report.validation.triplet_schedule_check`) the same
    on every seed, with what a swapped background costs."""
    from sisnet.report.tables import PROTOCOL_STANDARD

    method = str(per_run["method"].iloc[0])
    n = int(paired["n_seeds"].max()) if len(paired) else 0
    lines = [f"**The triplet anomaly** ({method}, S.+T. - S., paired by seed, n = {n}; mean [95 % t-interval] in "
             "points):", ""]
    by = {(r["protocol"], r["metric"]): r for _, r in paired.iterrows()}
    for protocol in dict.fromkeys(paired["protocol"]):
        cells = [f"{_LABEL[m]} {_signed(by[protocol, m]['mean_diff'])} "
                 f"{_interval(by[protocol, m]['ci_low'], by[protocol, m]['ci_high'])} **{by[protocol, m]['verdict']}**"
                 for m in ("rank1", "mAP") if (protocol, m) in by]
        lines.append(f"- {protocol}: " + "; ".join(cells))
    others = [p for p in dict.fromkeys(paired["protocol"]) if p != PROTOCOL_STANDARD]
    if others and (PROTOCOL_STANDARD, "rank1") in by:
        std, other = by[PROTOCOL_STANDARD, "rank1"], by[others[0], "rank1"]
        if std["verdict"] == "reversed":
            lines.append(f"- The gallery's distractors are {'not ' if other['verdict'] == 'reversed' else ''}what "
                         f"makes the gap: without them the rank-1 difference is {_signed(other['mean_diff'])} "
                         f"(standard: {_signed(std['mean_diff'])})"
                         + (", still reversed." if other["verdict"] == "reversed" else ", no longer reversed."))
    one = per_run[per_run["protocol"] == PROTOCOL_STANDARD].groupby("loss")
    if {"S.", "S.+T."} <= set(one.groups):
        trip = one.get_group("S.+T.")
        id_s, id_st = one.get_group("S.")["loss_id_last"].mean(), trip["loss_id_last"].mean()
        lines.append(f"- Training (means over seeds): the triplet term falls from {trip['loss_triplet_first'].mean():.2f} "
                     f"in the first epoch to {trip['loss_triplet_last'].mean():.2f} in the last; the ID loss ends at "
                     f"{id_st:.2f} with it and {id_s:.2f} without. "
                     + ("So the triplet loss is optimised and the training identities are fitted at least as well: "
                        "what it learns transfers worse to unseen identities."
                        if id_st <= id_s else "With it the training identities are fitted less well."))
    if schedule_check is not None and len(schedule_check):
        r1 = schedule_check[schedule_check["method"] == method].set_index("loss")
        if {"S.", "S.+T."} <= set(r1.index):
            at1 = r1.loc["S.+T.", "rank1_1x"] - r1.loc["S.", "rank1_1x"]
            at2 = r1.loc["S.+T.", "rank1_2x"] - r1.loc["S.", "rank1_2x"]
            trend = "narrows" if abs(at2) < abs(at1) else "does not narrow"
            lines.append(f"- Schedule: at twice the schedule (seed {int(r1['seed'].iloc[0])}, one seed) the rank-1 gap "
                         f"{trend}: {_signed(at1)} at the schedule, {_signed(at2)} at twice it "
                         f"(S.+T. {r1.loc['S.+T.', 'rank1_1x']:.1f} -> {r1.loc['S.+T.', 'rank1_2x']:.1f}, "
                         f"S. {r1.loc['S.', 'rank1_1x']:.1f} -> {r1.loc['S.', 'rank1_2x']:.1f}).")
    if schedule_runs is not None and len(schedule_runs):
        lines.append(_triplet_schedule_bullet(schedule_runs[schedule_runs["method"] == method]))
    if validation_runs is not None and validation_choices is not None:
        chosen = validation_choices[validation_choices["chosen"].astype(bool)]
        runs = validation_runs.merge(chosen[["choice", "candidate"]], on=["choice", "candidate"])
        runs = runs[runs["method"] == method]
        both = [c for c in dict.fromkeys(runs["choice"]) if runs[runs["choice"] == c]["loss"].nunique() == 2]
        if both:
            sub = runs[runs["choice"] == both[-1]]
            m = sub.groupby("loss")[["rank1", "mAP"]].mean()
            cand = sub["candidate"].iloc[0]
            lines.append(f"- On the validation split (held-out training identities; the sweep's '{both[-1]}' stage, "
                         f"chosen candidate {cand}, seeds {sorted(set(sub['seed']))}): S.+T. R1 {m.loc['S.+T.', 'rank1']:.1f} "
                         f"vs S. {m.loc['S.', 'rank1']:.1f}, mAP {m.loc['S.+T.', 'mAP']:.1f} vs {m.loc['S.', 'mAP']:.1f}. "
                         + ("S.+T. >= S. holds there in rank-1 "
                            + ("and in mAP." if m.loc["S.+T.", "mAP"] >= m.loc["S.", "mAP"] else "but not in mAP.")
                            if m.loc["S.+T.", "rank1"] >= m.loc["S.", "rank1"] else
                            "The gap is there on validation too."))
    return "\n".join(lines)


def discuss_table3(per_run: pd.DataFrame) -> str:
    """Markdown: the paper's Table 3 reading (the cascaded-minus-either gap shrinks from Baseline to SiSNet to
    SiSNet+DRC) tested on ``per_run`` (:func:`sisnet.report.table3_measured`), paired by seed."""
    pub = paper.table3()
    lines = ["**What the measured Table 3 says** (gap = cascaded minus either-scale, points; the paper's gaps "
             "shrink from Baseline to SiSNet to SiSNet+DRC, i.e. one scale's feature becomes as good as both):", ""]
    for loss, sub in per_run.groupby("loss", sort=False):
        for metric in ("rank1", "mAP"):
            col = f"{metric}_gap"
            by_method = {m: dict(zip(g["seed"], g[col])) for m, g in sub.groupby("method")}
            means = ", ".join(f"{m} {_signed(sum(by_method[m].values()) / len(by_method[m]))}"
                              for m in paper.METHODS if m in by_method)
            paper_gaps = pub[(pub["loss"] == loss) & (pub["metric"] == metric)].groupby("method")["gap"].mean()
            paper_txt = ", ".join(f"{m} {_signed(float(paper_gaps[m]))}" for m in paper.METHODS if m in paper_gaps)
            steps = []
            for a, b in (("Baseline", "SiSNet"), ("SiSNet", "SiSNet+DRC")):
                if a in by_method and b in by_method:
                    res = paired_difference(by_method[a], by_method[b])
                    steps.append(f"gap({a}) - gap({b}) {_signed(res.mean_diff)} {_interval(res.ci_low, res.ci_high)} "
                                 f"**{res.verdict}**")
            lines.append(f"- {loss} {_LABEL[metric]}: measured {means} (paper, mean of its datasets: {paper_txt}); "
                         + "; ".join(steps))
    return "\n".join(lines)


def _triplet_schedule_bullet(runs: pd.DataFrame) -> str:
    """One bullet from :func:`sisnet.report.validation.triplet_schedule_check`'s runs (one method): S.+T. - S. at
    each schedule length and how the gap changes between them, both paired by seed, for rank-1 and for the rank-1 a
    swapped background costs."""
    from sisnet.stats import paired_difference

    lengths = list(dict.fromkeys(runs["protocol"]))
    gap = {}  # (length, metric) -> {seed: S.+T. - S.}
    for length in lengths:
        sub = runs[runs["protocol"] == length].pivot_table(index="seed", columns="loss",
                                                           values=["rank1", "swap_rank1_cost"])
        for metric in ("rank1", "swap_rank1_cost"):
            gap[length, metric] = (sub[metric]["S.+T."] - sub[metric]["S."]).dropna().to_dict()

    def cell(res) -> str:
        return f"{_signed(res.mean_diff)} {_interval(res.ci_low, res.ci_high)} **{res.verdict}**"

    zero = {s: 0.0 for s in gap[lengths[0], "rank1"]}
    epochs = runs.groupby("protocol")["epochs"].first()
    parts = []
    for metric, label in (("rank1", "R1"), ("swap_rank1_cost", "R1 a swapped background costs")):
        at = [paired_difference(gap[length, metric], zero) for length in lengths]
        text = f"{label}: " + ", ".join(f"{cell(r)} at {epochs[length]} epochs" for r, length in zip(at, lengths))
        if len(lengths) == 2:
            change = paired_difference(gap[lengths[1], metric], gap[lengths[0], metric])
            text += f"; change of the gap {cell(change)}"
        parts.append(text)
    n = len(zero)
    first, last = (paired_difference(gap[length, "rank1"], zero) for length in (lengths[0], lengths[-1]))
    narrows = paired_difference(gap[lengths[-1], "rank1"], gap[lengths[0], "rank1"]).verdict == "supported"
    if last.verdict == "reversed":
        verdict = ("the gap is still reversed at the longer schedule" + (", though it narrows" if narrows else "")
                   + ": under-training alone does not explain it")
    elif first.verdict == "reversed":
        verdict = ("the gap narrows and is no longer reversed at the longer schedule: the reversal is consistent with "
                   "under-training" if narrows else
                   "the gap is no longer reversed at the longer schedule, but its change is not distinguishable")
    else:
        verdict = "the gap is not reversed at the schedule"
    return (f"- Schedule, every seed (S.+T. - S., paired by seed, n = {n}; `triplet_schedule_runs.csv`): "
            + "; ".join(parts) + f". So {verdict}.")


def discuss_cams(agreement: pd.DataFrame, on_person: pd.DataFrame | None = None,
                 backbone: pd.DataFrame | None = None, reliance: pd.DataFrame | None = None,
                 sources: pd.DataFrame | None = None, reliance_paired: pd.DataFrame | None = None) -> str:
    """Markdown: CAM agreement between the two views per model, and how much of each CAM lies on the person.

    ``agreement``: :func:`sisnet.report.cam_agreement_summary` (index = method); ``on_person``:
    :func:`sisnet.report.cam_on_person` or its summary; ``backbone``: :func:`sisnet.report.backbone_on_person`
    (the activation share before ReID training), to say where the maps' location comes from; ``reliance``:
    :func:`sisnet.report.person_reliance` (retrieval with edited queries), to say whether the *models* use the
    person, whatever their maps show, with ``reliance_paired`` (:func:`sisnet.report.person_reliance_paired`)
    comparing the losses; ``sources``: :func:`sisnet.report.cam_cell_sources`, to say whether each cell
    of the map is computed from the pixels under it.
    """
    lines = ["**What the CAMs show:**", ""]
    corr = agreement["corr_mean"]
    lines.append("- Agreement of the two views' maps (mean correlation r): "
                 + ", ".join(f"{m} {corr[m]:.2f}" for m in corr.index) + ". "
                 + ("Every model already agrees closely across scales, so a consistency loss has little left to "
                    "act on." if corr.min() >= 0.9 else
                    f"The least consistent model is {corr.idxmin()} (r = {corr.min():.2f})."))
    if on_person is not None and len(on_person):
        # per-seed rows (cam_on_person) or the per-configuration summary (cam_on_person_summary)
        share_col = "person_share" if "person_share" in on_person else "person_share_mean"
        area_col = "uniform_map_share" if "uniform_map_share" in on_person else "mask_area_mean"
        area = float(on_person[area_col].mean())
        parts = []
        for _, r in on_person.iterrows():
            label = f"{r['method']} ({r['loss']})" if "loss" in on_person and on_person["loss"].nunique() > 1 else r["method"]
            parts.append(f"{label} {r[share_col]:.2f}")
        lines.append(f"- Share of CAM mass on the person (a uniform map scores the person's area, {area:.2f}; the "
                     f"issue's goal is at least {PERSON_SHARE_GOAL:g}): " + "; ".join(parts) + ".")
        shares = on_person[share_col]
        if (shares >= PERSON_SHARE_GOAL).all():
            lines.append(f"- Every model puts at least {PERSON_SHARE_GOAL:g} of its map on the person.")
        elif (shares > area).all():
            lines.append(f"- Every model looks more at the person than a uniform map would, but {int((shares < PERSON_SHARE_GOAL).sum())} "
                         f"of {len(shares)} stay below {PERSON_SHARE_GOAL:g}: at this map size (a few cells per body "
                         "part) much of each map's mass spills onto the background around the person.")
        else:
            low = [f"{r['method']} ({r['loss']})" if "loss" in on_person else str(r["method"])
                   for _, r in on_person.iterrows() if r[share_col] <= area]
            lines.append(f"- {len(low)} of {len(shares)} models put no more of their map on the person than a uniform "
                         "map would: their class activation maps do not single out the person, so the paper's mechanism "
                         "(consistent discriminative regions on the person) has little to align.")
        cover_col = "coverage_map_share" if "coverage_map_share" in on_person else "coverage_map_share_mean"
        if cover_col in on_person:
            cover = float(on_person[cover_col].mean())
            lines.append(f"- *What the map size allows.* A map whose every cell is weighted by how much of it the person "
                         f"covers scores {cover:.2f} at these maps' size (`coverage_map_share`); reaching "
                         f"{PERSON_SHARE_GOAL:g} " + ("needs a map sharper than the person's own outline at this "
                                                      "resolution." if cover < PERSON_SHARE_GOAL else
                                                      "is within what this resolution allows."))
        if "activation_share" in on_person or "activation_share_mean" in on_person:
            lines.append(_where_maps_look(on_person, area, backbone))
    if reliance is not None and len(reliance):
        lines.append(_person_reliance_bullet(reliance, reliance_paired))
    if sources is not None and len(sources):
        lines.append(_cell_sources_bullet(sources))
    return "\n".join(lines)


def _cell_sources_bullet(sources: pd.DataFrame) -> str:
    """One bullet from :func:`sisnet.report.cam_cell_sources`: how much of each map cell's input gradient lies on the
    person, in the outer columns against the inner ones and against the person's area."""
    outer, inner, area = sources["outer_cell_share"], sources["inner_cell_share"], float(sources["mask_area_mean"].mean())
    text = (f"- *What each cell of the map is computed from.* The share of a cell's input gradient that lies on the "
            f"person ({len(sources)} models, {sources['map_hw'].iloc[0]} maps, {int(sources['n_images'].iloc[0])} query "
            f"images; the person covers {area:.2f} of the image): cells over the outer map columns "
            f"{_span(outer)}, the inner cells {_span(inner)}, every cell between {sources['cell_share_min'].min():.2f} "
            f"and {sources['cell_share_max'].max():.2f}. ")
    if (outer > area).all():
        text += ("Even the cells over the background at the crop's edges draw more of their value from the person than "
                 "its area: every cell reads the person wherever it lies, so the map's spatial pattern does not say "
                 "which pixels the decision rests on.")
    else:
        text += "The cells over the crop's edges draw their value mostly from the background under them."
    return text


def _person_reliance_bullet(reliance: pd.DataFrame, paired: pd.DataFrame | None = None) -> str:
    """One bullet from :func:`sisnet.report.person_reliance` (mean over its seeds): what editing the query images
    costs each model in rank-1, whether the models identify the person or the background (from the sizes of the
    two costs), and (given :func:`sisnet.report.person_reliance_paired`) how the triplet loss changes the cost of
    a swapped background."""
    r1 = reliance.pivot_table(index=["loss", "method"], columns="query", values="rank1", sort=False)
    lost_person = r1["original"] - r1["person removed"]
    lost_background = r1["original"] - r1["background swapped"]
    seeds = sorted(reliance["seed"].unique())
    text = (f"- *Does the model use the person?* Retrieval with edited query images ({len(r1)} models, mean over "
            f"seed{'s' if len(seeds) > 1 else ''} {', '.join(str(s) for s in seeds)}; rank-1 %): unchanged "
            f"{_span(r1['original'], 1)}; the person on another identity's background "
            f"{_span(r1['background swapped'], 1)}; on flat grey {_span(r1['background flat'], 1)}; the person painted "
            f"out {_span(r1['person removed'], 1)}. ")
    if (lost_person > 2 * lost_background).all():
        text += ("Every model loses far more without the person than without its own background, so the models "
                 "identify mainly the person; a background shortcut, if any, is secondary. The CAMs' spread over the "
                 "background therefore does not show what the decision uses.")
    elif (lost_background > 2 * lost_person).all():
        text += "Every model loses far more without its background than without the person: the models use the background."
    else:
        text += "The models use both the person and the background (neither edit dominates for every model)."
    if paired is not None and len(paired):
        rows = paired[(paired["protocol"] == "background swapped") & (paired["metric"] == "rank1_cost")]
        if len(rows):
            parts = [f"{r['comparison'].split(':')[0]} {_signed(r['mean_diff'])} {_interval(r['ci_low'], r['ci_high'])} "
                     f"({_COST_WORD[r['verdict']]})" for _, r in rows.iterrows()]
            text += (f" The rank-1 a swapped background costs, with the triplet loss minus without it (S.+T. - S., "
                     f"paired by seed, n = {int(rows['n_seeds'].max())}, points): " + "; ".join(parts) + ".")
    return text


_COST_WORD = {"supported": "costs more with triplet", "reversed": "costs less with triplet",
              "not distinguishable": "not distinguishable"}


def _span(values: pd.Series, digits: int = 2) -> str:
    lo, hi = f"{float(values.min()):.{digits}f}", f"{float(values.max()):.{digits}f}"
    return lo if lo == hi else f"{lo}-{hi}"


def _where_maps_look(on_person: pd.DataFrame, area: float, backbone: pd.DataFrame | None) -> str:
    """One bullet: the class-free activation map's share on the person (trained models, and the backbone before
    ReID training when given) and the CAMs' share in the outer columns, each against a uniform map."""
    act_col = "activation_share" if "activation_share" in on_person else "activation_share_mean"
    outer_col = "outer_share" if "outer_share" in on_person else "outer_share_mean"
    uniform_outer = float(on_person["uniform_outer_share" if "uniform_outer_share" in on_person else "outer_area"].mean())
    act, outer = on_person[act_col], on_person[outer_col]
    text = (f"- *Where the maps come from.* The class-free activation map (channel sum of the last feature map) puts "
            f"{_span(act)} of its mass on the person for the trained models")
    if backbone is not None and len(backbone):
        b = backbone.iloc[0]
        text += f", and {b['activation_share_mean']:.2f} for the backbone before any ReID training ({b['weights']} weights)"
    text += (f"; the CAMs put {_span(outer)} of their mass in the image's outer quarter columns "
             f"on either side, where a pedestrian crop holds background (a uniform map: {uniform_outer:.2f}). ")
    if act.max() <= area:
        text += "So the backbone's response itself, not only the class weighting, does not favour the person"
    elif act.min() > area:
        text += "The backbone's response does favour the person; the CAMs' class weighting is what spreads them"
    else:
        text += "The trained models differ in whether their backbone's response favours the person"
    if backbone is not None and len(backbone):
        b = float(backbone.iloc[0]["activation_share_mean"])
        if act.max() < b:
            text += f"; ReID training moved it away from the person ({b:.2f} before training)"
        elif act.min() > b:
            text += f"; ReID training moved it towards the person ({b:.2f} before training)"
        else:
            text += f"; ReID training left it about where it started ({b:.2f} before training)"
    text += (". After global average pooling the losses see only the pooled feature, so nothing in training asks the "
             "map to sit on the person.")
    return text


def discuss_scale_robustness(df: pd.DataFrame, metric: str = "rank1") -> str:
    """Markdown: how much each model loses from full-resolution queries to the lowest resolution measured
    (:func:`sisnet.report.scale_robustness`'s table, one seed)."""
    lo = float(df["query_scale"].min())
    lines = [f"**Scale robustness** ({_LABEL.get(metric, metric)}, queries at x1 vs x{lo:g}, one seed; differences "
             f"between models of a few points are within the seed-to-seed spread of Table 2):", ""]
    drops = {}
    for method, g in df.groupby("method", sort=False):
        full = float(g.loc[g["query_scale"] == 1.0, metric].mean())
        low = float(g.loc[g["query_scale"] == lo, metric].mean())
        drops[method] = full - low
        lines.append(f"- {method}: {full:.1f} at x1, {low:.1f} at x{lo:g} (drop {full - low:.1f} points)")
    if len(drops) > 1:
        best = min(drops, key=drops.get)
        lines.append("")
        lines.append(f"The smallest drop is {best}'s; the paper's claim is that the siamese models degrade less "
                     f"than the Baseline ({_drop_directions(drops)}).")
    return "\n".join(lines)


def _drop_directions(drops: dict[str, float]) -> str:
    """Whether the Baseline drops more than each siamese model (a single seed: a direction, not a verdict)."""
    if "Baseline" not in drops:
        return "no Baseline measured"
    parts = [f"{m}: {'less' if d < drops['Baseline'] else 'not less'} than the Baseline" for m, d in drops.items()
             if m != "Baseline"]
    return "; ".join(parts) + "; one seed, so no interval"


def discuss_training(evals: pd.DataFrame, init_runs: pd.DataFrame | None = None) -> str:
    """Markdown: whether the run shown has flattened (its last two either-scale evaluations), and, when the
    initialisation comparison ran, the ImageNet-minus-random difference paired by seed.

    ``evals``: :func:`sisnet.report.evals_frame` (percent); ``init_runs``: :func:`sisnet.report.init_comparison`'s
    per-run table.
    """
    either = evals[evals["mode"] == "either"].sort_values("epoch")
    lines = ["**What this run shows:**", ""]
    if len(either) >= 2:
        (e0, r0), (e1, r1) = either[["epoch", "rank1"]].iloc[-2], either[["epoch", "rank1"]].iloc[-1]
        moved = float(r1 - r0)
        state = (f"it has flattened (|change| <= {FLAT_POINTS:g} points)" if abs(moved) <= FLAT_POINTS else
                 "it is still moving: the tables compare runs that have not converged, i.e. partly learning speed")
        lines.append(f"- Either-scale rank-1 went from {r0:.1f} (epoch {int(e0)}) to {r1:.1f} (epoch {int(e1)}), "
                     f"{_signed(moved)} points: {state}.")
    elif len(either):
        lines.append(f"- One evaluation only (rank-1 {either['rank1'].iloc[-1]:.1f}): convergence cannot be judged.")
    if init_runs is not None and len(init_runs):
        arms = list(dict.fromkeys(init_runs["init"]))
        if len(arms) == 2:
            a, b = (dict(zip(g["seed"], g["rank1"])) for _, g in init_runs.groupby("init", sort=False))
            res = paired_difference(a, b)
            lines.append(f"- {arms[0]} minus {arms[1]}: rank-1 {_signed(res.mean_diff)} points "
                         f"{_interval(res.ci_low, res.ci_high)}, n = {res.n_seeds}: **{res.verdict}**.")
    return "\n".join(lines)


def discuss_table1(long: pd.DataFrame, dataset: str) -> str:
    """Markdown: what the measured rows of Table 1 can and cannot be compared with.

    ``long``: :func:`sisnet.report.table1_with_measured`'s table.
    """
    measured = long[long["provenance"] == "measured"]
    ours = long[(long["provenance"] == "published") & (long["method"] == "Ours") & (long["dataset"] == dataset)]
    lines = ["**How to read Table 1:**", ""]
    if not len(ours):
        lines.append(f"- The measured rows are on *{dataset}*; every published number is on other data "
                     f"({', '.join(paper.DATASET_LABELS[d] for d in paper.PAPER_DATASETS)}), so the table shows the "
                     f"layout and provenance, not a comparison: absolute numbers on different data mean nothing side "
                     f"by side.")
    else:
        for _, r in measured[measured["method"].str.startswith("SiSNet+DRC")].iterrows():
            pub = ours[ours["metric"] == r["metric"]]["value"]
            if len(pub):
                lines.append(f"- SiSNet+DRC {_LABEL[r['metric']]}: measured {r['value']:.1f} against the paper's "
                             f"{float(pub.iloc[0]):.1f} ({_signed(r['value'] - float(pub.iloc[0]))} points).")
    for _, r in measured.iterrows():
        if r["metric"] == "rank1":
            lines.append(f"- {r['method']}: rank-1 {r['value']:.1f} ± {r['std']:.1f} over {int(r['n_seeds'])} seed(s).")
    return "\n".join(lines)


def discuss_footage(table: pd.DataFrame) -> str:
    """Markdown: each model's rank-1 under the footage protocols (:func:`sisnet.footage.evaluate_models`), how
    much the near-duplicates add, and how many gallery crops the near-duplicate rule excluded."""
    from sisnet.footage import describe_exclusion

    lines = ["**What the footage numbers say** (one sequence, one seed; with n queries one query is 100/n points):", ""]
    for method, g in table.groupby("method", sort=False):
        by = dict(zip(g["protocol"], g["rank1"]))
        n = int(g["num_valid_queries"].min())
        parts = [f"{p}: {v:.1f}" for p, v in by.items()]
        lines.append(f"- {method} (n = {n}): " + "; ".join(parts))
        with_dup = [v for p, v in by.items() if "included" in p]
        without = [v for p, v in by.items() if "excluded" in p]
        if with_dup and without:
            lines.append(f"  - near-duplicates add {_signed(with_dup[0] - without[0])} rank-1 points; quote the "
                         f"number without them.")
    excluded = table[table["protocol"].str.endswith(" excluded")]
    if {"junk_crops", "junk_total", "queries"} <= set(table.columns) and len(excluded):
        row = excluded.iloc[0]  # the same for every model: the rule depends on the crops' times only
        counts = {**row.to_dict(), "skipped_queries": int(row["queries"]) - int(row["num_valid_queries"])}
        lines += ["", f"Near-duplicate rule, {describe_exclusion(counts, row['protocol'])}."]
    return "\n".join(lines)
