"""Training engine: fit one configuration, evaluate it, checkpoint it, resume it.

>>> from sisnet.config import get_config
>>> history = fit(get_config("smoke", dataset_dir="data/synthetic-tiny"))
>>> history.evals_frame()            # one row per (epoch, mode): rank1, rank5, rank10, mAP, mINP (fractions)

Runs cache and files
--------------------
A run lives in ``<runs_dir>/<run_id>/`` (``run_id`` = :func:`sisnet.runs.run_key`: the config's result fields,
the effective precision and the dataset's fingerprint): ``last.pt`` (checkpoint, written atomically after
every epoch) and ``history.json`` (written atomically after every epoch; ``"complete": true`` only once the
last epoch is done). ``fit`` on a folder holding a complete history of the same ``run_id`` returns it without
training; an incomplete one is resumed from ``last.pt``.

Devices and precision
---------------------
A checkpoint resumes on another device (CPU <-> CUDA): tensors are read onto the CPU and copied into the
model, and the optimizer state follows the parameters' device. It never resumes in another precision: the
precision is part of the run id, and a checkpoint or history of another precision (or other data) in an
explicit ``run_dir`` is refused with :class:`CheckpointMismatchError` saying which, before anything is loaded
(an fp16 GradScaler fed the empty state of an fp32 run used to crash). The history lists the devices a run
trained on.

Exact resume
------------
Each epoch's randomness is re-derived from ``(seed, epoch)``: the PK sampler order and every sample's
augmentation (see :mod:`sisnet.data.sampler`, :mod:`sisnet.data.transforms`) and the global torch /
NumPy / Python RNGs, which are re-seeded at the start of every epoch. The checkpoint also stores the
model, optimizer, LR scheduler, AMP grad-scaler, all RNG states and the history so far. So a run killed
at any moment and resumed ends with exactly the same weights and metrics as an uninterrupted run on
CPU (same thread count; ``tests/test_faults.py`` kills a real process to check it).

Device-fed steps
----------------
Batches leave the loader as ``uint8`` images plus each sample's erasing box (drawn on the CPU from its sample
seed); :func:`train_step` finishes them on the model's device (normalisation, erasing, the second view) and
returns its losses as device tensors: no host synchronisation inside a step. :func:`fit` reads the losses
every ``_CHECK_EVERY`` steps and at the end of each epoch (one synchronisation), checks them for NaN/inf there
and names the first bad step. On CUDA it sets ``cudnn.benchmark`` (the training input sizes are fixed).

Several processes
-----------------
Under ``torchrun`` (``python -m sisnet.train``, :mod:`sisnet.distributed`) each process loads ``P / N`` whole
identities of every global batch, the model is wrapped in DistributedDataParallel (with SyncBatchNorm when
``config.sync_bn``), and only the main process evaluates and writes the checkpoint and the history; the others
wait for it. A resumed run loads the checkpoint in every process.

Histories, checkpoints and loading a trained model live in :mod:`sisnet.runs`; building the network in
:func:`sisnet.model.build_model`; feature extraction and evaluation in :mod:`sisnet.evaluation`.
"""
from __future__ import annotations

import functools
import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from sisnet import distributed
from sisnet.config import TrainConfig
from sisnet.data.loader import loader_options
from sisnet.data.sampler import RandomIdentitySampler
from sisnet.data.transforms import (TwoScaleDataset, TwoScaleTransform, ViewSpec, decode_images_cached,
                                    low_resolution_augment)
from sisnet.evaluation import EVAL_MODES, evaluate
from sisnet.losses import CrossEntropyLabelSmooth, DRCLoss, GatheredTripletLoss, TripletLoss, compute_losses
from sisnet.model import build_model
from sisnet.runs import (
    CHECKPOINT_NAME,
    HISTORY_NAME,
    History,
    load_checkpoint,
    load_history,
    run_key,
    save_checkpoint,
    set_rng_state,
    training_dataset,
)
from sisnet.utils import atomic_write_json, autocast_dtype, ensure_writable_dir, precision_name, select_device

