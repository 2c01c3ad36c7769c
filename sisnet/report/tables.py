"""Histories -> the paper's tables (pure pandas): per-run results, mean +- std over seeds, Tables 1-3.

Metrics in histories are fractions in [0, 1]; every table here shows percent. The history readers themselves
are :class:`sisnet.runs.History`'s.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from sisnet import paper
from sisnet.report.io import format_mean_std
from sisnet.runs import History

__all__ = ["PROTOCOL_STANDARD", "PROTOCOL_RERANK", "protocol_cross_scale", "METRIC_LABELS", "evals_frame",
           "epochs_frame", "last_eval", "GridRun", "runs_frame", "summarize", "table2_wide", "table2_effects",
           "cascade_gap", "table3_measured", "table3_side_by_side", "table1_with_measured",
           "table1_wide_with_provenance", "table2_paired", "table3_paired", "PROTOCOL_GAP"]

PROTOCOL_STANDARD = "standard"
PROTOCOL_RERANK = "standard + re-ranking"
METRIC_LABELS = {"rank1": "R1", "mAP": "mAP", "rank5": "R5", "rank10": "R10", "mINP": "mINP"}


def protocol_cross_scale(query_scale: float) -> str:
    """Label of the cross-scale protocol: queries rescaled by ``query_scale``, full-resolution gallery."""
    return f"cross-scale (query x{query_scale:g})"


def evals_frame(history: Mapping[str, Any], *, percent: bool = True) -> pd.DataFrame:
    """The history's evaluations, one row per (epoch, mode), metrics in percent (see :meth:`History.evals_frame`)."""
    return History.of(history).evals_frame(percent=percent)


def epochs_frame(history: Mapping[str, Any]) -> pd.DataFrame:
    """The history's per-epoch records (losses, lr, seconds) as a DataFrame."""
    return History.of(history).epochs_frame()


def last_eval(history: Mapping[str, Any], mode: str = "either", *, percent: bool = True) -> dict[str, float]:
    """The last evaluation of ``mode`` in the history, metrics in percent (see :meth:`History.last_eval`)."""
    return History.of(history).last_eval(mode, percent=percent)


@dataclass
class GridRun:
    """One trained configuration of the Table 2 grid for one seed."""

    method: str  # "Baseline" | "SiSNet" | "SiSNet+DRC"
    loss: str  # "S." | "S.+T."
    seed: int
    history: dict
    run_dir: Path | None = None
    config: Any = None
    trained: bool = False  # whether the call that returned it trained it (False: read from the runs cache)

    @property
    def run_id(self) -> str:
        return str(self.history.get("run_id", self.run_dir.name if self.run_dir else "?"))

def runs_frame(runs: Iterable[GridRun], *, mode: str = "either") -> pd.DataFrame:
    """Standard-protocol results of each run (its last evaluation in ``mode``), one row per run.

    Columns: ``loss``, ``method``, ``seed``, ``protocol`` (= :data:`PROTOCOL_STANDARD`), ``mode``,
    ``rank1``, ``rank5``, ``rank10``, ``mAP``, ``mINP`` (percent, those present), ``epoch``, ``run_id``.
    """
    rows = []
    for run in runs:
        ev = last_eval(run.history, mode)
        rows.append(
            {"loss": run.loss, "method": run.method, "seed": run.seed, "protocol": PROTOCOL_STANDARD, "mode": mode,
             **{k: v for k, v in ev.items() if k != "epoch"}, "epoch": int(ev["epoch"]), "run_id": run.run_id}
        )
    return pd.DataFrame(rows)

def summarize(
    df: pd.DataFrame,
    by: Sequence[str] = ("loss", "method", "protocol"),
    metrics: Sequence[str] = ("rank1", "mAP"),
) -> pd.DataFrame:
    """Mean and sample standard deviation (ddof=1) over seeds.

    ``df`` has one row per (configuration, seed), e.g. from :func:`runs_frame`. Returns one row per
    group with columns ``<by>...``, ``<metric>_mean``, ``<metric>_std`` (NaN for a single seed) and
    ``n_seeds``; groups keep their order of first appearance.
    """
    missing = [c for c in (*by, *metrics) if c not in df.columns]
    if missing:
        raise ValueError(f"summarize: columns {missing} are missing; the frame has {list(df.columns)}.")
    g = df.groupby(list(by), sort=False)
    out = g[list(metrics)].agg(["mean", "std"])
    out.columns = [f"{m}_{stat}" for m, stat in out.columns]
    out["n_seeds"] = g.size()
    return out.reset_index()

