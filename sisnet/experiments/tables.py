"""The real experiment's committed tables, derived from its raw evaluations (no training here)."""
from __future__ import annotations

from typing import Any

import pandas as pd

from sisnet.experiments.real import ARMS, LOSS, PLATEAU_TOLERANCE, PRIMARY_METRIC, PRIMARY_PROTOCOLS, dg_frame, paired_real
from sisnet.report.registry import TABLES

__all__ = ["real_tables"]


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
    """``{name: table}`` (each declared in :mod:`sisnet.report.registry`) from :func:`sisnet.experiments.real.run_experiment`'s output; every
    table carries the exact ``command`` that made it."""
    runs = dg_frame(raw["evals"])
    tables: dict[str, Any] = {
        TABLES.real_evals.name: raw["evals"],
        TABLES.real_curves.name: raw["curves"],
        TABLES.real_runs.name: runs,
        TABLES.real_summary.name: _summary(runs, raw["imagenet"]),
        TABLES.real_paired.name: paired_real(runs[runs["schedule"] == "1x"].assign(loss=LOSS)),
        TABLES.real_datasets.name: raw["datasets"],
        TABLES.real_validation.name: raw["validation"],
        TABLES.real_plateau.name: _plateau(runs),
        TABLES.real_height_bins.name: _height_bins(raw["evals"]),
    }
    for frame in tables.values():
        frame["command"] = command
    return tables