__all__ = [
    "fit",
    "build_train_loader",
    "build_optimizer",
    "config_losses",
    "device_views",
    "train_step",
    "recalibrate_bn",
    "TrainForward",
    "NonFiniteLossError",
    "CheckpointMismatchError",
]


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; the message names the epoch and step."""


class CheckpointMismatchError(ValueError):
    """A checkpoint or history belongs to a different configuration than the one being run."""


# ---------------------------------------------------------------------------------------------- building blocks
def _train_images(config: TrainConfig, dataset) -> torch.Tensor | None:
    if not config.cache_images:
        return None
    return decode_images_cached([r.path for r in dataset.train], (config.img_height, config.img_width), "decode train")


def build_train_loader(config: TrainConfig, dataset, images: torch.Tensor | None = None, *,
                       world: distributed.World | None = None) -> DataLoader:
    """PK-sampled, two-scale training loader over ``dataset.train`` (device-fed: the batches are ``uint8``).

    Each batch is ``(images uint8 (b, 3, H, W), erasing boxes (b, 4), pids (b,), camids (b,))`` with ``b = P*K``
    (``P*K / N`` in each of N processes, ``world``: default :func:`sisnet.distributed.current`);
    :func:`train_step` finishes it on the device. Call ``loader.sampler.set_epoch(epoch)`` before each epoch.
    With ``cache_images`` the training images are decoded once up front (all bad files reported together).
    Workers, pinning and prefetch: :func:`sisnet.data.loader.loader_options` (``config.num_workers``).
    """
    world = world if world is not None else distributed.current()
    if images is None:
        images = _train_images(config, dataset)
    ds = TwoScaleDataset(dataset.train, _train_transform(config.view_spec()), images=images, raw=True)
    sampler = RandomIdentitySampler(
        [r.pid for r in dataset.train], config.P, config.K, seed=config.seed,
        steps_per_epoch=config.steps_per_epoch, with_sample_seeds=True, rank=world.rank, num_replicas=world.size,
    )
    batch_bytes = sampler.local_batch_size * 3 * config.img_height * config.img_width
    options = loader_options(config.num_workers, select_device(config.device), batch_bytes,
                             local_processes=world.local_size)
    return DataLoader(ds, batch_size=sampler.local_batch_size, sampler=sampler, drop_last=True, **options)


@functools.lru_cache(maxsize=8)
def _train_transform(spec: ViewSpec) -> TwoScaleTransform:
    return TwoScaleTransform(spec)


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


def config_losses(model, out_full, out_small, targets, config: TrainConfig,
                  gather: bool = False) -> dict[str, torch.Tensor]:
    """The Table-2 loss of ``config``: :func:`sisnet.losses.compute_losses` with the loss modules ``config`` names.

    ``gather``: mine triplets over every process's batch (:class:`sisnet.losses.GatheredTripletLoss`).
    """
    triplet_cls = GatheredTripletLoss if gather else TripletLoss
    return compute_losses(
        model, out_full, out_small, targets,
        siamese=config.siamese, drc=config.drc, triplet=config.triplet,
        id_loss=CrossEntropyLabelSmooth(model.num_classes, epsilon=config.label_smoothing),
        triplet_loss=triplet_cls(config.triplet_margin, normalize_feature=config.triplet_normalize)
        if config.triplet else None,
        drc_loss=DRCLoss(weight=config.drc_weight, distance=config.drc_distance,
                         normalization=config.cam_normalization, detach_classifier=config.detach_classifier)
        if config.drc else None,
        branch_reduction=config.branch_reduction,
    )


class TrainForward(nn.Module):
    """A model and its config's loss as one module: one call is one training forward (what DDP wraps).

    ``forward(img_full, img_small, targets)`` -> the loss dict of :func:`config_losses` (both branches run
    inside the one call, so DistributedDataParallel sees one forward per step). ``gather``: see there.
    """

    def __init__(self, model: nn.Module, config: TrainConfig, gather: bool = False) -> None:
        super().__init__()
        self.model = model
        self.config = config
        self.gather = gather

    def forward(self, img_full: torch.Tensor, img_small: torch.Tensor | None, targets: torch.Tensor):
        if self.config.siamese:
            out_full, out_small = self.model.forward_pair(img_full, img_small)
        else:
            out_full, out_small = self.model(img_full), None
        return config_losses(self.model, out_full, out_small, targets, self.config, self.gather)


def device_views(batch, config: TrainConfig, device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The two views of ``batch`` on ``device``: a ``uint8`` batch is finished there, a float one is moved."""
    images, second = batch[0], batch[1]
    non_blocking = device.type == "cuda"
    fmt = torch.channels_last if config.channels_last else torch.contiguous_format
    if images.dtype == torch.uint8:
        full, small = _train_transform(config.view_spec()).finish(
            images.to(device, non_blocking=non_blocking), second, small=config.siamese)
        if config.low_res_aug > 0:  # the augmentation control: draws from the (per-epoch seeded) CPU generator
            replace = torch.rand(full.shape[0]) < config.low_res_aug
            full = low_resolution_augment(full, config.view_spec(), replace)
    else:  # already-made float views (the benchmark's model-only steps, older callers)
        full, small = images.to(device, non_blocking=non_blocking), second if config.siamese else None
        small = small.to(device, non_blocking=non_blocking) if small is not None else None
    full = full.contiguous(memory_format=fmt)
    return full, small.contiguous(memory_format=fmt) if small is not None else None


