"""Data-loader settings for a device: the worker count (sized to the machine), pinning, persistence, prefetch.

The one place that decides how batches are fed, for training (:func:`sisnet.engine.build_train_loader`) and
feature extraction (:func:`sisnet.evaluation.extract_modes`).

``num_workers="auto"`` (the ``paper`` profile):

- on the CPU, 0 workers: the model's forward/backward already uses every core, and with the images decoded
  to RAM the workers' share of a sample (the ``uint8`` geometry of
  :meth:`sisnet.data.transforms.TwoScaleTransform.prepare`) is a small fraction of the step;
- on a GPU, one worker per core this process may use (the cores divided among the processes of the
  machine, one left for the main process), at most :data:`MAX_AUTO_WORKERS`, and no more than half of
  ``/dev/shm`` can hold: each worker keeps :data:`PREFETCH` batches in shared memory. A container's default
  ``/dev/shm`` is 64 MB; a ``uint8`` 16 x 4 batch at 256 x 128 is 6.3 MB (a float32 one with its second
  view was 31 MB). ``python -m sisnet.benchmark --section loader`` measures how many workers a step needs.
"""
from __future__ import annotations

import os
import shutil
from typing import Any

import torch

__all__ = ["MAX_AUTO_WORKERS", "PREFETCH", "resolve_workers", "loader_options"]

#: Most workers ``num_workers="auto"`` starts per process.
MAX_AUTO_WORKERS = 8
#: Batches each worker prepares ahead.
PREFETCH = 2


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _shared_memory_bytes() -> int | None:
    try:
        return shutil.disk_usage("/dev/shm").total
    except OSError:
        return None


def resolve_workers(num_workers: int | str, device: torch.device, batch_bytes: int, local_processes: int = 1) -> int:
    """The worker count of ``num_workers`` (an int, or ``"auto"``: see the module doc) for ``device``.

    ``batch_bytes``: size of one batch as the workers ship it; ``local_processes``: training processes on
    this machine (torchrun's ``LOCAL_WORLD_SIZE``), which share its cores and shared memory.
    """
    if num_workers != "auto":
        return int(num_workers)
    if device.type != "cuda":
        return 0
    local_processes = max(1, int(local_processes))
    workers = min(MAX_AUTO_WORKERS, max(1, _usable_cores() // local_processes - 1))
    shm = _shared_memory_bytes()
    if shm:
        per_worker = PREFETCH * max(1, int(batch_bytes)) * local_processes
        workers = min(workers, max(1, int(0.5 * shm) // per_worker))
    return workers


def loader_options(num_workers: int | str, device: torch.device, batch_bytes: int, *, local_processes: int = 1,
                   persistent: bool = True) -> dict[str, Any]:
    """Keyword arguments for ``torch.utils.data.DataLoader``: workers, ``pin_memory`` on CUDA, prefetch.

    ``persistent``: keep the workers between epochs (training; an extraction's loader is used once).
    """
    workers = resolve_workers(num_workers, device, batch_bytes, local_processes)
    options: dict[str, Any] = {"num_workers": workers, "pin_memory": device.type == "cuda"}
    if workers > 0:
        options.update(persistent_workers=persistent, prefetch_factor=PREFETCH, worker_init_fn=_worker_init)
    return options


def _worker_init(worker_id: int) -> None:
    # Workers only run cheap tensor ops; one intra-op thread each avoids oversubscribing the cores
    # that the model's forward/backward uses.
    torch.set_num_threads(1)
