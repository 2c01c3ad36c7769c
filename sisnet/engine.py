"""Training engine: fit one configuration, evaluate it, checkpoint it, resume it.

>>> from sisnet.config import get_config
>>> history = fit(get_config("smoke", data_root="data/synthetic"))
>>> history.evals_frame()            # one row per (epoch, mode): rank1, rank5, rank10, mAP, mINP (fractions)

Runs cache and files
--------------------
A run lives in ``<runs_dir>/<run_id>/`` (``run_id`` = :meth:`TrainConfig.run_id`): ``last.pt`` (checkpoint,
written atomically after every epoch) and ``history.json`` (written atomically after every epoch;
``"complete": true`` only once the last epoch is done). ``fit`` on a folder holding a complete history of
the same ``run_id`` returns it without training; an incomplete one is resumed from ``last.pt``.

Exact resume
------------
Each epoch's randomness is re-derived from ``(seed, epoch)``: the PK sampler order and every sample's
augmentation (see :mod:`sisnet.data.sampler`, :mod:`sisnet.data.transforms`) and the global torch /
NumPy / Python RNGs, which are re-seeded at the start of every epoch. The checkpoint also stores the
model, optimizer, LR scheduler, AMP grad-scaler, all RNG states and the history so far. So a run killed
at any moment and resumed ends with exactly the same weights and metrics as an uninterrupted run on
CPU (same thread count; ``tests/test_faults.py`` kills a real process to check it).

Checkpoints are read with ``torch.load(weights_only=True)``: only tensors and plain containers; a
checkpoint carrying pickled code is refused. The config is stored as a plain dict.
"""
from __future__ import annotations

import json
import math
import os
import random
import time
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from sisnet.config import TrainConfig, config_from_dict
from sisnet.data.sampler import RandomIdentitySampler
from sisnet.data.transforms import EvalTransform, TwoScaleDataset, TwoScaleTransform, decode_images
from sisnet.utils import atomic_torch_save, atomic_write_json, ensure_writable_dir, select_device

__all__ = [
    "History",
    "fit",
    "load_history",
    "load_model",
    "evaluate",
    "extract_features",
    "build_model",
    "build_train_loader",
    "build_optimizer",
    "train_step",
    "NonFiniteLossError",
    "CheckpointMismatchError",
]