def train_step(model, optimizer, batch, config: TrainConfig, scaler=None) -> dict[str, torch.Tensor]:
    """One forward / backward / optimiser step on a batch of :func:`build_train_loader`.

    ``batch = (images uint8, erasing boxes, pids, camids)`` is finished on the model's device
    (:meth:`TwoScaleTransform.finish`); ``(img_full, img_small, pids, camids)`` float views are used as given.
    ``model``: a :class:`~sisnet.model.SiSNet`, or a :class:`TrainForward` (possibly in DDP). Returns the
    losses (keys ``total``, ``id``, ``triplet``, ``drc``) as detached 0-dim tensors on the device, without a
    host synchronisation (``float(v)`` reads one). Does not check finiteness (``fit`` does, to name the
    epoch and step). ``scaler``: a ``torch.amp.GradScaler`` for fp16 AMP.
    """
    trainer = model if isinstance(getattr(model, "module", model), TrainForward) else TrainForward(model, config)
    device = next(trainer.parameters()).device
    img_full, img_small = device_views(batch, config, device)
    targets = batch[2].to(device, non_blocking=device.type == "cuda")
    amp_dtype = autocast_dtype(config.amp, device)
    trainer.train()
    with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        losses = trainer(img_full, img_small, targets)
    optimizer.zero_grad(set_to_none=True)
    total = losses["total"]
    if scaler is not None and scaler.is_enabled():
        scaler.scale(total).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        total.backward()
        optimizer.step()
    return {k: v.detach() for k, v in losses.items()}


_LOSS_KEYS = ("total", "id", "triplet", "drc")
_EVAL_METRICS = ("rank1", "rank5", "rank10", "mAP", "mINP")
#: Steps between reads of the losses (each read is one host synchronisation; NaN/inf is caught there).
_CHECK_EVERY = 50


def _read_losses(pending: list[torch.Tensor], world: distributed.World) -> torch.Tensor:
    """The pending steps' losses ``(steps, 4)`` (order :data:`_LOSS_KEYS`), averaged over processes, on the CPU."""
    rows = distributed.mean_over_processes(torch.stack(pending), world)
    pending.clear()
    return rows.double().cpu()


