"""What the checks on synthetic data share: their command-line options, the ``--overrides`` file, the context they
train in, and the table writer that stamps each row with the command that made it."""
from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from sisnet.train import add_run_arguments, parse_seeds

__all__ = ["add_check_arguments", "read_overrides", "check_context", "command_line", "save_check_table", "run_check"]


def add_check_arguments(parser: argparse.ArgumentParser, *, seeds: bool = False) -> None:
    """``--profile``, ``--dataset``, ``--data-root`` (as :mod:`sisnet.reproduce` takes them), ``--results-dir``,
    ``--overrides`` and, with ``seeds``, ``--seeds``."""
    add_run_arguments(parser)
    parser.add_argument("--results-dir", default="results",
                        help="results folder: the tables go to <results-dir>/<profile>/<dataset>/tables/ (default: results)")
    if seeds:
        parser.add_argument("--seeds", type=parse_seeds, default=None,
                            help="comma-separated seeds (default: the profile's, sisnet.config.PROFILE_SETTINGS)")
    parser.add_argument("--overrides", default=None,
                        help="JSON file of config overrides (e.g. the validation_chosen.json a sweep wrote)")


def read_overrides(path: str | Path | None) -> dict[str, Any] | None:
    """The config overrides of an ``--overrides`` JSON file (``milestones`` as a tuple); ``None`` without one."""
    if path is None:
        return None
    path = Path(path)
    try:
        overrides = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"--overrides {path}: no such file; give a JSON file of config overrides such as "
                                "the validation_chosen.json a sweep wrote.") from None
    except ValueError as exc:
        raise ValueError(f"--overrides {path} is not JSON ({exc}); give an object such as {{\"lr\": 0.001}}.") from None
    if not isinstance(overrides, dict):
        raise ValueError(f"--overrides {path} holds a {type(overrides).__name__}; give a JSON object of config "
                         "fields such as {\"lr\": 0.001}.")
    if "milestones" in overrides:
        overrides["milestones"] = tuple(overrides["milestones"])
    return overrides


def check_context(args: argparse.Namespace):
    """The :class:`sisnet.report.NotebookContext` a check trains in, from its parsed options."""
    from sisnet.report import setup

    return setup(args.profile, args.dataset, args.data_root, args.results_dir, seeds=getattr(args, "seeds", None))


def command_line(argv: Sequence[str]) -> str:
    """The exact command, as a table's ``command`` column records it."""
    return "python -m sisnet.experiments " + " ".join(shlex.quote(a) for a in argv)


def save_check_table(ctx, name: str, frame: pd.DataFrame, command: str, *, title: str, notes: str | None = None):
    """:func:`sisnet.report.io.save_table` of ``frame`` with a ``command`` column (default note: made by it)."""
    from sisnet.report.io import save_table

    return save_table(ctx, name, frame.assign(command=command), notes=notes or f"Made by `{command}`.", title=title)


def run_check(run, args: argparse.Namespace, argv: Sequence[str], **extra: Any) -> int:
    """Every check's ``main``: read ``--overrides`` (a bad file fails before anything is set up), then
    ``run(context, overrides=..., command=..., **extra)``; exit status 0."""
    overrides = read_overrides(args.overrides)
    run(check_context(args), overrides=overrides, command=command_line(argv), **extra)
    return 0
