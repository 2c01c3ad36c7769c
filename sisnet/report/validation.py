"""The validation sweep and the schedule checks: the cpu profile's open choices made on held-out training identities.

Nothing here reads the test split. :data:`SWEEP` lists, in order, each choice the paper leaves open (or that this
small-data profile must make), its candidates and the Table 2 cells that score them. :func:`run_validation` trains
every candidate with ``split="val"`` (:meth:`sisnet.data.ReIDDataset.validation_split`: ``val_ids`` training
identities held out as a validation query / gallery, the rest trained on), scores it by the mean final
either-scale rank-1 over its cells and seeds, and picks by the choice's rule; each later choice starts from the
earlier choices' winners (a coordinate-wise sweep: choices are not tried jointly, which is cheaper and says so).

The rule is computed, not judged: the first candidate in the listed order whose score is within ``tolerance``
points of the best eligible score. Candidates are listed cheapest first, so a tolerance > 0 buys time (input size,
schedule length) only when it costs less than ``tolerance`` points; a tolerance of 0 takes the best.

:func:`schedule_check` trains every grid configuration of one seed at the profile's schedule and at twice its
length, on the test split (the convergence check of the final configuration, not a choice);
:func:`triplet_schedule_check` does the same for the Baseline with and without the triplet loss on every seed (a
diagnosis of the triplet anomaly, not a choice).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Sequence

import pandas as pd

from sisnet.report.context import NotebookContext
from sisnet.report.tables import last_eval

__all__ = ["Candidate", "Choice", "SWEEP", "TOLERANCE", "schedule", "run_validation", "choose", "schedule_check",
           "convergence_frame", "convergence_summary", "validation_evidence",
           "other_view_runs", "run_checks", "merge_sweeps", "SCHEDULE_CHECK_LIMIT"]

#: Points of validation rank-1 that a cheaper candidate may lose and still be chosen (also the convergence bar).
TOLERANCE = 1.5
#: The 2x-schedule check passes when no configuration's rank-1 moves by more than this many points.
SCHEDULE_CHECK_LIMIT = 2.0
STEPS_PER_EPOCH = 35


def schedule(epochs: int, decay_epochs: int = 2, steps_per_epoch: int = STEPS_PER_EPOCH) -> dict[str, Any]:
    """A cpu-profile schedule: 1 warm-up epoch, lr x0.1 for the last ``decay_epochs`` epochs, evaluated every 2
    epochs and after each of the last ``decay_epochs`` (the flat, low-lr part that Table 3 averages)."""
    return dict(epochs=int(epochs), steps_per_epoch=int(steps_per_epoch), warmup_epochs=1,
                milestones=(int(epochs) - int(decay_epochs),), eval_every=2, eval_last=int(decay_epochs))


@dataclass(frozen=True)
class Candidate:
    label: str
    overrides: dict[str, Any]
    eligible: bool = True  # False: shown for reference, never chosen (e.g. a last map below 8 x 4)


@dataclass(frozen=True)
class Choice:
    name: str
    candidates: tuple[Candidate, ...]
    cells: tuple[tuple[str, str], ...]  # (method, loss) runs that score each candidate
    tolerance: float = 0.0
    why: str = ""
    references: tuple[tuple[str, str, dict[str, Any]], ...] = field(default=())  # extra runs shown, not scored


_SPLIT = ("Baseline", "S.+T."), ("SiSNet+DRC", "S.+T.")

SWEEP: tuple[Choice, ...] = (
    Choice("input size / last map", (
        Candidate("96x48, output stride 16: 6x3 map (before)",
                  dict(img_height=96, img_width=48, pad_px=4, last_stride=1, output_stride=None), eligible=False),
        Candidate("64x32, output stride 8: 8x4 map",
                  dict(img_height=64, img_width=32, pad_px=3, last_stride=None, output_stride=8)),
        Candidate("128x64, output stride 16: 8x4 map",
                  dict(img_height=128, img_width=64, pad_px=5, last_stride=1, output_stride=None)),
    ), _SPLIT, tolerance=TOLERANCE,
        why="CAMs need a map of at least 8x4; the cheaper input (64x32 costs ~0.6x the 128x64 step on 2 CPU cores) "
            "wins unless the other is more than the tolerance better"),
    Choice("learning rate", tuple(Candidate(f"Adam {lr:g}", dict(lr=lr)) for lr in (3e-4, 1e-3, 3e-3)), _SPLIT),
    Choice("schedule (epochs of 35 steps)",
           tuple(Candidate(f"{e} epochs, last 2 at lr x0.1", schedule(e)) for e in (6, 10, 14)), _SPLIT,
           tolerance=TOLERANCE,
           why="the shortest schedule within the tolerance of the best: training longer buys less than it"),
    Choice("triplet features", (
        Candidate("pooled features, margin 0.3 (Bag of Tricks)", dict(triplet_normalize=False)),
        Candidate("L2-normalised features, margin 0.3", dict(triplet_normalize=True)),
    ), (("Baseline", "S.+T."), ("SiSNet", "S.+T.")),
        why="adding the triplet loss lowered the Baseline; the softmax-only Baseline is the bar",
        references=(("Baseline", "S.", {}),)),
    Choice("second view", (
        Candidate("degrade (x0.5 down, back up)", dict(small_view="degrade")),
        Candidate("native (x0.5 size)", dict(small_view="native")),
    ), (("SiSNet", "S.+T."), ("SiSNet+DRC", "S.+T."))),
    Choice("BatchNorm statistics", (
        Candidate("shared by both scales (as trained)", dict(precise_bn=0)),
        Candidate("precise BN: re-estimated on 8 full-scale batches", dict(precise_bn=8)),
    ), (("SiSNet", "S.+T."), ("SiSNet+DRC", "S.+T."))),
    Choice("DRC weight lambda", tuple(Candidate(f"lambda {w:g}", dict(drc_weight=w)) for w in (0.1, 1.0, 10.0, 100.0)),
           (("SiSNet+DRC", "S.+T."),)),
    # The learning-rate choice above was scored on S.+T. cells only; at the chosen settings the softmax-only ("S.")
    # runs are the ones a too-large step breaks, so the two nearest candidates are re-scored on both losses.
    Choice("learning rate (both losses)", tuple(Candidate(f"Adam {lr:g}", dict(lr=lr)) for lr in (1e-3, 3e-3)),
           (("Baseline", "S."), ("Baseline", "S.+T.")),
           why="re-check at the final settings: the first learning-rate choice saw no softmax-only run"),
)


def choose(scores: Sequence[float], eligible: Sequence[bool], tolerance: float) -> int:
    """Index of the first eligible candidate whose score is within ``tolerance`` of the best eligible score."""
    best = max(s for s, ok in zip(scores, eligible) if ok)
    return next(i for i, (s, ok) in enumerate(zip(scores, eligible)) if ok and s >= best - tolerance)


def run_validation(ctx: NotebookContext, seeds: Sequence[int] = (0, 1), *, sweep: Sequence[Choice] | None = None,
                   base: dict[str, Any] | None = None, log=print,
                   on_stage=None) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Run the sweep on the validation split; returns ``(runs, choices, chosen overrides)``.

    ``runs``: one row per trained run (choice, candidate, method, loss, seed, final val rank-1 / mAP, wall seconds,
    run id). ``choices``: one row per candidate (mean val rank-1 / mAP over its cells and seeds, mean wall seconds
    per run, eligible, chosen, its overrides as JSON). ``chosen``: the winners' overrides, merged in order.
    ``on_stage(runs, choices, chosen)`` is called after each choice (e.g. to save what is done so far).
    """
    from sisnet.report.runs import train_cells

    chosen: dict[str, Any] = dict(base or {})
    run_rows, choice_rows = [], []
    for choice in SWEEP if sweep is None else sweep:
        cells, keys = [], []
        for k, cand in enumerate(choice.candidates):
            for method, loss in choice.cells:
                for seed in seeds:
                    cells.append((method, loss, seed, {**chosen, **cand.overrides, "split": "val"}))
                    keys.append((k, cand.label, method, loss, seed))
        for method, loss, overrides in choice.references:
            for seed in seeds:
                cells.append((method, loss, seed, {**chosen, **overrides, "split": "val"}))
                keys.append((-1, f"reference: {method} {loss}", method, loss, seed))
        runs = train_cells(ctx, cells, log=None)
        for (k, label, method, loss, seed), run in zip(keys, runs):
            ev = last_eval(run.history, "either")
            run_rows.append({"choice": choice.name, "candidate": label, "method": method, "loss": loss, "seed": seed,
                             "rank1": ev["rank1"], "mAP": ev["mAP"], "epoch": int(ev["epoch"]),
                             "wall_seconds": float(run.history.get("wall_seconds", float("nan"))),
                             "run_id": run.run_id})
        frame = pd.DataFrame(run_rows[len(run_rows) - len(keys):])
        scored = frame[~frame["candidate"].str.startswith("reference: ")]
        means = scored.groupby("candidate", sort=False)[["rank1", "mAP", "wall_seconds"]].mean()
        labels = [c.label for c in choice.candidates]
        scores = [float(means.loc[lab, "rank1"]) for lab in labels]
        pick = choose(scores, [c.eligible for c in choice.candidates], choice.tolerance)
        chosen.update(choice.candidates[pick].overrides)
        for k, cand in enumerate(choice.candidates):
            choice_rows.append({"choice": choice.name, "candidate": cand.label, "eligible": cand.eligible,
                                "val_rank1": scores[k], "val_mAP": float(means.loc[cand.label, "mAP"]),
                                "seconds_per_run": float(means.loc[cand.label, "wall_seconds"]),
                                "n_runs": int((scored["candidate"] == cand.label).sum()), "chosen": k == pick,
                                "tolerance": choice.tolerance, "scored_on": "; ".join(f"{m} {l}" for m, l in choice.cells),
                                "overrides": json.dumps(cand.overrides, sort_keys=True)})
        for lab in frame.loc[frame["candidate"].str.startswith("reference: "), "candidate"].unique():
            ref = frame[frame["candidate"] == lab]
            choice_rows.append({"choice": choice.name, "candidate": lab, "eligible": False,
                                "val_rank1": float(ref["rank1"].mean()), "val_mAP": float(ref["mAP"].mean()),
                                "seconds_per_run": float(ref["wall_seconds"].mean()), "n_runs": len(ref),
                                "chosen": False, "tolerance": choice.tolerance, "scored_on": "reference (not scored)",
                                "overrides": "{}"})
        if log:
            log(f"{choice.name}: " + ", ".join(f"{lab} {s:.1f}" for lab, s in zip(labels, scores))
                + f" -> {labels[pick]}")
        if on_stage is not None:
            on_stage(pd.DataFrame(run_rows), pd.DataFrame(choice_rows), dict(chosen))
    return pd.DataFrame(run_rows), pd.DataFrame(choice_rows), chosen