# ---------------------------------------------------------------------------------------------- fit: precise BN, RNGs, run checks
def recalibrate_bn(model: nn.Module, config: TrainConfig, images: torch.Tensor) -> None:
    """Precise BatchNorm: re-estimate every BN layer's running statistics on full-scale training images.

    A two-scale step runs both views through the same BN layers, so the running statistics that retrieval
    uses are about half small-scale. This replaces them by the plain average over ``config.precise_bn``
    batches of ``P*K`` full-scale training images (no augmentation; a fixed draw per seed), with
    ``torch.optim.swa_utils.update_bn`` (momentum ``None``: a cumulative average). ``images``: the training
    images, ``uint8 (N, 3, H, W)`` at the input size.
    """
    if config.precise_bn <= 0:
        return
    device = next(model.parameters()).device
    fmt = torch.channels_last if config.channels_last else torch.contiguous_format
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(config.seed))
    take = order[: config.precise_bn * config.batch_size]
    transform = _train_transform(config.view_spec())
    batches = [transform.finish(images[idx].to(device), None, small=False)[0].contiguous(memory_format=fmt)
               for idx in take.split(config.batch_size)]
    with torch.autocast(device.type, dtype=autocast_dtype(config.amp, device),
                        enabled=autocast_dtype(config.amp, device) is not None):
        torch.optim.swa_utils.update_bn(batches, model)


def _reseed(seed: int, epoch: int) -> None:
    """Derive every global RNG from (seed, epoch): makes each epoch independent of earlier history."""
    s = int(np.random.default_rng([seed, epoch, 2]).integers(0, 2**31 - 1))
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)  # also seeds CUDA


def _check_same_run(record: dict, run: _Run, what: str) -> None:
    """Refuse a history or checkpoint (``record``) of another run than ``run``, naming what differs.

    Precision and data are checked first (their messages say how to resume); records written before they were
    stored fall through to the run-id check, which refuses them too.
    """
    run_id, precision, fingerprint = run.run_id, run.precision, run.fingerprint
    theirs = record.get("precision")
    if theirs is not None and theirs != precision:
        devices = record.get("devices") or ["?"]
        raise CheckpointMismatchError(
            f"{what} was trained in {theirs} (on {devices[-1]}), but this run would train in {precision}: resuming "
            f"would mix precisions (and an fp16 GradScaler cannot take the state of another precision). Resume it "
            f"with an amp that gives {theirs} on this device (amp='off' is fp32 everywhere, amp='bf16' is bf16 on "
            f"CPU and CUDA), use another run_dir (the default <runs_dir>/<run_id> never clashes: the precision is "
            f"part of the run id), or delete that folder to start over."
        )
    data = record.get("data_fingerprint")
    if data is not None and data != fingerprint:
        raise CheckpointMismatchError(
            f"{what} was trained on other data (dataset fingerprint {data}; the dataset now has {fingerprint}: "
            f"files were added, removed or replaced). Use another run_dir (the default <runs_dir>/<run_id> never "
            f"clashes: the fingerprint is part of the run id) or delete that folder to start over."
        )
    if record.get("run_id") != run_id:
        raise CheckpointMismatchError(
            f"{what} belongs to a different configuration (run_id {record.get('run_id')!r}; this config has run_id "
            f"{run_id!r}). Resume it with its own config (sisnet.runs.load_model shows it), use another run_dir "
            f"(the default <runs_dir>/<run_id> never clashes), or delete that folder to start over."
        )


def _restore_scaler(scaler, state: dict, ckpt_path: Path) -> None:
    """Load the GradScaler state of a checkpoint of the same precision (a no-op unless fp16)."""
    if not scaler.is_enabled():
        return
    if not state:  # an fp32/bf16 checkpoint; _check_same_run refuses those first, this is the last guard
        raise CheckpointMismatchError(
            f"Checkpoint {str(ckpt_path)!r} holds no fp16 GradScaler state (it was not trained in fp16); it cannot "
            f"resume an fp16 run. Use another run_dir or delete it to start over."
        )
    scaler.load_state_dict(state)


@dataclass(frozen=True)
class _Run:
    """What one :func:`fit` call trains and where: the config, the processes, the data, the run's id and folder."""

    config: TrainConfig
    world: distributed.World
    dataset: Any
    device: torch.device
    precision: str
    fingerprint: str
    run_id: str
    run_dir: Path
    history_path: Path
    ckpt_path: Path
    t_start: float


