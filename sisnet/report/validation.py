"""The validation sweep: the cpu profile's open choices made on held-out training identities.

Nothing here reads the test split. :data:`SWEEP` lists, in order, each choice the paper leaves open (or that this
small-data profile must make), its candidates and the Table 2 cells that score them. :func:`run_validation` trains
every candidate with ``split="val"`` (:meth:`sisnet.data.ReIDDataset.validation_split`: ``val_ids`` training
identities held out as a validation query / gallery, the rest trained on), scores it by the mean final
either-scale rank-1 over its cells and seeds, and picks by the choice's rule; each later choice starts from the
earlier choices' winners (a coordinate-wise sweep: choices are not tried jointly, which is cheaper and says so).

The rule is computed, not judged: the first candidate in the listed order whose score is within ``tolerance``
points of the best eligible score. Candidates are listed cheapest first, so a tolerance > 0 buys time (input size,
schedule length) only when it costs less than ``tolerance`` points; a tolerance of 0 takes the best.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from sisnet.report.context import NotebookContext
from sisnet.report.tables import last_eval

__all__ = ["Candidate", "Choice", "SWEEP", "TOLERANCE", "STEPS_PER_EPOCH", "schedule", "run_validation", "choose",
           "validation_evidence"]

#: Points of validation rank-1 that a cheaper candidate may lose and still be chosen (also the convergence bar).
TOLERANCE = 1.5
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


def validation_evidence(tables_dir, config) -> tuple[pd.DataFrame | None, str]:
    """The committed validation sweep (``validation_choices.csv`` in ``tables_dir``) beside ``config``.

    Returns ``(choices, markdown)``: the table with a column ``in_config`` (for the chosen rows: whether every value
    the winner sets is ``config``'s value) and a generated sentence saying whether the profile is the sweep's
    winners. ``(None, text saying how to run the sweep)`` when there is no table.
    """
    path = Path(tables_dir) / "validation_choices.csv"
    if not path.is_file():
        return None, (f"No validation sweep in `{path.parent}`: run `python -m sisnet.experiments validate "
                      f"--profile {getattr(config, 'profile', 'cpu')}` to choose this profile's settings on held-out "
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