CHECKPOINT_NAME = "last.pt"
HISTORY_NAME = "history.json"
CHECKPOINT_VERSION = 1
EVAL_MODES = ("either", "cascaded")


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; the message names the epoch and step."""


class CheckpointMismatchError(ValueError):
    """A checkpoint or history belongs to a different configuration than the one being run."""


# ---------------------------------------------------------------------------------------------- history
class History(dict):
    """A run's record: a plain JSON-able ``dict`` (schema in the module docstring of the contract) with helpers.

    Keys: ``run_id``, ``config`` (dict), ``weights`` ({source, file, sha256}), ``epochs`` (list of
    {epoch, loss_total, loss_id, loss_triplet, loss_drc, lr, seconds}), ``evals`` (list of {epoch, mode,
    rank1, rank5, rank10, mAP, mINP}; fractions in [0, 1]), ``complete`` (bool), ``wall_seconds``.
    """

    def epochs_frame(self):
        """Per-epoch losses as a ``pandas.DataFrame`` indexed by epoch."""
        import pandas as pd

        return pd.DataFrame(self.get("epochs", [])).set_index("epoch") if self.get("epochs") else pd.DataFrame()

    def evals_frame(self):
        """Evaluations as a long ``pandas.DataFrame`` (one row per epoch and mode)."""
        import pandas as pd

        return pd.DataFrame(self.get("evals", []))

    def final(self, mode: str = "either") -> dict[str, float]:
        """The last evaluation of ``mode``: {rank1, rank5, rank10, mAP, mINP} (fractions)."""
        rows = [e for e in self.get("evals", []) if e["mode"] == mode]
        if not rows:
            raise KeyError(f"history has no evaluation in mode {mode!r}; modes present: "
                           f"{sorted({e['mode'] for e in self.get('evals', [])})}")
        return {k: v for k, v in rows[-1].items() if k not in ("epoch", "mode")}

    def last_mean(self, mode: str = "either", n: int = 5) -> dict[str, float]:
        """Mean of each metric over the last ``n`` evaluations of ``mode`` (the paper's Table 3 statistic)."""
        rows = [e for e in self.get("evals", []) if e["mode"] == mode][-n:]
        if not rows:
            raise KeyError(f"history has no evaluation in mode {mode!r}.")
        keys = [k for k in rows[0] if k not in ("epoch", "mode")]
        return {k: float(np.mean([r[k] for r in rows])) for k in keys}

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


# ---------------------------------------------------------------------------------------------- building blocks
def _resolve_weights(config: TrainConfig) -> tuple[Any, dict[str, Any]]:
    """``config.pretrained`` -> (what SiSNet accepts, {source, file, sha256})."""
    try:
        from sisnet.weights import resolve_pretrained
    except ImportError:  # pragma: no cover - sisnet.weights is part of the package; defensive only
        spec = config.pretrained
        if spec in (False, None):
            return False, {"source": "random", "file": None, "sha256": None}
        if spec == "auto":
            warnings.warn("sisnet.weights is unavailable: training from random weights.", stacklevel=3)
            return False, {"source": "random", "file": None, "sha256": None}
        if spec is True:
            return True, {"source": "timm-hub", "file": None, "sha256": None}
        return Path(spec), {"source": "file", "file": str(spec), "sha256": None}
    pretrained, info = resolve_pretrained(config.pretrained, config.backbone)
    info_dict = {"source": info.source, "file": info.file, "sha256": info.sha256}
    return pretrained, info_dict


def build_model(config: TrainConfig, num_classes: int, pretrained: Any = None):
    """The :class:`sisnet.model.SiSNet` of ``config`` (weights resolved via :mod:`sisnet.weights`).

    ``pretrained`` overrides ``config.pretrained`` with an already-resolved value (False, True or a path).
    The resolved weights record is attached as ``model.weights_info`` ({source, file, sha256}). With
    ``config.channels_last`` the weights are converted to the channels-last memory format
    (:func:`train_step` and evaluation feed channels-last inputs to match).
    """
    from sisnet.model import SiSNet

    if pretrained is None:
        pretrained, info = _resolve_weights(config)
    else:
        info = {"source": "random" if pretrained is False else "given", "file": None, "sha256": None}
    model = SiSNet(config.backbone, num_classes, pretrained=pretrained, last_stride=config.last_stride)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.weights_info = info
    return model


_DECODED: "OrderedDict[tuple, torch.Tensor]" = OrderedDict()
_DECODED_MAX_ENTRIES = 6


def _decoded(paths: Sequence[str], size_hw: tuple[int, int], desc: str) -> torch.Tensor:
    """:func:`decode_images` with a small in-process cache (key: paths, file sizes and mtimes, size).

    The Table 2 grid trains 18 runs on the same images in one process; decoding ~3.7k JPEGs costs a few
    seconds, so it is done once. A changed file (size or mtime) misses the cache.
    """
    stats = []
    for p in paths:
        try:
            st = os.stat(p)
            stats.append((p, st.st_size, st.st_mtime_ns))
        except OSError:
            stats.append((p, -1, -1))
    key = (tuple(stats), tuple(size_hw))
    if key in _DECODED:
        _DECODED.move_to_end(key)
        return _DECODED[key]
    images = decode_images(paths, size_hw, desc=desc)
    _DECODED[key] = images
    while len(_DECODED) > _DECODED_MAX_ENTRIES:
        _DECODED.popitem(last=False)
    return images


def _train_images(config: TrainConfig, dataset) -> torch.Tensor | None:
    if not config.cache_images:
        return None
    return _decoded([r.path for r in dataset.train], (config.img_height, config.img_width), "decode train")


def build_train_loader(config: TrainConfig, dataset, images: torch.Tensor | None = None) -> DataLoader:
    """PK-sampled, two-scale training loader over ``dataset.train``.

    Each batch is ``(img_full (B, 3, H, W), img_small (B, 3, H', W'), pids (B,), camids (B,))`` with
    ``B = P*K``; call ``loader.sampler.set_epoch(epoch)`` before each epoch. With ``cache_images`` the
    training images are decoded once up front (all bad files reported together).
    """
    if images is None:
        images = _train_images(config, dataset)
    ds = TwoScaleDataset(dataset.train, TwoScaleTransform(config), images=images)
    sampler = RandomIdentitySampler(
        [r.pid for r in dataset.train], config.P, config.K, seed=config.seed,
        steps_per_epoch=config.steps_per_epoch, with_sample_seeds=True,
    )
    cuda = select_device(config.device).type == "cuda"
    kwargs: dict[str, Any] = {}
    if config.num_workers > 0:
        kwargs.update(persistent_workers=True, prefetch_factor=4, worker_init_fn=_worker_init)
    return DataLoader(
        ds, batch_size=config.batch_size, sampler=sampler, drop_last=True,
        num_workers=config.num_workers, pin_memory=cuda, **kwargs,
    )


def _worker_init(worker_id: int) -> None:
    # Workers only run cheap tensor ops; one intra-op thread each avoids oversubscribing the cores
    # that the model's forward/backward uses.
    torch.set_num_threads(1)


def _lr_factor(config: TrainConfig, epoch_index: int) -> float:
    """LR multiplier for 0-based ``epoch_index``: linear warm-up from ``warmup_factor``, then steps."""
    if epoch_index < config.warmup_epochs:
        alpha = epoch_index / config.warmup_epochs
        return config.warmup_factor * (1 - alpha) + alpha
    return config.gamma ** sum(1 for m in config.milestones if epoch_index >= m)


def build_optimizer(config: TrainConfig, model: torch.nn.Module):
    """Adam (lr, weight decay from ``config``) and a per-epoch ``LambdaLR`` (warm-up + multi-step).

    Epoch e (1-based) trains with ``lr * factor(e-1)``: warm-up linear from ``lr * warmup_factor`` over
    ``warmup_epochs`` epochs, then x``gamma`` at each milestone (Bag-of-Tricks' WarmupMultiStepLR).
    Call ``scheduler.step()`` once after each epoch.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: _lr_factor(config, e))
    return optimizer, scheduler


def _amp_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    if device.type != "cuda" or config.amp == "off":
        return None
    if config.amp == "fp16":
        return torch.float16
    if config.amp == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def _compute_losses(model, out_full, out_small, targets, config: TrainConfig) -> dict[str, torch.Tensor]:
    """The Table-2 loss of ``config`` (see :func:`sisnet.losses.compute_losses`)."""
    from sisnet.losses import CrossEntropyLabelSmooth, DRCLoss, TripletLoss, compute_losses

    return compute_losses(
        model, out_full, out_small, targets,
        siamese=config.siamese, drc=config.drc, triplet=config.triplet,
        id_loss=CrossEntropyLabelSmooth(model.num_classes, epsilon=config.label_smoothing),
        triplet_loss=TripletLoss(config.triplet_margin) if config.triplet else None,
        drc_loss=DRCLoss(weight=config.drc_weight, distance=config.drc_distance,
                         normalization=config.cam_normalization, detach_classifier=config.detach_classifier)
        if config.drc else None,
        branch_reduction=config.branch_reduction,
    )


def train_step(model, optimizer, batch, config: TrainConfig, scaler=None) -> dict[str, float]:
    """One forward / backward / optimiser step on ``batch = (img_full, img_small, pids, camids)``.

    Returns the losses as floats (keys ``total``, ``id``, ``triplet``, ``drc``). Does not check finiteness
    (``fit`` does, to name the epoch and step). ``scaler``: a ``torch.amp.GradScaler`` for fp16 AMP.
    """
    device = next(model.parameters()).device
    img_full, img_small, pids = batch[0], batch[1], batch[2]
    non_blocking = device.type == "cuda"
    fmt = torch.channels_last if config.channels_last else torch.contiguous_format
    img_full = img_full.to(device, non_blocking=non_blocking, memory_format=fmt)
    targets = pids.to(device, non_blocking=non_blocking)
    amp_dtype = _amp_dtype(config, device)
    model.train()
    with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        if config.siamese:
            img_small = img_small.to(device, non_blocking=non_blocking, memory_format=fmt)
            out_full, out_small = model.forward_pair(img_full, img_small)
        else:
            out_full, out_small = model(img_full), None
        losses = _compute_losses(model, out_full, out_small, targets, config)
    optimizer.zero_grad(set_to_none=True)
    total = losses["total"]
    if scaler is not None and scaler.is_enabled():
        scaler.scale(total).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        total.backward()
        optimizer.step()
    return {k: float(v.detach()) if torch.is_tensor(v) else float(v) for k, v in losses.items()}


# ---------------------------------------------------------------------------------------------- evaluation
@torch.no_grad()
def _extract_modes(
    model, records: Sequence[Any], config: TrainConfig, modes: Iterable[str], query_scale: float = 1.0,
    images: torch.Tensor | None = None, progress: bool = False, desc: str = "features",
) -> tuple[dict[str, torch.Tensor], np.ndarray, np.ndarray]:
    """Features for several modes in ONE pass (the full branch is computed once and shared)."""
    modes = tuple(modes)
    bad = [m for m in modes if m not in EVAL_MODES]
    if bad:
        raise ValueError(f"mode(s) {bad} not valid; choose from {list(EVAL_MODES)}.")
    device = next(model.parameters()).device
    if images is None and config.cache_images:
        images = _decoded([r.path for r in records], (config.img_height, config.img_width), f"decode {desc}")
    ds = TwoScaleDataset(records, EvalTransform(config, query_scale=query_scale), images=images)
    loader = DataLoader(ds, batch_size=config.eval_batch_size, shuffle=False, num_workers=0,
                        pin_memory=device.type == "cuda")
    amp_dtype = _amp_dtype(config, device)
    fmt = torch.channels_last if config.channels_last else torch.contiguous_format
    was_training = model.training
    model.eval()
    feats: dict[str, list[torch.Tensor]] = {m: [] for m in modes}
    pids, camids = [], []
    it: Any = loader
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(loader, desc=desc, leave=False, unit="batch")
    try:
        for full, small, pid, camid in it:
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                f_full = model(full.to(device, memory_format=fmt)).bn_feature.float()
                f_small = (
                    model(small.to(device, memory_format=fmt)).bn_feature.float() if "cascaded" in modes else None
                )
            # Same definitions as SiSNet.extract: "either" = L2(bn(x)); "cascaded" = L2(cat(bn(x), bn(x_small))).
            if "either" in modes:
                feats["either"].append(F.normalize(f_full, dim=1).cpu())
            if "cascaded" in modes:
                feats["cascaded"].append(F.normalize(torch.cat([f_full, f_small], 1), dim=1).cpu())
            pids.append(pid)
            camids.append(camid)
    finally:
        model.train(was_training)
    out = {m: torch.cat(v) if v else torch.empty(0) for m, v in feats.items()}
    return out, torch.cat(pids).numpy(), torch.cat(camids).numpy()


def extract_features(
    model, records: Sequence[Any], config: TrainConfig, mode: str = "either", query_scale: float = 1.0,
    images: torch.Tensor | None = None, progress: bool = False,
) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """L2-normalised retrieval features of ``records``: ``(feats (N, D), pids (N,), camids (N,))``.

    ``mode="either"``: BNNeck feature of the full-size image, D = C. ``mode="cascaded"``: concatenation
    with the small-scale view's feature, D = 2C. ``query_scale < 1`` first degrades each image (down to
    ``query_scale`` x its size, back up to the model input size): the cross-scale protocol.
    """
    feats, pids, camids = _extract_modes(model, records, config, (mode,), query_scale, images, progress)
    return feats[mode], pids, camids


def _metrics_from_features(qf, gf, q_pids, g_pids, q_camids, g_camids, config: TrainConfig, rerank: bool):
    from sisnet.metrics import compute_distance, evaluate_rank

    if rerank:
        from sisnet.metrics import re_ranking

        distmat = re_ranking(qf, gf)
    else:
        distmat = compute_distance(qf, gf, metric=config.metric)
    res = evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=max(1, min(50, len(g_pids))))
    cmc = np.asarray(res["cmc"])

    def rank(k: int) -> float:
        return float(cmc[min(k, len(cmc)) - 1]) if len(cmc) else float("nan")

    return {
        "rank1": rank(1), "rank5": rank(5), "rank10": rank(10),
        "mAP": float(res["mAP"]), "mINP": float(res["mINP"]),
        "num_valid_queries": int(res.get("num_valid_queries", len(q_pids))),
    }


def evaluate(
    model, dataset, config: TrainConfig, modes: Sequence[str] = EVAL_MODES, query_scale: float = 1.0,
    rerank: bool | None = None, progress: bool = False, image_cache: dict[str, torch.Tensor] | None = None,
) -> dict[str, dict[str, float]]:
    """Rank-1/5/10, mAP and mINP (fractions) of ``model`` on ``dataset.query`` vs ``dataset.gallery``.

    Returns ``{mode: {"rank1", "rank5", "rank10", "mAP", "mINP", "num_valid_queries"}}``. ``query_scale``
    degrades the queries only (gallery at full resolution): the cross-scale protocol. ``rerank``
    (default ``config.rerank``) uses k-reciprocal re-ranking instead of plain ``config.metric`` distances.
    ``image_cache``: optional dict that keeps the decoded ``query``/``gallery`` images between calls.
    """
    rerank = config.rerank if rerank is None else rerank
    cache = image_cache if image_cache is not None else {}
    if config.cache_images:
        for split in ("query", "gallery"):
            if split not in cache:
                cache[split] = _decoded(
                    [r.path for r in getattr(dataset, split)], (config.img_height, config.img_width), f"decode {split}"
                )
    qf, q_pids, q_camids = _extract_modes(model, dataset.query, config, modes, query_scale, cache.get("query"),
                                          progress, "query features")
    gf, g_pids, g_camids = _extract_modes(model, dataset.gallery, config, modes, 1.0, cache.get("gallery"),
                                          progress, "gallery features")
    return {m: _metrics_from_features(qf[m], gf[m], q_pids, g_pids, q_camids, g_camids, config, rerank) for m in modes}


# ---------------------------------------------------------------------------------------------- checkpoints
def _rng_state() -> dict[str, Any]:
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


def _set_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _load_checkpoint(path: Path) -> dict[str, Any]:
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
    from sisnet.model import SiSNet

    path = Path(checkpoint_path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint at {str(path)!r}; train with sisnet.engine.fit(config) first.")
    ckpt = _load_checkpoint(path)
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        raise ValueError(f"{str(path)!r} is not a sisnet checkpoint (no 'model'/'config' entries).")
    config = config_from_dict(ckpt["config"])
    model = SiSNet(config.backbone, int(ckpt["num_classes"]), pretrained=False, last_stride=config.last_stride)
    model.load_state_dict(ckpt["model"])
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.weights_info = ckpt.get("weights", {"source": "checkpoint"})
    return model.to(select_device(device)).eval(), config


# ---------------------------------------------------------------------------------------------- fit
def _reseed(seed: int, epoch: int) -> None:
    """Derive every global RNG from (seed, epoch): makes each epoch independent of earlier history."""
    s = int(np.random.default_rng([seed, epoch, 2]).integers(0, 2**31 - 1))
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)  # also seeds CUDA


def _history_matches(history: dict, run_id: str, run_dir: Path) -> None:
    if history.get("run_id") != run_id:
        raise CheckpointMismatchError(
            f"{str(run_dir)!r} holds a run of a different configuration (run_id {history.get('run_id')!r}, this "
            f"config has run_id {run_id!r}). Use another run_dir (the default <runs_dir>/<run_id> never clashes) "
            "or delete that folder."
        )


def fit(config: TrainConfig, run_dir: str | Path | None = None, resume: bool = True, progress: bool = True,
        dataset=None) -> History:
    """Train ``config`` (or return its cached result) and return its :class:`History`.

    Args:
        config: a :class:`~sisnet.config.TrainConfig` (``get_config(...)``).
        run_dir: where ``last.pt`` and ``history.json`` go; default ``<config.runs_dir>/<config.run_id()>``.
        resume: continue from ``run_dir/last.pt`` when present (otherwise start over, replacing it).
        progress: tqdm bars for epochs and feature extraction.
        dataset: an already-loaded :class:`sisnet.data.ReIDDataset` (default: ``load_dataset(config.dataset,
            config.data_root)``).

    Raises:
        CheckpointMismatchError: ``run_dir`` holds a checkpoint/history of another configuration.
        NonFiniteLossError: the loss became NaN/inf (message names epoch and step).
        PermissionError: ``run_dir`` is not writable (checked before any work).
        sisnet.data.transforms.BadImageError: corrupt / truncated / non-image files (all listed).
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"fit() needs a TrainConfig (sisnet.config.get_config(...)), got {type(config).__name__}.")
    config.validate()
    run_id = config.run_id()
    run_dir = Path(run_dir) if run_dir is not None else Path(config.runs_dir) / run_id
    ensure_writable_dir(run_dir, "runs folder")
    history_path, ckpt_path = run_dir / HISTORY_NAME, run_dir / CHECKPOINT_NAME

    if history_path.is_file():
        try:
            cached = load_history(run_dir)
        except ValueError:
            cached = None  # unreadable history: the checkpoint (if any) is the authority
        if cached is not None:
            _history_matches(cached, run_id, run_dir)
            if cached.complete and resume:
                return cached

    t_start = time.perf_counter()
    from sisnet.data import load_dataset

    if dataset is None:
        dataset = load_dataset(config.dataset, config.data_root, combine_val=config.combine_val)
    num_classes = dataset.num_train_pids
    device = select_device(config.device)

    ckpt = None
    if resume and ckpt_path.is_file():
        ckpt = _load_checkpoint(ckpt_path)
        if ckpt.get("run_id") != run_id:
            raise CheckpointMismatchError(
                f"Checkpoint {str(ckpt_path)!r} was written by a different configuration (run_id "
                f"{ckpt.get('run_id')!r}; this config has run_id {run_id!r}). Resume it with its own config "
                f"(sisnet.engine.load_model shows it), use another run_dir, or pass resume=False to start over."
            )

    torch.manual_seed(config.seed)
    if ckpt is not None:
        weights_info = ckpt.get("weights", {"source": "checkpoint"})
        model = build_model(config, num_classes, pretrained=False)
    else:
        model = build_model(config, num_classes)
        weights_info = model.weights_info
    model = model.to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer, scheduler = build_optimizer(config, model)
    amp_dtype = _amp_dtype(config, device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)

    history = History(run_id=run_id, config=config.to_dict(), weights=weights_info, epochs=[], evals=[],
                      complete=False, wall_seconds=0.0)
    start_epoch = 1
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        _set_rng_state(ckpt["rng"])
        history = History(json.loads(ckpt["history"]))
        start_epoch = int(ckpt["epoch"]) + 1

    train_images = _train_images(config, dataset)
    loader = build_train_loader(config, dataset, images=train_images)
    eval_cache: dict[str, torch.Tensor] = {}
    eval_epochs = set(config.eval_epochs())
    wall_before = float(history.get("wall_seconds", 0.0))

    epoch_iter: Any = range(start_epoch, config.epochs + 1)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(epoch_iter, desc=f"fit {run_id}", unit="epoch", initial=start_epoch - 1, total=config.epochs)
        epoch_iter = bar
    for epoch in epoch_iter:
        t_epoch = time.perf_counter()
        _reseed(config.seed, epoch)
        loader.sampler.set_epoch(epoch)
        sums: dict[str, float] = {}
        steps = 0
        lr = optimizer.param_groups[0]["lr"]
        for step, batch in enumerate(loader, start=1):
            losses = train_step(model, optimizer, batch, config, scaler)
            if not math.isfinite(losses["total"]):
                raise NonFiniteLossError(
                    f"Non-finite loss {losses} at epoch {epoch} step {step} (of {len(loader)}) of run {run_id}. "
                    f"Lower lr (now {lr:g}), set amp='off', or check the input data; the last good checkpoint "
                    f"is {str(ckpt_path)!r} (epoch {epoch - 1})."
                )
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + v
            steps += 1
        scheduler.step()
        row = {"epoch": epoch, **{f"loss_{k}": sums.get(k, 0.0) / max(steps, 1) for k in ("total", "id", "triplet", "drc")},
               "lr": lr, "seconds": time.perf_counter() - t_epoch}
        history["epochs"].append(row)
        if epoch in eval_epochs:
            t_eval = time.perf_counter()
            res = evaluate(model, dataset, config, modes=EVAL_MODES, progress=False, image_cache=eval_cache)
            for mode, m in res.items():
                history["evals"].append({"epoch": epoch, "mode": mode, **{k: m[k] for k in ("rank1", "rank5", "rank10", "mAP", "mINP")}})
            row["eval_seconds"] = time.perf_counter() - t_eval
        if bar is not None:
            last = history["evals"][-2] if epoch in eval_epochs else None
            bar.set_postfix(loss=f"{row['loss_total']:.3f}", **({"r1": f"{last['rank1']:.3f}"} if last else {}))
        history["wall_seconds"] = wall_before + (time.perf_counter() - t_start)
        history["complete"] = epoch == config.epochs
        _save(ckpt_path, history_path, model, optimizer, scheduler, scaler, epoch, history, config, num_classes)
    if bar is not None:
        bar.close()
    if not history.get("complete"):  # nothing left to train (e.g. resumed after the last epoch)
        history["complete"] = True
        atomic_write_json(history_path, history)
    return history


def _save(ckpt_path, history_path, model, optimizer, scheduler, scaler, epoch, history, config, num_classes) -> None:
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
        "rng": _rng_state(),
        "weights": history.get("weights"),
        "history": json.dumps(history),
    }
    atomic_torch_save(state, ckpt_path)
    atomic_write_json(history_path, history)
