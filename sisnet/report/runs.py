"""The Table 2 grid as runs: configurations of each cell, training or loading them from the runs cache.

A run is trained by :func:`sisnet.engine.fit` into ``<data_root>/runs/<run_id>/`` and answered from there
afterwards; :func:`run_grid` covers the grid over seeds, :func:`load_models` gives trained models for
inference.
"""
from __future__ import annotations

import contextlib

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from sisnet import paper
from sisnet.report.context import NotebookContext, load
from sisnet.report.tables import GridRun, last_eval, summarize

__all__ = ["grid_config", "config_frame", "run_folder", "train", "train_cells", "launch", "launch_command", "run_grid",
           "init_comparison", "TrainedModel", "load_models"]


def _grid_entry(method: str, loss: str) -> dict[str, Any]:
    from sisnet.config import TABLE2_GRID

    for entry in TABLE2_GRID:
        if entry["name"] == method and entry["loss"] == loss:
            return entry
    raise ValueError(
        f"No Table 2 configuration {method!r} with loss {loss!r}; methods: {list(paper.GRID_METHODS)}, "
        f"losses: {list(paper.LOSS_TYPES)}."
    )

def grid_config(ctx: NotebookContext, method: str, loss: str, seed: int | None = None, **overrides: Any):
    """The :class:`~sisnet.config.TrainConfig` of one Table 2 cell (profile + method/loss switches)."""
    return ctx.config(seed, **{**_grid_entry(method, loss)["overrides"], **overrides})

#: The parameters a reader needs to know what a run is (the rest keep the paper / Bag-of-Tricks defaults).
KEY_PARAMETERS = ("backbone", "pretrained", "img_height", "img_width", "last_stride", "output_stride", "scale_factor",
                  "small_view", "siamese", "low_res_aug", "drc", "drc_weight", "triplet", "triplet_margin",
                  "triplet_normalize", "P", "K", "epochs", "steps_per_epoch", "lr", "milestones", "precise_bn", "seed",
                  "amp", "channels_last")


def config_frame(config: Any, parameters: Sequence[str] | None = KEY_PARAMETERS) -> pd.DataFrame:
    """A short vertical table (index = parameter, one ``value`` column) of a config, for a notebook.

    ``parameters``: the fields shown, in order (default :data:`KEY_PARAMETERS`); ``None`` shows every field.
    """
    d = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    names = [p for p in parameters if p in d] if parameters is not None else list(d)
    return pd.DataFrame({"value": [str(d[p]) for p in names]}, index=pd.Index(names, name="parameter"))

def run_folder(ctx: NotebookContext, config: Any) -> Path:
    """Where :func:`sisnet.engine.fit` keeps ``config``'s run on this notebook's dataset and device:
    ``<runs_dir>/<run_key>`` (:func:`sisnet.runs.run_key`: config, effective precision, dataset fingerprint, and
    per-process BatchNorm when ``ctx.nproc`` > 1 without ``sync_bn``)."""
    from sisnet.runs import run_key

    return Path(config.runs_dir) / run_key(config, load(ctx), world_size=ctx.nproc)

def _must_retrain(run_dir: Path, force: bool | float | int | None) -> bool:
    """``force``: False -> use the cache; True -> retrain; a UNIX time -> retrain runs whose history is older.

    The UNIX-time form is what ``sisnet.reproduce --force`` passes, so a run retrained by one notebook
    of the batch is not retrained again by the next one.
    """
    if force is None or force is False:
        return False
    if force is True:
        return True
    if isinstance(force, (int, float)):
        history = run_dir / "history.json"
        return not history.is_file() or history.stat().st_mtime < float(force)
    raise ValueError(f"force={force!r} must be True, False or a UNIX time (seconds).")

def _cell_config(ctx: NotebookContext, method: str, loss: str, seed: int | None, overrides: dict[str, Any]):
    seed = ctx.seed if seed is None else int(seed)
    config = grid_config(ctx, method, loss, seed, **overrides)
    return seed, config, run_folder(ctx, config)


def _needs_training(run_dir: Path, force: bool | float | int | None) -> bool:
    """Whether :func:`train` would train (not just read) the run in ``run_dir``."""
    from sisnet.runs import HISTORY_NAME, load_history

    if _must_retrain(run_dir, force) or not (run_dir / HISTORY_NAME).is_file():
        return True
    try:
        return not load_history(run_dir).complete
    except ValueError:
        return True


