"""Independent training runs in worker processes, with results bit-identical whatever the number of workers.

The Table 2 grid is many independent runs. :func:`train_in_workers` trains them in a process pool sized to the
machine (the standard library's :class:`concurrent.futures.ProcessPoolExecutor`, ``spawn`` start method so no
worker inherits a half-initialised thread pool). Every run, whether the pool has one worker or many, runs in a
worker process with the same number of torch threads, so its floating-point work (and therefore its result) does
not depend on the worker count; a test checks it. Runs land in the runs cache (:func:`sisnet.engine.fit`), from
where the notebooks read them.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable

__all__ = ["train_in_workers", "map_in_workers", "default_workers"]


def default_workers(threads_per_run: int | None) -> int:
    """Worker processes for runs of ``threads_per_run`` torch threads: the usable cores divided by it (>= 1);
    1 when ``threads_per_run`` is None (each run uses all cores) or a GPU is present (one device). The environment
    variable ``SISNET_WORKERS`` overrides it."""
    import torch

    forced = os.environ.get("SISNET_WORKERS", "").strip()
    if forced:  # e.g. several small runs sharing one large GPU (the validation sweep on a lent machine)
        return max(1, int(forced))
    if threads_per_run is None or torch.cuda.is_available():
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, int(threads_per_run)))


def _train_one(config: dict[str, Any], run_dir: str, resume: bool) -> str:
    """Worker job: train one config into ``run_dir`` (or find it complete there); returns the run folder."""
    from sisnet.config import config_from_dict
    from sisnet.engine import fit

    fit(config_from_dict(config), run_dir, resume=resume, progress=False)
    return run_dir


def _call_with_threads(fn: Callable[..., Any], threads: int | None, args: tuple) -> Any:
    """Worker: set the run's torch threads, then call ``fn(*args)``."""
    import torch

    if threads is not None:
        torch.set_num_threads(int(threads))
    return fn(*args)


def map_in_workers(fn: Callable[..., Any], jobs: Sequence[tuple], *, workers: int, threads: int | None) -> list[Any]:
    """``[fn(*args) for args in jobs]`` in ``workers`` spawned processes, each with ``threads`` torch threads.

    ``fn`` must be a module-level function (it is pickled by name). Results come back in job order; a failing job
    raises its error here (the pool's other jobs finish first). The one process pool of the package: the Table 2
    grid and the real-data experiment both train through it.
    """
    import concurrent.futures as cf
    import multiprocessing as mp

    if workers < 1:
        raise ValueError(f"workers={workers!r} must be >= 1.")
    if not jobs:
        return []
    with cf.ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=mp.get_context("spawn")) as pool:
        futures = [pool.submit(_call_with_threads, fn, threads, tuple(args)) for args in jobs]
        return [f.result() for f in futures]


def train_in_workers(jobs: Sequence[tuple[Any, str | Path, bool]], *, workers: int, threads: int | None) -> list[str]:
    """Train ``jobs`` = ``[(config, run_dir, resume), ...]`` in ``workers`` processes, each run with ``threads``
    torch threads; returns the run folders in job order. A failing run raises its error here (the other runs
    of the pool finish first)."""
    return map_in_workers(_train_one, [(cfg.to_dict(), str(run_dir), bool(resume)) for cfg, run_dir, resume in jobs],
                          workers=workers, threads=threads)