def _order(df: pd.DataFrame) -> pd.DataFrame:
    """Sort rows in the paper's order: loss S. before S.+T., Baseline < SiSNet < SiSNet+DRC."""
    keys = {}
    if "loss" in df.columns:
        keys["loss"] = {v: i for i, v in enumerate(paper.LOSS_TYPES)}
    if "method" in df.columns:
        keys["method"] = {v: i for i, v in enumerate(paper.GRID_METHODS)}
    if not keys:
        return df
    cols = list(keys)
    return df.sort_values(cols, key=lambda s: s.map(keys[s.name]).fillna(99), kind="stable").reset_index(drop=True)

def table2_wide(summary: pd.DataFrame, metrics: Sequence[str] = ("rank1", "mAP"), decimals: int = 1) -> pd.DataFrame:
    """Table 2 layout of a :func:`summarize` result: index ``(loss, method)``, columns
    ``(protocol, R1|mAP)``, cells ``"mean ± std"`` strings."""
    summary = _order(summary)
    protocols = list(dict.fromkeys(summary["protocol"]))
    cells = {}
    for protocol in protocols:
        sub = summary[summary["protocol"] == protocol].set_index(["loss", "method"])
        for m in metrics:
            cells[(protocol, METRIC_LABELS.get(m, m))] = [
                format_mean_std(r[f"{m}_mean"], r[f"{m}_std"], int(r["n_seeds"]), decimals) for _, r in sub.iterrows()
            ]
            index = sub.index
    out = pd.DataFrame(cells, index=index)
    out.columns = pd.MultiIndex.from_tuples(out.columns, names=["protocol", "metric"])
    return out

def table2_effects(summary: pd.DataFrame, protocol: str = PROTOCOL_STANDARD) -> pd.DataFrame:
    """Gain of SiSNet and SiSNet+DRC over the Baseline (points), measured here vs in the paper.

    One row per (loss, method != Baseline); columns ``measured_rank1``, ``measured_mAP`` (differences
    of seed means) and ``paper_<dataset>_rank1`` / ``paper_<dataset>_mAP`` for the paper's three
    datasets. Lets a reader compare the *direction and size* of each effect even on data the paper
    did not use.
    """
    sub = summary[summary["protocol"] == protocol].set_index(["loss", "method"])
    t2 = paper.table2()
    rows = []
    for loss in paper.LOSS_TYPES:
        for method in paper.METHODS[1:]:
            if (loss, method) not in sub.index or (loss, "Baseline") not in sub.index:
                continue
            row = {"loss": loss, "method": method}
            for m in ("rank1", "mAP"):
                row[f"measured_{m}"] = sub.loc[(loss, method), f"{m}_mean"] - sub.loc[(loss, "Baseline"), f"{m}_mean"]
            for d in paper.PAPER_DATASETS:
                for m in ("rank1", "mAP"):
                    sel = t2[(t2["loss"] == loss) & (t2["dataset"] == d) & (t2["metric"] == m)].set_index("method")["value"]
                    row[f"paper_{d}_{m}"] = round(float(sel[method] - sel["Baseline"]), 2)
            rows.append(row)
    return pd.DataFrame(rows)

def cascade_gap(history: Mapping[str, Any], last_n: int = 5) -> dict[str, Any]:
    """Table 3 for one run: cascaded minus either-scale, mean over the last ``last_n`` evaluations.

    Uses the evaluation epochs that have both modes; if the run has fewer than ``last_n`` of them,
    all are used and ``n_evals`` says how many. Returns ``{"rank1_gap", "mAP_gap"}`` in percentage
    points (positive: cascading both branches' features scores higher), plus ``n_evals`` and
    ``epochs``. Raises ``ValueError`` when no epoch has both modes.
    """
    if last_n < 1:
        raise ValueError(f"last_n={last_n} must be >= 1 (the paper uses the last five evaluations).")
    df = evals_frame(history)
    if not len(df):
        raise ValueError(f"History {history.get('run_id', '?')} has no evaluations; Table 3 needs both modes.")
    wide = df.pivot_table(index="epoch", columns="mode", values=["rank1", "mAP"], aggfunc="last")
    needed = [(m, mode) for m in ("rank1", "mAP") for mode in ("either", "cascaded")]
    if not all(c in wide.columns for c in needed):
        raise ValueError(
            f"History {history.get('run_id', '?')} lacks 'either' or 'cascaded' evaluations (modes: "
            f"{sorted(df['mode'].unique())}); evaluate with modes=('either', 'cascaded') for Table 3."
        )
    wide = wide[needed].dropna().sort_index().tail(last_n)
    if not len(wide):
        raise ValueError(f"History {history.get('run_id', '?')} has no epoch evaluated in both modes.")
    out = {f"{m}_gap": float((wide[(m, "cascaded")] - wide[(m, "either")]).mean()) for m in ("rank1", "mAP")}
    out["n_evals"] = int(len(wide))
    out["epochs"] = [int(e) for e in wide.index]
    return out

