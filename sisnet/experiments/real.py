"""Table 2 on real pedestrians: the real profile, its pre-registered family, validation, grid, 2x check and tables.

``python -m sisnet.experiments real`` runs, from an empty runs cache, in this order:

1. **Validation** (:data:`VALIDATION_GRID`): the Baseline (S.+T., seed 0) at every learning rate x schedule pair,
   chosen jointly on CUHK03's validation identities by mAP: the cheapest candidate whose mAP lies within one
   standard error of the best (a paired bootstrap over validation queries, :func:`choose_within_se`).
2. **The grid**: Baseline, Baseline+LR aug., SiSNet and SiSNet+DRC under S.+T. at every seed, chosen settings.
3. **The 2x check**: every arm at twice the chosen schedule (seed 0).
4. **Tables**: per run, DG summary, paired differences with Holm's adjustment over :data:`PRIMARY_FAMILY`
   (declared in :mod:`sisnet.experiments.common`, with this module's PRIMARY_PROTOCOLS, before any run),
   validation, plateau check, height bins.

The paper trains and tests on one domain (Market-1501, DukeMTMC-reID); this study is ours: a domain-generalisation
reading of its claims on the four classic small sets, which is where a CPU can train on real people.
"""
from __future__ import annotations

import functools
import os
import time
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from sisnet.config import TABLE2_GRID, config_from_dict, get_config, runs_folder
from sisnet.experiments.common import (ARMS, EXPLORATORY, LOSS, PRIMARY_FAMILY, bootstrap_se, choose_within_se,
                                       decay_milestones, paired_with_holm, run_curves, run_dir_of, run_evals, val_distances)
from sisnet.experiments.real_data import (SOURCES, TARGETS, dataset_table, evaluate_real, load_sources,
                                          load_targets)
from sisnet.utils import atomic_write

__all__ = ["REAL_SETTINGS", "VALIDATION_GRID", "ARMS", "PRIMARY_FAMILY", "PRIMARY_PROTOCOLS", "PRIMARY_METRIC",
           "PLATEAU_TOLERANCE", "real_config", "choose_within_se", "dg_frame", "paired_real", "run_experiment",
           "real_sets_present", "score_on_real"]

#: The real profile: the cpu profile's MobileNetV2 (offline ImageNet weights), 128x64 input and 8x4 batches, with
#: the native second view (a real small capture has fewer pixels), 100-step epochs, decay x0.1 for the last fifth.
REAL_SETTINGS: dict[str, Any] = dict(dataset="cuhk03", dataset_dir="data/cuhk03", small_view="native",
                                     scale_factor=0.5, steps_per_epoch=100, warmup_epochs=1, precise_bn=8,
                                     eval_every=2, eval_last=2)
#: learning rate x epochs, chosen jointly (Bag of Tricks' Adam 3.5e-4 and the cpu profile's 1e-3)
VALIDATION_GRID: tuple[tuple[float, int], ...] = ((3.5e-4, 5), (3.5e-4, 10), (1e-3, 5), (1e-3, 10))
PRIMARY_PROTOCOLS = ("targets mean, standard", "targets mean, cross-scale")
PRIMARY_METRIC = "mAP"
#: the plateau check: twice the schedule moves no arm's mean target mAP by more than this (points)
PLATEAU_TOLERANCE = 1.5


def real_config(method: str, seed: int, lr: float, epochs: int, data_root: str | Path, **overrides: Any):
    """The :class:`~sisnet.config.TrainConfig` of one real-profile run (cpu profile + :data:`REAL_SETTINGS`)."""
    entry = next(e for e in TABLE2_GRID if e["name"] == method and e["loss"] == LOSS)
    values = {**REAL_SETTINGS, "dataset_dir": str(Path(data_root) / "cuhk03"), "runs_dir": str(runs_folder(data_root)),
              **entry["overrides"], "seed": seed, "lr": lr, "epochs": epochs, "milestones": decay_milestones(epochs),
              **overrides}
    return get_config("cpu", **values)


@functools.lru_cache(maxsize=2)
def _sets(data_root: str):
    """The sources and targets under ``data_root``, loaded once per process (a worker runs many jobs)."""
    return load_sources(data_root), load_targets(data_root)