@dataclass
class _Training:
    """The state a run trains: model (and its training forward, possibly in DDP), optimiser, LR scheduler, AMP
    grad-scaler, the history so far, the first epoch left to train and the training data."""

    model: nn.Module
    trainer: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: Any
    num_classes: int
    history: History
    start_epoch: int
    train_images: torch.Tensor | None
    loader: DataLoader
    eval_epochs: frozenset[int]
    wall_before: float
    eval_cache: dict[str, torch.Tensor] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------- restore or start
def _open_run(config: TrainConfig, run_dir: str | Path | None, dataset) -> _Run:
    """The run of ``config`` on ``dataset``: its id and folder (checked writable before any work)."""
    world = distributed.current()
    ensure_writable_dir(run_dir if run_dir is not None else config.runs_dir, "runs folder")  # before any work
    t_start = time.perf_counter()
    dataset = training_dataset(config, dataset)
    device = select_device(config.device)
    precision, fingerprint = precision_name(config.amp, device), dataset.fingerprint()
    run_id = run_key(config, dataset, device, world_size=world.size)
    run_dir = Path(run_dir) if run_dir is not None else Path(config.runs_dir) / run_id
    ensure_writable_dir(run_dir, "runs folder")
    return _Run(config, world, dataset, device, precision, fingerprint, run_id, run_dir, run_dir / HISTORY_NAME,
                run_dir / CHECKPOINT_NAME, t_start)


def _cached_history(run: _Run, resume: bool) -> History | None:
    """The run folder's complete history, returned without training when ``resume`` (one of another run is
    refused); None when there is none, it is incomplete or unreadable (the checkpoint is the authority then)."""
    if not run.history_path.is_file():
        return None
    try:
        cached = load_history(run.run_dir)
    except ValueError:
        return None  # unreadable history: the checkpoint (if any) is the authority
    _check_same_run(cached, run, f"The history in {str(run.run_dir)!r}")
    return cached if cached.complete and resume else None


def _start_model(run: _Run, ckpt: dict | None, num_classes: int) -> tuple[nn.Module, dict]:
    """The model on the run's device and its initial-weights record (a resumed run's weights come from ``ckpt``)."""
    config, world, device = run.config, run.world, run.device
    torch.manual_seed(config.seed)
    if ckpt is not None:
        weights_info = ckpt.get("weights", {"source": "checkpoint"})
        model = build_model(config, num_classes, pretrained=False)
    else:
        with distributed.main_first(world):  # weights are fetched/verified once, by the main process
            model = build_model(config, num_classes)
        weights_info = model.weights_info
    model = model.to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if world.distributed and config.sync_bn:
        model = distributed.convert_sync_batchnorm(model, device)
    return model, weights_info


def _restore(run: _Run, ckpt: dict, model, optimizer, scheduler, scaler) -> tuple[History, int]:
    """Load a checkpoint's states into the training objects and the RNGs; its history and the next epoch."""
    # Tensors were read onto the CPU: load_state_dict copies them to the model's device, and the optimizer
    # moves its state to its parameters' device, so a checkpoint resumes on another device.
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    _restore_scaler(scaler, ckpt["scaler"], run.ckpt_path)
    set_rng_state(ckpt["rng"])
    history = History(json.loads(ckpt["history"]))
    history.setdefault("precision", run.precision)
    history.setdefault("data_fingerprint", run.fingerprint)
    devices = list(history.get("devices") or [])
    history["devices"] = devices + [run.device.type] if devices[-1:] != [run.device.type] else devices
    return history, int(ckpt["epoch"]) + 1