def table3_measured(runs: Iterable[GridRun], last_n: int = 5) -> pd.DataFrame:
    """Per-run Table 3 gaps: columns ``loss``, ``method``, ``seed``, ``rank1_gap``, ``mAP_gap``, ``n_evals``, ``run_id``."""
    rows = []
    for run in runs:
        gap = cascade_gap(run.history, last_n)
        rows.append({"loss": run.loss, "method": run.method, "seed": run.seed, "rank1_gap": gap["rank1_gap"],
                     "mAP_gap": gap["mAP_gap"], "n_evals": gap["n_evals"], "run_id": run.run_id})
    return pd.DataFrame(rows)

def table3_side_by_side(per_run: pd.DataFrame, dataset: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Measured gaps (mean ± std over seeds) beside the paper's Table 3.

    Returns ``(data, display)``: ``data`` has one row per (loss, method) with ``rank1_gap_mean``,
    ``rank1_gap_std``, ``mAP_gap_mean``, ``mAP_gap_std``, ``n_seeds``, ``n_evals`` and the paper's
    ``paper_<dataset>_rank1`` / ``paper_<dataset>_mAP`` columns (only ``dataset``'s when it is one of
    the paper's datasets, else all three); ``display`` is the same with "mean ± std" strings.
    """
    s = summarize(per_run, by=("loss", "method"), metrics=("rank1_gap", "mAP_gap"))
    s["n_evals"] = per_run.groupby(["loss", "method"], sort=False)["n_evals"].min().values
    s = _order(s)
    t3 = paper.table3()
    datasets = [dataset] if dataset in paper.PAPER_DATASETS else list(paper.PAPER_DATASETS)
    for d in datasets:
        for m in ("rank1", "mAP"):
            lut = t3[(t3["dataset"] == d) & (t3["metric"] == m)].set_index(["loss", "method"])["gap"]
            s[f"paper_{d}_{m}"] = [float(lut.get((l, me), np.nan)) for l, me in zip(s["loss"], s["method"])]
    display = pd.DataFrame(index=pd.MultiIndex.from_frame(s[["loss", "method"]]))
    label = paper.DATASET_LABELS.get(dataset, dataset)
    for m in ("rank1", "mAP"):
        display[(f"measured ({label})", METRIC_LABELS[m])] = [
            format_mean_std(a, b, n, 2) for a, b, n in zip(s[f"{m}_gap_mean"], s[f"{m}_gap_std"], s["n_seeds"])
        ]
    for d in datasets:
        for m in ("rank1", "mAP"):
            display[(f"paper ({paper.DATASET_LABELS[d]})", METRIC_LABELS[m])] = [f"{v:.2f}" for v in s[f"paper_{d}_{m}"]]
    display.columns = pd.MultiIndex.from_tuples(display.columns, names=["source", "metric"])
    return s, display

def table1_with_measured(
    summary: pd.DataFrame,
    *,
    dataset: str,
    profile: str,
    seeds: Sequence[int],
    backbone: str,
    methods: Sequence[str] = ("Baseline", "SiSNet+DRC"),
    loss: str = "S.+T.",
    protocol: str = PROTOCOL_STANDARD,
    commit: str | None = None,
) -> pd.DataFrame:
    """Table 1 (tidy) with this run's measured rows appended; every cell carries its provenance.

    ``summary`` is a :func:`summarize` result of the Table 2 grid. The measured rows are the
    ``methods`` trained with ``loss`` (the paper's "Ours" is SiSNet+DRC with S.+T.), evaluated with
    ``protocol``; their values are seed means (``std`` and ``n_seeds`` alongside).

    Columns: ``method``, ``publication``, ``backbone``, ``dataset``, ``metric``, ``value``, ``std``,
    ``n_seeds``, ``provenance`` (``published`` | ``measured``), ``source`` (``"paper, Table 1"`` or
    ``"measured: <dataset>, profile <p>, seeds <s>[, commit <c>]"``).
    """
    pub = paper.table1()
    pub = pub.assign(std=np.nan, n_seeds=np.nan, provenance="published", source="paper, Table 1")
    pub = pub.drop(columns=["group"])
    seeds_txt = ",".join(str(s) for s in seeds)
    source = f"measured: {dataset}, profile {profile}, seed{'s' if len(seeds) > 1 else ''} {seeds_txt}"
    if commit:
        source += f", commit {commit[:12]}"
    sub = summary[(summary["protocol"] == protocol) & (summary["loss"] == loss)].set_index("method")
    rows = []
    for method in methods:
        if method not in sub.index:
            raise ValueError(
                f"table1_with_measured: no measured {method!r} with loss {loss!r} and protocol {protocol!r} in the "
                f"summary (it has {sorted(set(zip(summary['loss'], summary['method'])))}); run the Table 2 grid first."
            )
        r = sub.loc[method]
        for m in paper.METRICS:
            rows.append(
                {"method": f"{method} ({loss}, this run)", "publication": f"measured ({profile})", "backbone": backbone,
                 "dataset": dataset, "metric": m, "value": float(r[f"{m}_mean"]), "std": float(r[f"{m}_std"]),
                 "n_seeds": int(r["n_seeds"]), "provenance": "measured", "source": source}
            )
    return pd.concat([pub, pd.DataFrame(rows)], ignore_index=True)

def table1_wide_with_provenance(long: pd.DataFrame) -> pd.DataFrame:
    """The paper's Table 1 layout of a :func:`table1_with_measured` result, for display.

    Index ``(method, publication, backbone)``; columns ``(dataset label, R1|mAP)`` for the paper's
    datasets plus the measured dataset if different; each measured cell reads ``"mean ± std †"``
    (``†`` = measured here) and published cells the printed number; a ``provenance`` column names
    each row's source.
    """
    datasets = list(dict.fromkeys([*paper.PAPER_DATASETS, *long["dataset"].unique()]))
    rows = []
    for (method, pub, backbone), grp in long.groupby(["method", "publication", "backbone"], sort=False):
        row = {"method": method, "publication": pub, "backbone": backbone}
        for d in datasets:
            for m in paper.METRICS:
                hit = grp[(grp["dataset"] == d) & (grp["metric"] == m)]
                col = (paper.DATASET_LABELS.get(d, d), METRIC_LABELS[m])
                if not len(hit) or pd.isna(hit["value"].iloc[0]):
                    row[col] = "-"
                elif hit["provenance"].iloc[0] == "measured":
                    h = hit.iloc[0]
                    row[col] = format_mean_std(h["value"], h["std"], int(h["n_seeds"])) + " †"
                else:
                    row[col] = f"{hit['value'].iloc[0]:.1f}"
        row[("", "provenance")] = grp["source"].iloc[0]
        rows.append(row)
    out = pd.DataFrame(rows).set_index(["method", "publication", "backbone"])
    out.columns = pd.MultiIndex.from_tuples(out.columns, names=["dataset", "metric"])
    return out


def table2_paired(per_run: pd.DataFrame, metrics: Sequence[str] = ("rank1", "mAP")) -> pd.DataFrame:
    """The paper's Table 2 claims (:data:`sisnet.paper.CLAIMS`) and the control comparisons
    (:data:`sisnet.paper.CONTROL_COMPARISONS`) tested on ``per_run``, paired by seed.

    One row per (claim, protocol, metric): mean paired difference (points), 95 % t-interval, number of seeds
    and the verdict read off the interval (see :mod:`sisnet.stats`).
    """
    from sisnet.stats import Comparison, paired_table

    return paired_table(per_run, [Comparison(*c) for c in (*paper.CLAIMS, *paper.CONTROL_COMPARISONS)], metrics)


#: the protocol label of Table 3's claims: the cascaded feature's score minus the either-scale feature's
PROTOCOL_GAP = "gap (cascaded - either)"


def table3_paired(per_run: pd.DataFrame) -> pd.DataFrame:
    """Table 3's reading as claims, paired by seed: the gap (cascaded minus either-scale, ``rank1_gap`` /
    ``mAP_gap`` of :func:`table3_measured`) shrinks from Baseline to SiSNet and from SiSNet to SiSNet+DRC, under each
    loss. A positive difference ``gap(a) - gap(b)`` is the paper's reading; columns as :func:`table2_paired`'s."""
    from sisnet.stats import Comparison, paired_table

    steps = (("Baseline", "SiSNet"), ("SiSNet", "SiSNet+DRC"))
    comps = [Comparison(f"gap({a}) - gap({b})", loss, (loss, a), (loss, b))
             for loss in dict.fromkeys(per_run["loss"]) for a, b in steps]
    frame = per_run.assign(protocol=PROTOCOL_GAP).rename(columns={"rank1_gap": "rank1", "mAP_gap": "mAP"})
    return paired_table(frame, comps)


def training_cost(runs: Iterable[GridRun]) -> pd.DataFrame:
    """Wall seconds of training (evaluations included) per configuration: mean and total over its runs, from the
    runs' histories (each run trained with the profile's threads per run, see :mod:`sisnet.parallel`)."""
    df = pd.DataFrame([{"loss": r.loss, "method": r.method, "seed": r.seed,
                        "wall_seconds": float(r.history.get("wall_seconds", float("nan")))} for r in runs])
    g = df.groupby(["loss", "method"], sort=False)["wall_seconds"]
    out = pd.DataFrame({"mean_seconds": g.mean(), "total_seconds": g.sum(), "n_runs": g.size()})
    return _order(out.reset_index())