def train_and_evaluate(config: dict[str, Any], data_root: str) -> str:
    """Worker job: train one real-profile run (or find it in the runs cache), evaluate it once; its run folder."""
    from sisnet.engine import fit
    from sisnet.runs import load_model

    cfg = config_from_dict(config)
    sources, targets = _sets(data_root)
    run_dir = run_dir_of(cfg, sources.train)
    fit(cfg, run_dir, dataset=sources.train, progress=False)
    out = run_dir / "real_eval.csv"
    if not out.is_file():
        model, _ = load_model(run_dir, device=cfg.device)  # "auto": the GPU when there is one
        frame = evaluate_real(model, cfg, sources, targets)
        with atomic_write(out, "w", encoding="utf-8", newline="") as fh:
            frame.to_csv(fh, index=False)
    return str(run_dir)


def imagenet_only(data_root: str, overrides: dict[str, Any] | None = None) -> pd.DataFrame:
    """The evaluations of the ImageNet MobileNetV2 before any ReID training (BNNeck at its initial identity)."""
    import torch

    from sisnet.model import build_model

    cfg = real_config("Baseline", 0, VALIDATION_GRID[0][0], VALIDATION_GRID[0][1], data_root, **(overrides or {}))
    sources, targets = _sets(data_root)
    out = Path(cfg.runs_dir) / f"imagenet-only-{run_dir_of(cfg, sources.train).name}" / "real_eval.csv"
    if not out.is_file():
        torch.manual_seed(0)
        model = build_model(cfg, 1).eval()
        frame = evaluate_real(model, cfg, sources, targets)
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(out, "w", encoding="utf-8", newline="") as fh:
            frame.to_csv(fh, index=False)
    return pd.read_csv(out)


def dg_frame(evals: pd.DataFrame, targets: Sequence[str] = TARGETS) -> pd.DataFrame:
    """Per-run protocol rows from :func:`evaluate_real` output (+ run columns): each set's mean over its splits
    (height bin ``all``) and the mean over the targets, ``targets mean, <protocol>``."""
    keys = [c for c in evals.columns if c not in ("set", "split", "protocol", "height_bin", "rank1", "mAP",
                                                  "n_query", "n_gallery")]
    allbins = evals[evals["height_bin"] == "all"]
    per_set = allbins.groupby(keys + ["set", "protocol"], sort=False, dropna=False)[["rank1", "mAP", "n_query"]].mean()
    per_set = per_set.reset_index()
    per_set["protocol_name"] = per_set["set"] + ", " + per_set["protocol"]
    dg = per_set[per_set["set"].isin(targets)].groupby(keys + ["protocol"], sort=False, dropna=False)[["rank1", "mAP"]]
    dg = dg.mean().reset_index()
    dg["protocol_name"] = "targets mean, " + dg["protocol"]
    dg["set"] = "targets mean"
    return pd.concat([dg, per_set], ignore_index=True)


def real_sets_present(data_root: str | Path) -> bool:
    """Whether every source and target set has its folder under ``data_root`` (``<data_root>/<name>``); the
    loaders check the layout inside it, with an error that names the file."""
    from sisnet.config import dataset_folder

    return all(Path(dataset_folder(name, data_root, "cpu")).is_dir() for name in SOURCES + TARGETS)


def score_on_real(models: dict[str, Any], data_root: str | Path, trained_on: str, *,
                  with_imagenet: bool = True) -> pd.DataFrame:
    """Models trained elsewhere (``{label: TrainedModel}``, e.g. on the synthetic set) scored on the real sets
    exactly as the real grid is -- CUHK03 validation and in-domain identities, each target's splits, both protocols
    -- and, with ``with_imagenet``, the ImageNet-only reference (:func:`imagenet_only`) beside them.
    :func:`dg_frame` rows with ``model``, ``trained_on`` and ``seed`` columns."""
    sources, targets = _sets(str(data_root))
    frames = [evaluate_real(tm.model, tm.config, sources, targets).assign(model=label, trained_on=trained_on,
                                                                            seed=tm.seed)
              for label, tm in models.items()]
    if with_imagenet:
        frames.append(imagenet_only(str(data_root)).assign(model="ImageNet only", trained_on="ImageNet", seed=0))
    return dg_frame(pd.concat(frames, ignore_index=True))


