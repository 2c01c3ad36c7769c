"""The schedule checks: is a result a matter of the schedule's length? Every grid configuration of one seed at the
profile's schedule and at twice it, the Baseline with and without the triplet loss the same way on every seed, and
the convergence curves of the grid's runs.

:func:`schedule_check` trains every grid configuration of one seed at the profile's schedule and at twice its
length, on the test split (the convergence check of the final configuration, not a choice);
:func:`triplet_schedule_check` does the same for the Baseline with and without the triplet loss on every seed (a
diagnosis of the triplet anomaly, not a choice). Nothing here chooses a setting: that is
:mod:`sisnet.report.validation`'s sweep, on held-out training identities.
"""
from __future__ import annotations

from typing import Any, Sequence

import pandas as pd

from sisnet.report.context import NotebookContext
from sisnet.report.tables import evals_frame, last_eval
from sisnet.report.validation import STEPS_PER_EPOCH, TOLERANCE, schedule

__all__ = ["SCHEDULE_CHECK_LIMIT", "convergence_frame", "convergence_summary", "twice_the_schedule",
           "triplet_schedule_check", "schedule_check"]

#: The 2x-schedule check passes when no configuration's rank-1 moves by more than this many points.
SCHEDULE_CHECK_LIMIT = 2.0


def convergence_frame(runs: Sequence[Any]) -> pd.DataFrame:
    """Rank-1 and mAP at every evaluation of each run (either-scale): loss, method, seed, epoch, rank1, mAP."""
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
    swapped background costs (``swap_rank1_cost`` / ``swap_mAP_cost``: :func:`sisnet.report.query_edits.person_reliance`).
    ``paired``: :func:`sisnet.stats.paired_table` of S.+T. - S. at each length, paired by seed.
    """
    from sisnet import paper
    from sisnet.config import TABLE2_GRID
    from sisnet.report.context import load
    from sisnet.report.query_edits import person_reliance
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
