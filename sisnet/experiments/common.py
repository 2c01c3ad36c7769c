"""What the real and the scale experiments share: the arms and claims, the 1-SE choice rule and its bootstrap, the
paired table with Holm's adjustment, run folders and run tables."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from sisnet.stats import Comparison, holm_family, paired_table

__all__ = ["ARMS", "LOSS", "PRIMARY_FAMILY", "EXPLORATORY", "paired_with_holm", "decay_milestones", "BOOTSTRAP_REPS",
           "bootstrap_diffs", "choose_within_se", "bootstrap_se", "val_distances", "run_dir_of", "run_curves",
           "run_evals"]

BOOTSTRAP_REPS = 500
ARMS = ("Baseline", "Baseline+LR aug.", "SiSNet", "SiSNet+DRC")
LOSS = "S.+T."
#: The paper's method claims, the primary family of both experiments (each declares its protocols beside it).
PRIMARY_FAMILY = (
    Comparison("SiSNet - Baseline+LR aug.", LOSS, (LOSS, "SiSNet"), (LOSS, "Baseline+LR aug.")),
    Comparison("SiSNet+DRC - SiSNet", LOSS, (LOSS, "SiSNet+DRC"), (LOSS, "SiSNet")),
    Comparison("SiSNet - Baseline", LOSS, (LOSS, "SiSNet"), (LOSS, "Baseline")),
)
EXPLORATORY = (
    Comparison("SiSNet+DRC - Baseline", LOSS, (LOSS, "SiSNet+DRC"), (LOSS, "Baseline")),
    Comparison("SiSNet+DRC - Baseline+LR aug.", LOSS, (LOSS, "SiSNet+DRC"), (LOSS, "Baseline+LR aug.")),
    Comparison("Baseline+LR aug. - Baseline", LOSS, (LOSS, "Baseline+LR aug."), (LOSS, "Baseline")),
)


def decay_milestones(epochs: int) -> tuple[int, ...]:
    """The learning-rate decay of both experiments' schedules: x0.1 for the last fifth of ``epochs``."""
    return (max(1, round(0.8 * epochs)),)


def paired_with_holm(per_run: pd.DataFrame, family: Sequence[Comparison], exploratory: Sequence[Comparison],
                     protocols: Sequence[str], metric: str) -> pd.DataFrame:
    """Paired differences by seed: ``family`` x ``protocols`` on ``metric`` with Holm columns (``family = primary``),
    then every other comparison, protocol and metric, unadjusted (``family = exploratory``). ``per_run`` has one row
    per (loss, method, seed, protocol)."""
    primary = holm_family(paired_table(per_run[per_run["protocol"].isin(protocols)], family, metrics=(metric,)))
    primary.insert(0, "family", "primary")
    rest = paired_table(per_run, tuple(family) + tuple(exploratory), metrics=("rank1", "mAP"))
    key = primary.set_index(["comparison", "protocol", "metric"]).index
    rest = rest[~rest.set_index(["comparison", "protocol", "metric"]).index.isin(key)]
    rest.insert(0, "family", "exploratory")
    return pd.concat([primary, rest], ignore_index=True)


def choose_within_se(frame: pd.DataFrame, score: str = "mAP", se: str = "se_diff", cost: str = "epochs") -> int:
    """Row label of the choice: the cheapest row (``cost``) whose ``score`` is within one ``se`` (the standard error
    of its difference from the best row) of the best; ties in cost go to the higher score."""
    best = frame[score].max()
    ok = frame[(best - frame[score]) <= frame[se]]
    return ok.sort_values([cost, score], ascending=[True, False]).index[0]


def val_distances(run_dir: Path, validation: Any):
    """The query-gallery distances of one validation candidate (the config's metric) with the ids and cameras."""
    import torch

    from sisnet.evaluation import extract_features
    from sisnet.metrics import compute_distance
    from sisnet.runs import load_model

    model, cfg = load_model(run_dir)
    with torch.no_grad():
        qf, qp, qc = extract_features(model, validation.query, cfg)
        gf, gp, gc = extract_features(model, validation.gallery, cfg)
    return compute_distance(qf, gf, cfg.metric), qp, gp, qc, gc


def bootstrap_se(dist_a, dist_b, q_pids, g_pids, q_camids, g_camids, reps: int = BOOTSTRAP_REPS) -> float:
    """Standard error of ``mAP(a) - mAP(b)`` from a paired bootstrap over queries (the same resample for both)."""
    return float(np.std(bootstrap_diffs([(dist_a, dist_b, q_pids, g_pids, q_camids, g_camids)], reps), ddof=1))


def bootstrap_diffs(protocols: Sequence[tuple], reps: int = BOOTSTRAP_REPS) -> np.ndarray:
    """``reps`` bootstrap replicates of the mean over ``protocols`` of ``mAP(a) - mAP(b)`` (points): each protocol
    ``(dist_a, dist_b, q_pids, g_pids, q_camids, g_camids)`` resamples its own queries, the same rows for a and b."""
    from sisnet.evaluation import rank_metrics

    rng = np.random.default_rng(0)
    out = np.zeros(reps)
    for dist_a, dist_b, q_pids, g_pids, q_camids, g_camids in protocols:
        for r in range(reps):
            idx = rng.integers(0, len(q_pids), len(q_pids))
            m = [rank_metrics(d[idx], q_pids[idx], g_pids, q_camids[idx], g_camids)["mAP"] for d in (dist_a, dist_b)]
            out[r] += 100 * (m[0] - m[1]) / len(protocols)
    return out


def run_dir_of(config: Any, train_set: Any) -> Path:
    """The runs-cache folder of training ``config`` on ``train_set`` (the config's device decides the precision)."""
    from sisnet.runs import run_key

    return Path(config.runs_dir) / run_key(config, train_set)


def run_curves(run_dirs: Sequence[str], labels: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """The validation curve of each run: every periodic evaluation :func:`sisnet.engine.fit` made (%)."""
    from sisnet.runs import load_history

    frames = []
    for run_dir, label in zip(run_dirs, labels):
        f = load_history(run_dir).evals_frame(percent=True)
        f = f[f["mode"] == "either"].drop(columns="mode")
        for k, v in label.items():
            f.insert(0, k, v)
        frames.append(f)
    return pd.concat(frames, ignore_index=True)


def run_evals(run_dirs: Sequence[str], labels: Sequence[dict[str, Any]], filename: str = "real_eval.csv") -> pd.DataFrame:
    """Each run's evaluation file (``filename`` in its run folder) with the run's label columns, id and train time."""
    frames = []
    for run_dir, label in zip(run_dirs, labels):
        f = pd.read_csv(Path(run_dir) / filename)
        hist = json.loads((Path(run_dir) / "history.json").read_text())
        for k, v in {**label, "run_id": Path(run_dir).name, "train_seconds": hist.get("wall_seconds")}.items():
            f.insert(0, k, v)
        frames.append(f)
    return pd.concat(frames, ignore_index=True)
