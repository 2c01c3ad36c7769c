"""The real experiment's committed tables, derived from its raw evaluations (no training here)."""
from __future__ import annotations

from typing import Any

import pandas as pd

from sisnet.experiments.real import ARMS, LOSS, PLATEAU_TOLERANCE, PRIMARY_METRIC, PRIMARY_PROTOCOLS, dg_frame, paired_real

__all__ = ["real_tables", "TABLE_TITLES"]

TABLE_TITLES = {
    "real_evals": "Every evaluation of every run: one row per (run, set, split, protocol, native-height bin)",
    "real_curves": "Validation curves: each run's periodic evaluations on CUHK03's validation identities",
    "real_runs": "Every run: each evaluation set (mean over its splits) and the mean over the four targets",
    "real_summary": "Mean (sd) over seeds, S.+T., chosen schedule; ImageNet only = the backbone before ReID training",
    "real_paired": "Paired differences by seed (points); the primary family with Holm's adjustment",
    "real_datasets": "The sets: sources (trained on), validation, in-domain test and the four targets (split 0)",
    "real_validation": "Learning rate x schedule on CUHK03's validation identities (Baseline S.+T., seed 0)",
    "real_plateau": "The 2x-schedule check (seed 0): how much twice the schedule moves each arm",
    "real_height_bins": "By native query height (mean over splits and seeds; n = queries per split)",
}


def _summary(runs: pd.DataFrame, imagenet: pd.DataFrame) -> pd.DataFrame:
    one = runs[runs["schedule"] == "1x"]
    g = one.groupby(["method", "protocol_name"], sort=False)[["rank1", "mAP"]]
    out = g.agg(["mean", "std"])
    out.columns = [f"{m}_{s}" for m, s in out.columns]
    out = out.join(g.size().rename("n_seeds")).reset_index()
    base = dg_frame(imagenet.assign(seed=0)).groupby("protocol_name", sort=False)[["rank1", "mAP"]].mean().reset_index()
    base = base.rename(columns={"rank1": "rank1_mean", "mAP": "mAP_mean"}).assign(method="ImageNet only", n_seeds=1)
    out = pd.concat([base, out], ignore_index=True)
    order = {m: i for i, m in enumerate(("ImageNet only", *ARMS))}
    return out.sort_values(["protocol_name", "method"], key=lambda s: s.map(order) if s.name == "method" else s,
                           kind="stable").reset_index(drop=True)


def _plateau(runs: pd.DataFrame) -> pd.DataFrame:
    protocols = (*PRIMARY_PROTOCOLS, "cuhk03-val, standard", "cuhk03, standard")
    sub = runs[(runs["seed"] == runs.loc[runs["schedule"] == "2x", "seed"].min()) & runs["protocol_name"].isin(protocols)]
    wide = sub.pivot_table(index=["method", "protocol_name"], columns="schedule", values=PRIMARY_METRIC).reset_index()
    wide["move"] = wide["2x"] - wide["1x"]
    wide["within_tolerance"] = wide["move"].abs() <= PLATEAU_TOLERANCE
    wide.columns.name = None
    return wide.rename(columns={"1x": f"{PRIMARY_METRIC}_1x", "2x": f"{PRIMARY_METRIC}_2x"})


def _height_bins(evals: pd.DataFrame) -> pd.DataFrame:
    one = evals[(evals["schedule"] == "1x") & (evals["height_bin"] != "all")]
    g = one.groupby(["set", "protocol", "height_bin", "method"], sort=False)
    return g.agg(rank1=("rank1", "mean"), mAP=("mAP", "mean"), n_query=("n_query", "mean"),
                 n_seeds=("seed", "nunique")).reset_index()


def real_tables(raw: dict[str, pd.DataFrame], command: str) -> dict[str, pd.DataFrame]:
    """``{name: table}`` for :data:`TABLE_TITLES` from :func:`sisnet.experiments.real.run_experiment`'s output; every
    table carries the exact ``command`` that made it."""
    runs = dg_frame(raw["evals"])
    tables: dict[str, Any] = {
        "real_evals": raw["evals"],
        "real_curves": raw["curves"],
        "real_runs": runs,
        "real_summary": _summary(runs, raw["imagenet"]),
        "real_paired": paired_real(runs[runs["schedule"] == "1x"].assign(loss=LOSS)),
        "real_datasets": raw["datasets"],
        "real_validation": raw["validation"],
        "real_plateau": _plateau(runs),
        "real_height_bins": _height_bins(raw["evals"]),
    }
    for frame in tables.values():
        frame["command"] = command
    return tables
