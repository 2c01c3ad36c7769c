"""The 2x-schedule check: ``python -m sisnet.experiments convergence`` trains every grid configuration of seed 0 at
the schedule and at twice it (test split) and writes ``convergence_2x`` (:func:`sisnet.report.schedule_checks.schedule_check`)."""
from __future__ import annotations

import argparse
from typing import Any, Sequence

from sisnet.experiments.checks import add_check_arguments, run_check, save_check_table
from sisnet.report.schedule_checks import schedule_check

__all__ = ["TITLE", "run", "add_arguments", "main"]

TITLE = "Convergence: every configuration at the schedule and at twice its length (seed 0, test)"


def run(ctx, *, overrides: dict[str, Any] | None, command: str, log=print) -> None:
    """Run the check from ``overrides`` and write ``convergence_2x`` (each row carries ``command``)."""
    save_check_table(ctx, "convergence_2x", schedule_check(ctx, 0, overrides=overrides, log=log), command, title=TITLE)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_check_arguments(parser)


def main(args: argparse.Namespace, argv: Sequence[str]) -> int:
    return run_check(run, args, argv)
