"""The scale study's committed tables, derived from its raw evaluations and run histories (no training here)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from sisnet.experiments.common import ARMS
from sisnet.experiments.scale import PLATEAU_TOLERANCE, PRIMARY_METRIC, PRIMARY_PROTOCOLS, paired_scale
from sisnet.report.registry import TABLES

__all__ = ["scale_tables"]

def _summary(runs: pd.DataFrame) -> pd.DataFrame:
    one = runs[(runs["schedule"] == "1x") & (runs["set"] == "test")]
    g = one.groupby(["protocol", "method"], sort=False)
    out = g[["rank1", "mAP"]].agg(["mean", "std"])
    out.columns = [f"{m}_{s}" for m, s in out.columns]
    out = out.join(g["n_query"].first()).join(g.size().rename("n_seeds")).reset_index()
    order = {m: i for i, m in enumerate(ARMS)}
    return out.sort_values(["protocol", "method"], key=lambda s: s.map(order) if s.name == "method" else s,
                           kind="stable").reset_index(drop=True)


def _plateau(runs: pd.DataFrame) -> pd.DataFrame:
    seed = runs.loc[runs["schedule"] == "2x", "seed"].min()
    sub = runs[(runs["seed"] == seed) & runs["protocol"].isin(PRIMARY_PROTOCOLS)]
    wide = sub.pivot_table(index=["set", "method", "protocol"], columns="schedule", values=PRIMARY_METRIC).reset_index()
    wide["move"] = wide["2x"] - wide["1x"]
    wide["within_tolerance"] = wide["move"].abs() <= PLATEAU_TOLERANCE
    wide.columns.name = None
    return wide.rename(columns={"1x": f"{PRIMARY_METRIC}_1x", "2x": f"{PRIMARY_METRIC}_2x"})


def _drc_share(run_dirs: pd.DataFrame) -> pd.DataFrame:
    """Per epoch of every SiSNet+DRC run: the weighted DRC term, the total loss and the share (training mode: the
    means :func:`sisnet.engine.fit` logged over the epoch's steps)."""
    rows = []
    for _, r in run_dirs[run_dirs["method"] == "SiSNet+DRC"].iterrows():
        hist = json.loads((Path(r["run_dir"]) / "history.json").read_text(encoding="utf-8"))
        weight = float(hist["config"].get("drc_weight", 1.0))
        for e in hist["epochs"]:
            drc = weight * float(e["loss_drc"])
            rows.append({"seed": r["seed"], "schedule": r["schedule"], "epoch": e["epoch"], "loss_drc_weighted": drc,
                         "loss_total": float(e["loss_total"]), "share": drc / float(e["loss_total"])})
    return pd.DataFrame(rows)


def scale_tables(raw: dict[str, pd.DataFrame], command: str) -> dict[str, pd.DataFrame]:
    """``{name: table}`` (declared in :mod:`sisnet.report.registry`) from
    :func:`sisnet.experiments.scale.run_experiment`'s output; every table carries the exact ``command`` that made it."""
    runs = raw["evals"]
    check = {k.removeprefix("scale_check_"): v for k, v in raw["settings"].iloc[0].items() if k.startswith("scale_check_")}
    tables: dict[str, Any] = {
        TABLES.scale_runs.name: runs, TABLES.scale_curves.name: raw["curves"], TABLES.scale_summary.name: _summary(runs),
        TABLES.scale_paired.name: paired_scale(runs), TABLES.scale_validation.name: raw["validation"],
        TABLES.scale_plateau.name: _plateau(runs), TABLES.scale_check.name: pd.DataFrame([check]),
        TABLES.scale_drc_share.name: _drc_share(raw["run_dirs"]), TABLES.scale_settings.name: raw["settings"],
    }
    return {name: frame.assign(command=command) for name, frame in tables.items()}