def _restore_or_start(run: _Run, resume: bool) -> _Training:
    """The training state at the first epoch left to train: restored from ``last.pt`` (with ``resume``, when
    present and of this run) or started afresh (initial weights, epoch 1, an empty history)."""
    config, world, device = run.config, run.world, run.device
    num_classes = run.dataset.num_train_pids
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed training input sizes: let cuDNN pick the fastest kernels
    ckpt = None
    if resume and run.ckpt_path.is_file():
        ckpt = load_checkpoint(run.ckpt_path)
        _check_same_run(ckpt, run, f"Checkpoint {str(run.ckpt_path)!r}")

    model, weights_info = _start_model(run, ckpt, num_classes)
    trainer = distributed.wrap(TrainForward(model, config, gather=world.distributed), world, device)
    optimizer, scheduler = build_optimizer(config, model)
    scaler = torch.amp.GradScaler(device.type, enabled=autocast_dtype(config.amp, device) == torch.float16)
    history = History(run_id=run.run_id, config=config.to_dict(), weights=weights_info, precision=run.precision,
                      devices=[device.type], data_fingerprint=run.fingerprint, epochs=[], evals=[], complete=False,
                      wall_seconds=0.0)
    start_epoch = 1
    if ckpt is not None:
        history, start_epoch = _restore(run, ckpt, model, optimizer, scheduler, scaler)
    if world.distributed or "processes" in history:
        history["processes"] = world.size  # of the latest launch (the run id leaves the process count out)

    train_images = _train_images(config, run.dataset)
    loader = build_train_loader(config, run.dataset, images=train_images, world=world)
    return _Training(model, trainer, optimizer, scheduler, scaler, num_classes, history, start_epoch, train_images,
                     loader, frozenset(config.eval_epochs()), float(history.get("wall_seconds", 0.0)))


# ---------------------------------------------------------------------------------------------- one epoch
def _check_finite(rows: torch.Tensor, run: _Run, epoch: int, steps_before: int, steps: int, lr: float) -> None:
    """Raise :class:`NonFiniteLossError` naming the first step of ``rows`` (read after ``steps_before``) whose
    losses are not all finite."""
    bad = (~torch.isfinite(rows).all(dim=1)).nonzero().flatten()
    if len(bad):
        at = steps_before + int(bad[0]) + 1
        raise NonFiniteLossError(
            f"Non-finite loss {dict(zip(_LOSS_KEYS, rows[int(bad[0])].tolist()))} at epoch {epoch} step "
            f"{at} (of {steps}) of run {run.run_id}. Lower lr (now {lr:g}), set amp='off', or check the "
            f"input data; the last good checkpoint is {str(run.ckpt_path)!r} (epoch {epoch - 1})."
        )


def _train_epoch(run: _Run, state: _Training, epoch: int) -> dict[str, float]:
    """Train epoch ``epoch`` (its RNGs re-derived from ``(seed, epoch)``), checking the losses every
    :data:`_CHECK_EVERY` steps; append its row (mean losses, lr, seconds) to the history and return it."""
    config, loader = run.config, state.loader
    t_epoch = time.perf_counter()
    _reseed(config.seed, epoch)
    loader.sampler.set_epoch(epoch)
    sums = torch.zeros(len(_LOSS_KEYS), dtype=torch.float64)
    steps = 0
    lr = state.optimizer.param_groups[0]["lr"]
    pending: list[torch.Tensor] = []
    for step, batch in enumerate(loader, start=1):
        losses = train_step(state.trainer, state.optimizer, batch, config, state.scaler)
        pending.append(torch.stack([losses[k].float() for k in _LOSS_KEYS]))
        if step % _CHECK_EVERY == 0 or step == len(loader):
            rows = _read_losses(pending, run.world)
            _check_finite(rows, run, epoch, steps, len(loader), lr)
            sums += rows.sum(dim=0)
            steps += len(rows)
    state.scheduler.step()
    row = {"epoch": epoch, **{f"loss_{k}": float(sums[i]) / max(steps, 1) for i, k in enumerate(_LOSS_KEYS)},
           "lr": lr, "seconds": time.perf_counter() - t_epoch}
    state.history["epochs"].append(row)
    return row