@contextlib.contextmanager
def _run_threads(ctx: NotebookContext):
    """Torch uses the profile's threads per training run (:attr:`ProfileSettings.run_threads`) inside the block."""
    import torch

    from sisnet.config import profile_settings

    threads, before = profile_settings(ctx.profile).run_threads, torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train(
    ctx: NotebookContext,
    method: str,
    loss: str,
    seed: int | None = None,
    *,
    force: bool | float = False,
    progress: bool | None = None,
    **overrides: Any,
) -> GridRun:
    """Train one Table 2 configuration with :func:`sisnet.engine.fit`, or load it from the runs cache.

    The run lives in :func:`run_folder` (``<data_root>/runs/<run_id>/``); ``force`` retrains it (see
    :func:`_must_retrain`). ``overrides`` change config fields of the cell (e.g. ``pretrained=False``); they are
    part of the run id. With ``ctx.nproc > 1`` the run is trained by ``torchrun --nproc_per_node=<nproc> -m
    sisnet.train`` (same config, same run folder; :func:`launch`). ``progress`` (default ``ctx.progress``: off in
    batch runs) shows tqdm bars. The returned :class:`GridRun` says whether this call trained the run.
    """
    from sisnet.engine import fit

    progress = ctx.progress if progress is None else progress
    seed, config, run_dir = _cell_config(ctx, method, loss, seed, overrides)
    retrain = _must_retrain(run_dir, force)
    trained = _needs_training(run_dir, force)
    if ctx.nproc > 1:
        history = launch(ctx, {**_grid_entry(method, loss)["overrides"], **overrides, "seed": seed}, run_dir,
                         force=retrain, progress=progress)
    else:
        with _run_threads(ctx):
            history = fit(config, run_dir, resume=not retrain, progress=progress, dataset=load(ctx))
    return GridRun(method=method, loss=loss, seed=seed, history=dict(history), run_dir=run_dir, config=config.to_dict(),
                   trained=trained)


def train_cells(
    ctx: NotebookContext,
    cells: Sequence[tuple[str, str, int, dict[str, Any]]],
    *,
    force: bool | float = False,
    progress: bool | None = None,
    log=print,
) -> list[GridRun]:
    """:func:`train` for several ``(method, loss, seed, overrides)`` cells; the ones that need training are
    trained first in parallel worker processes when the profile sets ``run_threads`` and the machine has cores
    for more than one (:mod:`sisnet.parallel`), then every cell is read back in order. One log line per cell."""
    import time

    from sisnet.config import profile_settings
    from sisnet.parallel import default_workers, train_in_workers

    threads = profile_settings(ctx.profile).run_threads
    workers = default_workers(threads) if ctx.nproc == 1 else 1
    dirs = [_cell_config(ctx, method, loss, seed, overrides) for method, loss, seed, overrides in cells]
    todo: dict[Path, tuple] = {}
    for _, config, run_dir in dirs:
        if run_dir not in todo and _needs_training(run_dir, force):
            todo[run_dir] = (config, run_dir, not _must_retrain(run_dir, force))
    t0 = time.perf_counter()
    if workers > 1 and len(todo) > 1:
        if log:
            log(f"training {len(todo)} run(s) in {min(workers, len(todo))} worker processes "
                f"({threads} thread(s) each)")
        train_in_workers(list(todo.values()), workers=workers, threads=threads)
        pooled = True
    else:
        pooled = False
    runs = []
    for i, ((method, loss, seed, overrides), (_, _, run_dir)) in enumerate(zip(cells, dirs), 1):
        # a run the pool just trained is read back, not trained again (force applied to it already)
        run = train(ctx, method, loss, seed, force=False if pooled and run_dir in todo else force, progress=progress,
                    **overrides)
        run.trained = run.trained or (pooled and run_dir in todo)
        runs.append(run)
        if log:
            log(f"[{i}/{len(cells)}] {loss:5s} {method:10s} seed {seed}: run {run.run_id} "
                f"({'trained' if run.trained else 'cached'}; training wall "
                f"{run.history.get('wall_seconds', float('nan')):.1f} s)")
    if log and todo:
        log(f"{len(todo)} run(s) trained, {len(cells) - len(todo)} read from the runs cache, in "
            f"{time.perf_counter() - t0:.0f} s")
    return runs


def launch_command(ctx: NotebookContext, overrides: dict[str, Any], *, force: bool = False,
                   progress: bool = False) -> list[str]:
    """The ``torchrun ... -m sisnet.train`` command line that trains ``ctx.config(**overrides)`` on ``ctx.nproc``
    processes (:func:`sisnet.train.command`)."""
    from sisnet.train import command

    return command(ctx.profile, ctx.dataset, ctx.data_root, overrides, nproc=ctx.nproc, force=force, progress=progress)

