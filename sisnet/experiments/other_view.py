"""Table 2 with the other second view (a disclosed ablation): ``python -m sisnet.experiments other-view`` trains the
grid with the second view the profile does not use and writes ``table2_other_view_runs``, ``table2_other_view`` and
``table2_other_view_paired``, measured under the headline's protocols (notebook 03's defaults: standard,
cross-scale, native query heights)."""
from __future__ import annotations

import argparse
from typing import Any, Sequence

from sisnet.experiments.checks import add_check_arguments, run_check, save_check_table

__all__ = ["other_view_runs", "run", "add_arguments", "main"]


def other_view_runs(ctx, *, overrides: dict[str, Any] | None = None,
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


def run(ctx, *, overrides: dict[str, Any] | None, command: str) -> None:
    """Train the other view's grid over the context's seeds from ``overrides``, measure it and write its three
    tables (each row carries ``second_view`` and ``command``)."""
    from sisnet.report.measure import CROSS_SCALE, HEIGHT_EDGES, measure_protocols, split_scale_bins
    from sisnet.report.tables import summarize, table2_paired

    view, runs = other_view_runs(ctx, overrides=overrides)
    per_run = measure_protocols(ctx, runs, cross_scale=CROSS_SCALE, height_edges=HEIGHT_EDGES)
    save_check_table(ctx, "table2_other_view_runs", per_run.assign(second_view=view), command,
                     title=f"Table 2 with the second view '{view}' (disclosed ablation): every run")
    save_check_table(ctx, "table2_other_view", summarize(split_scale_bins(per_run)[0]).assign(second_view=view),
                     command, title=f"Table 2 with the second view '{view}' (disclosed ablation), mean and std over seeds")
    save_check_table(ctx, "table2_other_view_paired", table2_paired(per_run).assign(second_view=view), command,
                     title=f"Paired differences with the second view '{view}'")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_check_arguments(parser, seeds=True)


def main(args: argparse.Namespace, argv: Sequence[str]) -> int:
    return run_check(run, args, argv)