def convergence_frame(runs: Sequence[Any]) -> pd.DataFrame:
    """Rank-1 and mAP at every evaluation of each run (either-scale): loss, method, seed, epoch, rank1, mAP."""
    from sisnet.report.tables import evals_frame

    rows = []
    for run in runs:
        ev = evals_frame(run.history)
        ev = ev[ev["mode"] == "either"]
        for _, r in ev.iterrows():
            rows.append({"loss": run.loss, "method": run.method, "seed": run.seed, "epoch": int(r["epoch"]),
                         "rank1": float(r["rank1"]), "mAP": float(r["mAP"]), "run_id": run.run_id})
    return pd.DataFrame(rows)


def twice_the_schedule(cfg: Any) -> dict[str, Any]:
    """The overrides that double ``cfg``'s schedule: the epochs, the warm-up, the decayed tail and the evaluated
    tail (the same steps per epoch)."""
    decay = cfg.epochs - cfg.milestones[-1] if cfg.milestones else cfg.eval_last
    return dict(schedule(2 * cfg.epochs, 2 * decay, cfg.steps_per_epoch or STEPS_PER_EPOCH),
                warmup_epochs=2 * cfg.warmup_epochs)


def triplet_schedule_check(ctx: NotebookContext, seeds: Sequence[int], *, method: str = "Baseline",
                           overrides: dict[str, Any] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Is the triplet anomaly a matter of schedule? ``method`` with S. and with S.+T., every seed, at the profile's
    schedule and at twice its length (:func:`twice_the_schedule`; test split).

    Returns ``(per_run, paired)``. ``per_run``: one row per loss, seed and length (``protocol``: "schedule x1" /
    "schedule x2", ``epochs``, ``run_id``) with the standard protocol's ``rank1`` / ``mAP`` and the rank-1 / mAP a
    swapped background costs (``swap_rank1_cost`` / ``swap_mAP_cost``: :func:`sisnet.report.person_reliance`).
    ``paired``: :func:`sisnet.stats.paired_table` of S.+T. - S. at each length, paired by seed.
    """
    from sisnet import paper
    from sisnet.config import TABLE2_GRID
    from sisnet.report.context import load
    from sisnet.report.measure import person_reliance
    from sisnet.report.runs import TrainedModel, train_cells
    from sisnet.runs import load_model
    from sisnet.stats import Comparison, paired_table

    overrides = dict(overrides or {})
    longer = twice_the_schedule(ctx.config(**overrides))
    losses = [e["loss"] for e in TABLE2_GRID if e["name"] == method]
    lengths = {"schedule x1": overrides, "schedule x2": {**overrides, **longer}}
    labelled = [(label, (method, loss, s, o)) for label, o in lengths.items() for s in seeds for loss in losses]
    runs = train_cells(ctx, [cell for _, cell in labelled], log=None)
    ds = load(ctx)
    rows = []
    for (label, (_, loss, s, _)), run in zip(labelled, runs):
        model, cfg = load_model(run.run_dir)
        r = person_reliance({method: TrainedModel(method, loss, s, model, cfg, run.run_dir)}, ds).set_index("query")
        rows.append({"loss": loss, "method": method, "seed": s, "protocol": label, "epochs": cfg.epochs,
                     "rank1": r.loc["original", "rank1"], "mAP": r.loc["original", "mAP"],
                     "swap_rank1_cost": r.loc["original", "rank1"] - r.loc["background swapped", "rank1"],
                     "swap_mAP_cost": r.loc["original", "mAP"] - r.loc["background swapped", "mAP"],
                     "run_id": run.run_id})
    per_run = pd.DataFrame(rows)
    comparison = [Comparison(*c) for c in paper.CLAIMS if c[0] == f"{method}: S.+T. - S."]
    return per_run, paired_table(per_run, comparison, metrics=("rank1", "mAP", "swap_rank1_cost", "swap_mAP_cost"))


def schedule_check(ctx: NotebookContext, seed: int = 0, *, overrides: dict[str, Any] | None = None,
                   log=print) -> pd.DataFrame:
    """Every grid configuration of ``seed`` at the profile's schedule and at twice its length (test split).

    The 2x schedule doubles the epochs, the warm-up, the decayed tail and the evaluated tail. Returns one row per
    configuration: final either-scale rank-1 / mAP at 1x and 2x, their difference and whether it is within
    :data:`SCHEDULE_CHECK_LIMIT` points.
    """
    from sisnet.config import TABLE2_GRID
    from sisnet.report.runs import train_cells

    overrides = dict(overrides or {})
    longer = twice_the_schedule(ctx.config(seed, **overrides))
    cells = [(e["name"], e["loss"], seed, dict(overrides)) for e in TABLE2_GRID]
    cells += [(e["name"], e["loss"], seed, {**overrides, **longer}) for e in TABLE2_GRID]
    runs = train_cells(ctx, cells, log=None)
    n = len(TABLE2_GRID)
    rows = []
    for e, one, two in zip(TABLE2_GRID, runs[:n], runs[n:]):
        a, b = last_eval(one.history, "either"), last_eval(two.history, "either")
        rows.append({"loss": e["loss"], "method": e["name"], "seed": seed, "epochs_1x": int(a["epoch"]),
                     "rank1_1x": a["rank1"], "epochs_2x": int(b["epoch"]), "rank1_2x": b["rank1"],
                     "rank1_diff": b["rank1"] - a["rank1"], "mAP_1x": a["mAP"], "mAP_2x": b["mAP"],
                     "within_limit": abs(b["rank1"] - a["rank1"]) <= SCHEDULE_CHECK_LIMIT,
                     "run_id_1x": one.run_id, "run_id_2x": two.run_id})
        if log:
            log(f"{e['loss']:5s} {e['name']:16s} rank-1 {a['rank1']:.1f} (x1) -> {b['rank1']:.1f} (x2)")
    return pd.DataFrame(rows)


def other_view_runs(ctx: NotebookContext, *, overrides: dict[str, Any] | None = None,
                    seeds: Sequence[int] | None = None) -> tuple[str, list]:
    """The Table 2 grid with the other second view (``native`` <-> ``degrade``) than the profile's; returns
    ``(that view, runs)``. Only the siamese configurations see the second view, so the one-branch ones are the
    same runs as the headline grid's (read from the runs cache when present)."""
    from sisnet.config import TABLE2_GRID
    from sisnet.report.runs import train_cells

    overrides = dict(overrides or {})
    view = "native" if ctx.config(**overrides).small_view == "degrade" else "degrade"
    seeds = list(ctx.seeds if seeds is None else seeds)
    cells = [(e["name"], e["loss"], s, {**overrides, **({"small_view": view} if e["overrides"]["siamese"] else {})})
             for s in seeds for e in TABLE2_GRID]
    return view, train_cells(ctx, cells, log=None)


def run_checks(ctx: NotebookContext, *, validate: bool, convergence: bool, other_view: bool,
               overrides: dict[str, Any] | None, command: str, val_seeds: Sequence[int] = (0, 1),
               sweep: Sequence[Choice] | None = None, log=print, triplet_schedule: bool = False) -> None:
    """``python -m sisnet.reproduce --validate / --convergence / --other-view / --triplet-schedule``: run them
    (the last over the context's seeds) and write their tables
    (each row carries ``command``, the exact command line that made it). The other view's Table 2 is measured
    under the headline's protocols (notebook 03's defaults: standard, cross-scale, native query heights)."""
    from sisnet.report.io import save_table
    from sisnet.report.measure import CROSS_SCALE, HEIGHT_EDGES, measure_protocols, split_scale_bins
    from sisnet.report.tables import summarize, table2_paired

    note = f"Made by `{command}`."

    def save_validation(runs: pd.DataFrame, choices: pd.DataFrame, chosen: dict[str, Any]) -> None:
        save_table(ctx, "validation_runs", runs.assign(command=command), notes=note,
                   title="Validation sweep: every run (held-out training identities; the test split is not read)")
        save_table(ctx, "validation_choices", choices.assign(command=command), notes=note,
                   title="Validation choices: candidates, validation scores and the chosen one")
        (ctx.tables_dir / "validation_chosen.json").write_text(json.dumps(chosen, indent=1, sort_keys=True) + "\n")

    if validate:
        _, _, chosen = run_validation(ctx, val_seeds, sweep=sweep, base=overrides, log=log,
                                      on_stage=save_validation)
        overrides = {**(overrides or {}), **chosen}
    if convergence:
        check = schedule_check(ctx, 0, overrides=overrides, log=log)
        save_table(ctx, "convergence_2x", check.assign(command=command), notes=note,
                   title="Convergence: every configuration at the schedule and at twice its length (seed 0, test)")
    if triplet_schedule:
        per_run, paired = triplet_schedule_check(ctx, ctx.seeds, overrides=overrides)
        save_table(ctx, "triplet_schedule_runs", per_run.assign(command=command), notes=note,
                   title="Triplet anomaly against the schedule: Baseline S. and S.+T. at the schedule and at twice it")
        save_table(ctx, "triplet_schedule_paired", paired.assign(command=command), notes=note,
                   title="Baseline S.+T. - S. at the schedule and at twice it, paired by seed")
    if other_view:
        view, runs = other_view_runs(ctx, overrides=overrides)
        per_run = measure_protocols(ctx, runs, cross_scale=CROSS_SCALE, height_edges=HEIGHT_EDGES)
        save_table(ctx, "table2_other_view_runs", per_run.assign(second_view=view, command=command), notes=note,
                   title=f"Table 2 with the second view '{view}' (disclosed ablation): every run")
        save_table(ctx, "table2_other_view", summarize(split_scale_bins(per_run)[0]).assign(second_view=view,
                                                                                             command=command), notes=note,
                   title=f"Table 2 with the second view '{view}' (disclosed ablation), mean and std over seeds")
        save_table(ctx, "table2_other_view_paired", table2_paired(per_run).assign(second_view=view, command=command),
                   notes=note, title=f"Paired differences with the second view '{view}'")


def validation_evidence(tables_dir, config) -> tuple[pd.DataFrame | None, str]:
    """The committed validation sweep (``validation_choices.csv`` in ``tables_dir``) beside ``config``.

    Returns ``(choices, markdown)``: the table with a column ``in_config`` (for the chosen rows: whether every value
    the winner sets is ``config``'s value) and a generated sentence saying whether the profile is the sweep's
    winners. ``(None, text saying how to run the sweep)`` when there is no table.
    """
    from pathlib import Path

    path = Path(tables_dir) / "validation_choices.csv"
    if not path.is_file():
        return None, (f"No validation sweep in `{path.parent}`: run `python -m sisnet.reproduce --profile "
                      f"{getattr(config, 'profile', 'cpu')} --validate` to choose this profile's settings on held-out "
                      "training identities.")
    choices = pd.read_csv(path)
    d = config.to_dict()
    # a later choice of a parameter (e.g. a re-check) supersedes an earlier one: compare each key at its last setter
    last_setter: dict[str, int] = {}
    for idx, row in choices[choices["chosen"]].iterrows():
        for key in json.loads(row["overrides"]):
            last_setter[key] = idx
    in_config: list[Any] = []
    for idx, row in choices.iterrows():
        want = json.loads(row["overrides"])
        keys = [k for k in want if last_setter.get(k) == idx and k not in _NOT_COMPARED]
        in_config.append(all(_same(d.get(k), want[k]) for k in keys) if row["chosen"] else pd.NA)
    choices["in_config"] = in_config
    chosen = choices[choices["chosen"]]
    off = chosen[~chosen["in_config"].astype(bool)]
    text = (f"The profile uses the validation winner of each of the {len(chosen)} choices."
            if not len(off) else
            "The profile differs from the validation winner of: " + ", ".join(off["choice"]) + ".")
    return choices, text


#: Keys a winner may set that do not change what a run learns: precision on the sweep's device, evaluation epochs.
_NOT_COMPARED = frozenset({"amp", "eval_every", "eval_last"})


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        return list(a or []) == list(b or [])
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return float(a) == float(b)
    return a == b


def convergence_summary(conv: pd.DataFrame) -> pd.DataFrame:
    """Per configuration: mean rank-1 over seeds at each evaluation, and the change between the last two
    (``last_change``) with ``flat`` = within :data:`TOLERANCE` points (:func:`convergence_frame`'s table)."""
    means = conv.groupby(["loss", "method", "epoch"], sort=False)["rank1"].mean().unstack("epoch")
    epochs = sorted(means.columns)
    out = means[epochs].copy()
    out.columns = [f"epoch {e}" for e in epochs]
    if len(epochs) >= 2:
        out["last_change"] = means[epochs[-1]] - means[epochs[-2]]
        out["flat"] = out["last_change"].abs() <= TOLERANCE
    out["n_seeds"] = conv.groupby(["loss", "method"], sort=False)["seed"].nunique()
    return out.reset_index()


def merge_sweeps(ctx: NotebookContext, parts: Sequence[tuple[Any, str]]) -> pd.DataFrame:
    """One validation table from a sweep run in parts (``--validate --choices ... --overrides``), e.g. on different
    machines: ``parts`` = ``[(tables folder of a part, where it ran), ...]`` in sweep order. Writes
    ``validation_choices`` and ``validation_runs`` (each row keeps its part's ``command``, with ``where``) and the last
    part's ``validation_chosen.json`` into ``ctx``'s tables; returns the choices."""
    from pathlib import Path

    from sisnet.report.io import save_table

    choices, runs = [], []
    for folder, where in parts:
        choices.append(pd.read_csv(Path(folder) / "validation_choices.csv").assign(where=where))
        runs.append(pd.read_csv(Path(folder) / "validation_runs.csv").assign(where=where))
    merged = pd.concat(choices, ignore_index=True)
    note = "Made in parts; each row names its command and where it ran (`where`)."
    save_table(ctx, "validation_runs", pd.concat(runs, ignore_index=True), notes=note,
               title="Validation sweep: every run (held-out training identities; the test split is not read)")
    save_table(ctx, "validation_choices", merged, notes=note,
               title="Validation choices: candidates, validation scores and the chosen one")
    last = Path(parts[-1][0]) / "validation_chosen.json"
    (Path(ctx.tables_dir) / "validation_chosen.json").write_text(last.read_text())
    return merged
