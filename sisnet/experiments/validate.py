"""The validation sweep, on held-out training identities: ``python -m sisnet.experiments validate`` writes
``validation_runs``, ``validation_choices`` and ``validation_chosen.json`` (:mod:`sisnet.report.validation`)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from sisnet.experiments.checks import add_check_arguments, run_check, save_check_table
from sisnet.report.validation import SWEEP, Choice, run_validation

__all__ = ["VAL_SEEDS", "RUNS_TITLE", "CHOICES_TITLE", "CHOSEN_FILE", "run", "merge_sweeps", "choices_of", "add_arguments",
           "main"]

#: The seeds every candidate of the sweep is trained with.
VAL_SEEDS: tuple[int, ...] = (0, 1)
RUNS_TITLE = "Validation sweep: every run (held-out training identities; the test split is not read)"
CHOICES_TITLE = "Validation choices: candidates, validation scores and the chosen one"
#: The winners' overrides, merged in sweep order (the ``--overrides`` file of the other checks).
CHOSEN_FILE = "validation_chosen.json"


def run(ctx, *, overrides: dict[str, Any] | None, command: str, sweep: Sequence[Choice] | None = None,
        seeds: Sequence[int] = VAL_SEEDS, log=print) -> dict[str, Any]:
    """Run the sweep (``sweep``: a part of :data:`~sisnet.report.validation.SWEEP`, default all of it) from
    ``overrides`` and write its tables after each choice (each row carries ``command``); returns the chosen
    overrides merged onto ``overrides``."""

    def save(runs: pd.DataFrame, choices: pd.DataFrame, chosen: dict[str, Any]) -> None:
        save_check_table(ctx, "validation_runs", runs, command, title=RUNS_TITLE)
        save_check_table(ctx, "validation_choices", choices, command, title=CHOICES_TITLE)
        (ctx.tables_dir / CHOSEN_FILE).write_text(json.dumps(chosen, indent=1, sort_keys=True) + "\n")

    _, _, chosen = run_validation(ctx, seeds, sweep=sweep, base=overrides, log=log, on_stage=save)
    return {**(overrides or {}), **chosen}


def merge_sweeps(ctx, parts: Sequence[tuple[Any, str]]) -> pd.DataFrame:
    """One validation table from a sweep run in parts (``validate --choices ... --overrides``), e.g. on different
    machines: ``parts`` = ``[(tables folder of a part, where it ran), ...]`` in sweep order. Writes
    ``validation_choices`` and ``validation_runs`` (each row keeps its part's ``command``, with ``where``) and the last
    part's ``validation_chosen.json`` into ``ctx``'s tables; returns the choices."""
    from sisnet.report.io import save_table

    choices, runs = [], []
    for folder, where in parts:
        choices.append(pd.read_csv(Path(folder) / "validation_choices.csv").assign(where=where))
        runs.append(pd.read_csv(Path(folder) / "validation_runs.csv").assign(where=where))
    merged = pd.concat(choices, ignore_index=True)
    note = "Made in parts; each row names its command and where it ran (`where`)."
    save_table(ctx, "validation_runs", pd.concat(runs, ignore_index=True), notes=note, title=RUNS_TITLE)
    save_table(ctx, "validation_choices", merged, notes=note, title=CHOICES_TITLE)
    last = Path(parts[-1][0]) / CHOSEN_FILE
    (Path(ctx.tables_dir) / CHOSEN_FILE).write_text(last.read_text())
    return merged


def choices_of(text: str | None) -> list[Choice] | None:
    """The part of the sweep that ``--choices`` names (comma-separated choice names); ``None``: all of it."""
    if not text:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in {c.name for c in SWEEP}]
    if unknown:
        raise ValueError(f"--choices {unknown} not in the sweep; choose among {[c.name for c in SWEEP]}.")
    return [c for c in SWEEP if c.name in names]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_check_arguments(parser)
    parser.add_argument("--choices", default=None,
                        help="only these choices of the sweep, comma-separated names (e.g. to resume a sweep with "
                             "--overrides set to the earlier choices' validation_chosen.json)")


def main(args: argparse.Namespace, argv: Sequence[str]) -> int:
    return run_check(run, args, argv, sweep=choices_of(args.choices))  # bad input fails before any set-up