def launch(ctx: NotebookContext, overrides: dict[str, Any], run_dir: Path, *, force: bool = False,
           progress: bool = False):
    """Run :func:`launch_command` (from the project root, where ``ctx``'s relative paths point) and return the
    history it writes to ``run_dir`` (:func:`run_folder`); ``RuntimeError`` with the launcher's last output when
    it fails."""
    import os
    import subprocess

    from sisnet.runs import load_history

    env = dict(os.environ)
    package_parent = str(Path(__file__).resolve().parents[2])  # importable in the child without an install
    env["PYTHONPATH"] = os.pathsep.join([package_parent, *filter(None, [env.get("PYTHONPATH")])])
    proc = subprocess.run(launch_command(ctx, overrides, force=force, progress=progress), env=env,
                          stdout=None if progress else subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        tail = (proc.stdout or "")[-3000:]
        raise RuntimeError(f"torchrun -m sisnet.train failed (exit code {proc.returncode}) for run "
                           f"{Path(run_dir).name}:\n{tail}")
    if proc.stdout and proc.stdout.strip():
        print(proc.stdout.strip().splitlines()[-1])  # the launcher's summary line
    return load_history(run_dir)

def run_grid(
    ctx: NotebookContext,
    *,
    seeds: Sequence[int] | None = None,
    force: bool | float = False,
    progress: bool | None = None,
    log=print,
) -> list[GridRun]:
    """The Table 2 grid (3 methods x 2 losses) x ``seeds`` (default ``ctx.seeds``), trained (in parallel worker
    processes where the profile allows, :func:`train_cells`) or read from the runs cache."""
    from sisnet.config import TABLE2_GRID

    seeds = list(ctx.seeds if seeds is None else seeds)
    cells = [(entry["name"], entry["loss"], seed, {}) for seed in seeds for entry in TABLE2_GRID]
    return train_cells(ctx, cells, force=force, progress=progress, log=log)


def init_comparison(
    ctx: NotebookContext,
    method: str = "Baseline",
    loss: str = "S.+T.",
    *,
    seeds: Sequence[int] | None = None,
    force: bool | float = False,
    progress: bool | None = None,
    log=print,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The profile's initial weights (e.g. ImageNet via ``pretrained="auto"``) against random initialisation.

    Trains (or loads from the runs cache) the Table 2 cell ``method``/``loss`` for each seed twice: as the
    profile configures it -- the same run as Table 2's, so it is shared with notebook 03 -- and with
    ``pretrained=False``. Returns ``(per_run, summary)``: ``per_run`` has one row per (init, seed) with
    the weights the run actually started from (``weights`` = the history's source, ``sha256`` shortened) and
    the last standard-protocol evaluation (percent); ``summary`` has mean ± std per init and, in the row
    ``difference``, the profile's init minus random (means). When the profile already starts from random
    weights the two arms are the same run, and the difference is 0 by construction.
    """
    seeds = list(ctx.seeds if seeds is None else seeds)
    profile_init = ctx.config().pretrained
    arms = [(f"profile ({profile_init})", {}), ("random (pretrained=False)", {"pretrained": False})]
    labelled = [(label, overrides, seed) for label, overrides in arms for seed in seeds]
    runs = train_cells(ctx, [(method, loss, seed, overrides) for _, overrides, seed in labelled], force=force,
                       progress=progress, log=None)
    rows = []
    for (label, _, seed), run in zip(labelled, runs):
        weights = dict(run.history.get("weights") or {})
        ev = last_eval(run.history, "either")
        rows.append({"init": label, "seed": seed, "weights": weights.get("source", "?"),
                     "sha256": (weights.get("sha256") or "")[:12], "rank1": ev["rank1"], "mAP": ev["mAP"],
                     "mINP": ev.get("mINP", float("nan")), "epoch": int(ev["epoch"]),
                     "wall_seconds": float(run.history.get("wall_seconds", float("nan"))), "run_id": run.run_id})
        if log:
            log(f"{label:28s} seed {seed}: rank-1 {ev['rank1']:.1f} %, mAP {ev['mAP']:.1f} % "
                f"(weights: {weights.get('source', '?')}, run {run.run_id}, {'trained' if run.trained else 'cached'})")
    per_run = pd.DataFrame(rows)
    summary = summarize(per_run, by=("init",), metrics=("rank1", "mAP"))
    diff = {"init": "difference (profile - random)", "n_seeds": len(seeds)}
    for m in ("rank1", "mAP"):
        diff[f"{m}_mean"] = float(summary[f"{m}_mean"].iloc[0] - summary[f"{m}_mean"].iloc[1])
        diff[f"{m}_std"] = float("nan")
    summary = pd.concat([summary, pd.DataFrame([diff])], ignore_index=True)
    return per_run, summary

@dataclass
class TrainedModel:
    """A trained model of the grid, ready for inference (eval mode, CPU)."""

    method: str
    loss: str
    seed: int
    model: Any
    config: Any
    run_dir: Path

def load_models(
    ctx: NotebookContext,
    *,
    loss: str = "S.+T.",
    seed: int | None = None,
    methods: Sequence[str] = paper.METHODS,
) -> dict[str, TrainedModel]:
    """Baseline / SiSNet / SiSNet+DRC of one loss type and seed (trained if not cached), loaded for inference."""
    from sisnet.runs import load_model

    out = {}
    for method in methods:
        run = train(ctx, method, loss, seed, progress=False)
        model, config = load_model(run.run_dir)
        out[method] = TrainedModel(method, loss, run.seed, model, config, run.run_dir)
    return out
