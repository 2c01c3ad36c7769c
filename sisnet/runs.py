"""A run on disk: its key, its history, its checkpoint (save / load, RNG state) and the trained model it holds.

A run lives in ``<runs_dir>/<run_id>/`` with ``run_id`` = :func:`run_key` (the config's result fields, the
effective precision and the dataset's fingerprint): ``last.pt`` (checkpoint, written atomically after every
epoch) and ``history.json`` (written atomically after every epoch; ``"complete": true`` only once the last
epoch is done). :func:`sisnet.engine.fit` writes both; everything that reads them is here.

Checkpoints are read with ``torch.load(weights_only=True)``: only tensors and plain containers; a
checkpoint carrying pickled code is refused. The config is stored as a plain dict.
"""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sisnet.config import config_from_dict
from sisnet.utils import atomic_torch_save, atomic_write_json, precision_name, select_device

__all__ = ["History", "NoEvaluationError", "load_history", "load_model", "load_checkpoint", "save_checkpoint",
           "run_key", "training_dataset", "CHECKPOINT_NAME", "HISTORY_NAME", "CHECKPOINT_VERSION"]

CHECKPOINT_NAME = "last.pt"
HISTORY_NAME = "history.json"
CHECKPOINT_VERSION = 1
_METRICS = ("rank1", "rank5", "rank10", "mAP", "mINP")


def training_dataset(config, dataset=None):
    """The dataset ``config`` trains and evaluates on: ``dataset`` (default: ``config.dataset`` loaded from
    ``config.dataset_dir``), or its validation split (:meth:`sisnet.data.ReIDDataset.validation_split`,
    ``config.val_ids`` identities) when ``config.split == "val"``. The one place that decides it (run keys, fit)."""
    if dataset is None:
        from sisnet.data import load_dataset

        dataset = load_dataset(config.dataset, config.dataset_dir, combine_val=config.combine_val)
    if getattr(config, "split", "test") == "val" and not dataset.variant:
        dataset = dataset.validation_split(config.val_ids)
    return dataset


def run_key(config, dataset=None, device: str | torch.device | None = None, world_size: int = 1) -> str:
    """The runs-cache key of training ``config`` on ``dataset`` on ``device``: the one function that names a run.

    :meth:`sisnet.config.TrainConfig.run_id` of the config with the effective precision of ``config.amp`` on the
    device (:func:`sisnet.utils.precision_name`: fp32 on CPU for ``amp="auto"``, bf16 or fp16 on CUDA) and the
    dataset's :meth:`~sisnet.data.ReIDDataset.fingerprint`; a ``world_size`` > 1 run without ``config.sync_bn``
    normalises per process and is keyed apart (``bn_group``). ``device`` defaults to ``config.device`` (``"auto"`` =
    CUDA when available); ``dataset`` to ``load_dataset(config.dataset, config.dataset_dir)``. :func:`sisnet.engine.fit`
    writes a run to ``<config.runs_dir>/<run_key>/`` and the notebooks look it up there.
    """
    dataset = training_dataset(config, dataset)
    dev = select_device(config.device if device is None else device)
    bn_group = int(world_size) if int(world_size) > 1 and not getattr(config, "sync_bn", False) else 1
    return config.run_id(precision=precision_name(config.amp, dev), data_fingerprint=dataset.fingerprint(),
                         bn_group=bn_group)


class NoEvaluationError(KeyError, ValueError):
    """The history has no evaluation of the requested mode (a ``KeyError`` and a ``ValueError``)."""

    def __str__(self) -> str:  # KeyError would print the message with quotes
        return str(self.args[0]) if self.args else ""