# ---------------------------------------------------------------------------------------------- evaluate and checkpoint
def _evaluate_epoch(run: _Run, state: _Training, epoch: int, row: dict[str, float]) -> None:
    """Precise BN (when configured), then evaluate in every mode and append the results to the history."""
    config, dataset = run.config, run.dataset
    t_eval = time.perf_counter()
    if config.precise_bn:
        images = state.train_images if state.train_images is not None else decode_images_cached(
            [r.path for r in dataset.train], (config.img_height, config.img_width), "decode train")
        recalibrate_bn(state.model, config, images)
    res = evaluate(state.model, dataset, config, modes=EVAL_MODES, progress=False, image_cache=state.eval_cache)
    for mode, m in res.items():
        state.history["evals"].append({"epoch": epoch, "mode": mode, **{k: m[k] for k in _EVAL_METRICS}})
    row["eval_seconds"] = time.perf_counter() - t_eval


def _evaluate_and_checkpoint(run: _Run, state: _Training, epoch: int, row: dict[str, float], bar) -> None:
    """After epoch ``epoch``: the main process evaluates (on evaluation epochs) and writes the checkpoint and the
    history; every process then waits for the others."""
    world, history = run.world, state.history
    if not world.is_main:  # the main process evaluates and writes; the others wait for it
        distributed.barrier(world)
        return
    evaluated = epoch in state.eval_epochs
    if evaluated:
        _evaluate_epoch(run, state, epoch, row)
    if bar is not None:
        last = history["evals"][-2] if evaluated else None
        bar.set_postfix(loss=f"{row['loss_total']:.3f}", **({"r1": f"{last['rank1']:.3f}"} if last else {}))
    history["wall_seconds"] = state.wall_before + (time.perf_counter() - run.t_start)
    history["complete"] = epoch == run.config.epochs
    save_checkpoint(run.ckpt_path, run.history_path, state.model, state.optimizer, state.scheduler, state.scaler,
                    epoch, history, run.config, state.num_classes)
    distributed.barrier(world)


# ---------------------------------------------------------------------------------------------- fit
def fit(config: TrainConfig, run_dir: str | Path | None = None, resume: bool = True, progress: bool = True,
        dataset=None) -> History:
    """Train ``config`` (or return its cached result) and return its :class:`History`.

    Args:
        config: a :class:`~sisnet.config.TrainConfig` (``get_config(...)``).
        run_dir: where ``last.pt`` and ``history.json`` go; default ``<config.runs_dir>/<run_id>`` with
            ``run_id`` = :func:`sisnet.runs.run_key` (config, effective precision, dataset fingerprint).
        resume: continue from ``run_dir/last.pt`` when present (otherwise start over, replacing it).
        progress: tqdm bars for epochs and feature extraction.
        dataset: an already-loaded :class:`sisnet.data.ReIDDataset` (default: ``load_dataset(config.dataset,
            config.dataset_dir)``).

    Raises:
        CheckpointMismatchError: ``run_dir`` holds a checkpoint/history of another configuration, precision or
            dataset (the message says which).
        NonFiniteLossError: the loss became NaN/inf (message names epoch and step).
        PermissionError: ``run_dir`` is not writable (checked before any work).
        sisnet.data.transforms.BadImageError: corrupt / truncated / non-image files (all listed).
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"fit() needs a TrainConfig (sisnet.config.get_config(...)), got {type(config).__name__}.")
    config.validate()
    run = _open_run(config, run_dir, dataset)
    cached = _cached_history(run, resume)
    if cached is not None:
        return cached
    state = _restore_or_start(run, resume)
    epochs: Any = range(state.start_epoch, config.epochs + 1)
    bar = None
    if progress and run.world.is_main:
        from tqdm.auto import tqdm

        epochs = bar = tqdm(epochs, desc=f"fit {run.run_id}", unit="epoch", initial=state.start_epoch - 1,
                            total=config.epochs)
    for epoch in epochs:
        row = _train_epoch(run, state, epoch)
        _evaluate_and_checkpoint(run, state, epoch, row, bar)
    if bar is not None:
        bar.close()
    if not state.history.get("complete"):  # nothing left to train (e.g. resumed after the last epoch)
        state.history["complete"] = True
        if run.world.is_main:
            atomic_write_json(run.history_path, state.history)
    return state.history