def paired_real(per_run: pd.DataFrame) -> pd.DataFrame:
    """Paired differences by seed: the primary family with Holm columns (``family = primary``), then every other
    comparison and protocol, unadjusted (``family = exploratory``)."""
    frame = per_run.rename(columns={"protocol": "protocol_kind"}).rename(columns={"protocol_name": "protocol"})
    return paired_with_holm(frame, PRIMARY_FAMILY, EXPLORATORY, PRIMARY_PROTOCOLS, PRIMARY_METRIC)


def run_experiment(data_root: str, seeds: Sequence[int], workers: int, threads: int = 1, log=print,
                   validation_grid: Sequence[tuple[float, int]] = VALIDATION_GRID,
                   overrides: dict[str, Any] | None = None) -> dict[str, pd.DataFrame]:
    """Validation, grid and 2x check (see the module docstring); returns the raw tables by name.

    ``overrides`` (config fields) and ``validation_grid`` exist for the tests' tiny runs; the committed results use
    neither."""
    over = dict(overrides or {})
    from sisnet.parallel import map_in_workers

    def train(jobs):
        return map_in_workers(train_and_evaluate, [(c.to_dict(), data_root) for c in jobs], workers=workers,
                              threads=threads)

    t0, load_start = time.perf_counter(), " ".join(f"{x:.2f}" for x in os.getloadavg())
    cands = [real_config("Baseline", seeds[0], lr, ep, data_root, **over) for lr, ep in validation_grid]
    cand_dirs = train(cands)
    log(f"validation runs done ({time.perf_counter() - t0:.0f} s)")
    val = pd.DataFrame([{"lr": c.lr, "epochs": c.epochs, "steps": c.epochs * c.steps_per_epoch} for c in cands])
    validation = _sets(data_root)[0].train
    feats = [val_distances(Path(d), validation) for d in cand_dirs]
    from sisnet.evaluation import rank_metrics

    scores = [rank_metrics(*f) for f in feats]
    val["mAP"] = [100 * m["mAP"] for m in scores]
    val["rank1"] = [100 * m["rank1"] for m in scores]
    best = int(val["mAP"].idxmax())
    val["se_diff"] = [0.0 if i == best else bootstrap_se(feats[best][0], f[0], *feats[best][1:]) for i, f in
                      enumerate(feats)]
    val["diff_from_best"] = val["mAP"] - val.loc[best, "mAP"]
    chosen = choose_within_se(val)
    val["chosen"] = val.index == chosen
    lr, epochs = float(val.loc[chosen, "lr"]), int(val.loc[chosen, "epochs"])
    log(f"chosen on validation: lr={lr:g}, epochs={epochs}")

    grid = [real_config(m, s, lr, epochs, data_root, **over) for s in seeds for m in ARMS]
    twice = [real_config(m, seeds[0], lr, 2 * epochs, data_root, **over) for m in ARMS]
    dirs = train(grid + twice)
    log(f"grid and 2x check done ({time.perf_counter() - t0:.0f} s)")
    labels = [{"method": m, "loss": LOSS, "seed": s, "schedule": "1x"} for s in seeds for m in ARMS]
    labels += [{"method": m, "loss": LOSS, "seed": seeds[0], "schedule": "2x"} for m in ARMS]
    evals = run_evals(dirs, labels)
    curves = run_curves(dirs, labels)
    cand_evals = run_evals(cand_dirs, [{"method": "Baseline", "loss": LOSS, "seed": seeds[0], "lr": c.lr,
                                     "epochs": c.epochs} for c in cands])
    imagenet = imagenet_only(data_root, over)
    imagenet.insert(0, "method", "ImageNet only")
    datasets = dataset_table(*_sets(data_root))
    return {"evals": evals, "curves": curves, "validation": val, "datasets": datasets, "validation_evals": cand_evals, "imagenet": imagenet,
            "settings": pd.DataFrame([{"lr": lr, "epochs": epochs, "steps_per_epoch": REAL_SETTINGS["steps_per_epoch"],
                                       "seeds": ",".join(map(str, seeds)), "workers": workers, "threads": threads,
                                       "wall_seconds": time.perf_counter() - t0,
                                       "load_average_start": load_start,
                                       "load_average_end": " ".join(f"{x:.2f}" for x in os.getloadavg())}])}