class History(dict):
    """A run's record: a plain JSON-able ``dict`` with the one set of readers every table uses.

    Keys: ``run_id`` (:func:`run_key`), ``config`` (dict), ``weights`` ({source, file, sha256}: the initial
    weights), ``precision`` (fp32 / bf16 / fp16), ``devices`` (the device types it trained on, in order: a run
    resumed on another machine lists both), ``data_fingerprint``, ``epochs`` (list of {epoch, loss_total,
    loss_id, loss_triplet, loss_drc, lr, seconds}), ``evals`` (list of {epoch, mode, rank1, rank5, rank10, mAP,
    mINP}; fractions in [0, 1]), ``complete`` (bool), ``wall_seconds``.
    """

    @classmethod
    def of(cls, history: Any) -> "History":
        """``history`` as a :class:`History` (``ValueError`` when it is not a training history)."""
        if isinstance(history, History):
            return history
        if not isinstance(history, dict) or "evals" not in history:
            raise ValueError(
                "Expected a training history (a dict with 'epochs' and 'evals', as returned by sisnet.engine.fit "
                f"or sisnet.runs.load_history); got {type(history).__name__}."
            )
        return cls(history)

    def epochs_frame(self):
        """Per-epoch records (losses, lr, seconds) as a ``pandas.DataFrame``, one row per epoch."""
        import pandas as pd

        return pd.DataFrame(list(self.get("epochs", [])))

    def evals_frame(self, *, percent: bool = False):
        """Evaluations as a long ``pandas.DataFrame``: one row per (epoch, mode), sorted by epoch then mode.

        Columns ``epoch``, ``mode`` and every metric present (fractions, or percent with ``percent=True``).
        """
        import pandas as pd

        evals = list(self.get("evals", []))
        if not evals:
            return pd.DataFrame(columns=["epoch", "mode", "rank1", "mAP"])
        df = pd.DataFrame(evals)
        metrics = [c for c in _METRICS if c in df.columns]
        if percent:
            df[metrics] = df[metrics].astype(float) * 100.0
        return df.sort_values(["epoch", "mode"], kind="stable").reset_index(drop=True)

    def last_eval(self, mode: str = "either", *, percent: bool = False) -> dict[str, float]:
        """The last evaluation of ``mode`` (``either`` | ``cascaded``): ``epoch`` and the metrics.

        Raises :class:`NoEvaluationError` when the history has no evaluation of that mode (e.g. a run trained
        with periodic evaluation switched off), naming the modes it does have.
        """
        df = self.evals_frame(percent=percent)
        sub = df[df["mode"] == mode] if len(df) else df
        if not len(sub):
            have = sorted(df["mode"].unique()) if len(df) else []
            raise NoEvaluationError(
                f"History {self.get('run_id', '?')} has no evaluation in mode {mode!r} (it has {have}). "
                "Train with evaluation enabled (eval_last >= 1) or evaluate the checkpoint with sisnet.evaluation.evaluate."
            )
        row = sub.iloc[-1]
        return {k: float(row[k]) for k in sub.columns if k != "mode"}

    def final(self, mode: str = "either") -> dict[str, float]:
        """The last evaluation of ``mode``: {rank1, rank5, rank10, mAP, mINP} (fractions)."""
        return {k: v for k, v in self.last_eval(mode).items() if k != "epoch"}

    def last_mean(self, mode: str = "either", n: int = 5) -> dict[str, float]:
        """Mean of each metric over the last ``n`` evaluations of ``mode`` (fractions)."""
        df = self.evals_frame()
        sub = df[df["mode"] == mode].tail(n) if len(df) else df
        if not len(sub):
            raise NoEvaluationError(f"history has no evaluation in mode {mode!r}.")
        return {k: float(sub[k].mean()) for k in sub.columns if k in _METRICS}

    @property
    def complete(self) -> bool:
        return bool(self.get("complete", False))


def load_history(run_dir: str | Path) -> History:
    """Read ``<run_dir>/history.json`` (or the file itself when given a ``.json`` path)."""
    path = Path(run_dir)
    if path.is_dir() or path.suffix != ".json":
        path = path / HISTORY_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"No training history at {str(path)!r}. Run sisnet.engine.fit(config) first "
            "(the history of a run is written to <runs_dir>/<run_id>/history.json)."
        )
    with open(path, encoding="utf-8") as fh:
        try:
            return History(json.load(fh))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{str(path)!r} is not valid JSON ({exc}); delete it and re-run fit().") from exc


# ---------------------------------------------------------------------------------------------- checkpoints
def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state = {
        "python": _to_plain(random.getstate()),
        "numpy": {"name": np_state[0], "keys": torch.from_numpy(np_state[1].astype(np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _to_plain(x: Any) -> Any:
    if isinstance(x, tuple):
        return [_to_plain(v) for v in x]
    return x


def set_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_checkpoint(path: Path) -> dict[str, Any]:
    """``torch.load(weights_only=True)``: tensors and plain containers only; pickled code is refused."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # the unpickler raises UnpicklingError / RuntimeError variants
        raise ValueError(
            f"Refusing to load checkpoint {str(path)!r}: it is not a plain weights file readable with "
            f"torch.load(weights_only=True) ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). "
            "It may be corrupt, from another program, or carry pickled code. Delete it to start the run afresh."
        ) from exc


def load_model(checkpoint_path: str | Path, device: str | torch.device = "cpu"):
    """Rebuild the trained model from a checkpoint written by :func:`fit`.

    Returns ``(model, config)`` with the model in eval mode on ``device``. Accepts the checkpoint file
    or its run folder.
    """
    from sisnet.model import build_model  # (lazy: timm is loaded only when a model is built)

    path = Path(checkpoint_path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint at {str(path)!r}; train with sisnet.engine.fit(config) first.")
    ckpt = load_checkpoint(path)
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        raise ValueError(f"{str(path)!r} is not a sisnet checkpoint (no 'model'/'config' entries).")
    config = config_from_dict(ckpt["config"])
    # the architecture as training built it (output stride included: the weights fit any stride, so a model
    # rebuilt another way would load without error and compute something else)
    model = build_model(config, int(ckpt["num_classes"]), pretrained=False)
    model.load_state_dict(ckpt["model"])
    model.weights_info = ckpt.get("weights", {"source": "checkpoint"})
    return model.to(select_device(device)).eval(), config



def save_checkpoint(ckpt_path, history_path, model, optimizer, scheduler, scaler, epoch, history, config, num_classes) -> None:
    """Checkpoint first, then history: a kill in between leaves a checkpoint one epoch ahead, never behind."""
    state = {
        "version": CHECKPOINT_VERSION,
        "run_id": history["run_id"],
        "config": config.to_dict(),
        "num_classes": int(num_classes),
        "epoch": int(epoch),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "rng": rng_state(),
        "weights": history.get("weights"),
        "precision": history.get("precision"),
        "devices": list(history.get("devices") or []),
        "data_fingerprint": history.get("data_fingerprint"),
        "history": json.dumps(history),
    }
    atomic_torch_save(state, ckpt_path)
    atomic_write_json(history_path, history)
