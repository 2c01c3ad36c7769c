"""The triplet anomaly against the schedule: ``python -m sisnet.experiments triplet-schedule`` trains Baseline S. and
S.+T. at the schedule and at twice it, every seed, and writes ``triplet_schedule_runs`` / ``triplet_schedule_paired``
(:func:`sisnet.report.schedule_checks.triplet_schedule_check`)."""
from __future__ import annotations

import argparse
from typing import Any, Sequence

from sisnet.experiments.checks import add_check_arguments, run_check, save_check_table
from sisnet.report.schedule_checks import triplet_schedule_check

__all__ = ["RUNS_TITLE", "PAIRED_TITLE", "run", "add_arguments", "main"]

RUNS_TITLE = "Triplet anomaly against the schedule: Baseline S. and S.+T. at the schedule and at twice it"
PAIRED_TITLE = "Baseline S.+T. - S. at the schedule and at twice it, paired by seed"


def run(ctx, *, overrides: dict[str, Any] | None, command: str) -> None:
    """Run the check over the context's seeds from ``overrides`` and write its two tables (each row carries
    ``command``)."""
    per_run, paired = triplet_schedule_check(ctx, ctx.seeds, overrides=overrides)
    save_check_table(ctx, "triplet_schedule_runs", per_run, command, title=RUNS_TITLE)
    save_check_table(ctx, "triplet_schedule_paired", paired, command, title=PAIRED_TITLE)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_check_arguments(parser, seeds=True)


def main(args: argparse.Namespace, argv: Sequence[str]) -> int:
    return run_check(run, args, argv)
