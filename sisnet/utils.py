"""Small shared helpers: atomic file writes, device selection, the AMP precision, seeding.

Kept here (not in the modules that use them) so there is one implementation of each.
"""
from __future__ import annotations

import contextlib
import json
import os
import random
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator

import numpy as np
import torch

__all__ = [
    "atomic_write",
    "atomic_write_json",
    "atomic_torch_save",
    "ensure_writable_dir",
    "select_device",
    "autocast_dtype",
    "precision_name",
    "PRECISIONS",
    "seed_everything",
]

#: The arithmetic precisions a run may train in: no autocast, bf16 autocast, fp16 autocast + GradScaler.
PRECISIONS = ("fp32", "bf16", "fp16")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **open_kwargs: Any) -> Iterator[IO]:
    """Open a temporary file beside ``path``; rename it onto ``path`` only if the block succeeds.

    A kill at any moment leaves either the old file or the new complete file, never a
    truncated one. The temporary name starts with ``.`` and ends with ``.tmp`` so that
    globs for real outputs never match it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    # mkstemp creates 0600; give the final file the permissions a plain open() would (0666 & ~umask).
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        with os.fdopen(fd, mode, **open_kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_json(path: str | os.PathLike, obj: Any, **dump_kwargs: Any) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (see :func:`atomic_write`)."""
    dump_kwargs.setdefault("indent", 2)
    with atomic_write(path, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, **dump_kwargs)


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path, "wb") as fh:
        torch.save(obj, fh)


def ensure_writable_dir(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Create ``path`` if needed and check that files can be written in it.

    Raises ``PermissionError`` naming the folder and the fix, before any work is done.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-probe.", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise PermissionError(
            f"The {what} {str(path)!r} is not writable ({exc.strerror or exc}). "
            f"Choose another folder (for example a results_dir/output_dir you own) or fix its permissions."
        ) from exc
    return path


def select_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` picks CUDA when available, else CPU; anything else is passed to ``torch.device``."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device={device!r} was asked for but CUDA is not available; use device='auto' or 'cpu'.")
    return dev


def autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of an ``amp`` mode (``auto`` | ``off`` | ``bf16`` | ``fp16``) on ``device``; None = fp32.

    The one decision of the precision a run trains and evaluates in. ``auto`` = bf16 on CUDA when supported
    (else fp16 with a GradScaler), fp32 elsewhere. ``bf16`` and ``fp16`` are honoured on CUDA and on CPU
    (CPU autocast; fp16 there is slow and meant for tests of the GradScaler path); on other devices (e.g.
    ``mps``) every mode is fp32.
    """
    if amp == "off" or device.type not in ("cuda", "cpu"):
        return None
    if amp == "fp16":
        return torch.float16
    if amp == "bf16":
        return torch.bfloat16
    if device.type != "cuda":  # "auto" on CPU
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def precision_name(amp: str, device: torch.device) -> str:
    """The effective precision of ``amp`` on ``device``, one of :data:`PRECISIONS` (part of a run's key)."""
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[autocast_dtype(amp, device)]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) RNGs."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
