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

Histories, checkpoints and loading a trained model live in :mod:`sisnet.runs`; feature extraction and
evaluation in :mod:`sisnet.evaluation` (their names are re-exported here for older imports).
"""
from __future__ import annotations

import functools
import json
import random
import time
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
from sisnet.evaluation import EVAL_MODES, evaluate, extract_features
from sisnet.runs import (
    CHECKPOINT_NAME,
    HISTORY_NAME,
    History,
    load_checkpoint,
    load_history,
    load_model,
    run_key,
    save_checkpoint,
    set_rng_state,
    training_dataset,
)
from sisnet.utils import atomic_write_json, autocast_dtype, ensure_writable_dir, precision_name, select_device

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
    "TrainForward",
    "NonFiniteLossError",
    "CheckpointMismatchError",
    "EVAL_MODES",
    "CHECKPOINT_NAME",
    "HISTORY_NAME",
]


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; the message names the epoch and step."""


class CheckpointMismatchError(ValueError):
    """A checkpoint or history belongs to a different configuration than the one being run."""


# ---------------------------------------------------------------------------------------------- building blocks
def build_model(config: TrainConfig, num_classes: int, pretrained: Any = None):
    """The :class:`sisnet.model.SiSNet` of ``config`` (weights resolved via :mod:`sisnet.weights`).

    ``pretrained`` overrides ``config.pretrained`` with an already-resolved value (False, True or a path).
    The resolved weights record is attached as ``model.weights_info`` ({source, file, sha256}). With
    ``config.channels_last`` the weights are converted to the channels-last memory format
    (:func:`train_step` and evaluation feed channels-last inputs to match).
    """
    from sisnet.model import SiSNet
    from sisnet.weights import resolve_pretrained

    if pretrained is None:
        pretrained, resolved = resolve_pretrained(config.pretrained, config.backbone)
        info = {"source": resolved.source, "file": resolved.file, "sha256": resolved.sha256}
    else:
        info = {"source": "random" if pretrained is False else "given", "file": None, "sha256": None}
    stride = {"output_stride": config.output_stride} if config.output_stride else {}
    model = SiSNet(config.backbone, num_classes, pretrained=pretrained, last_stride=config.last_stride, **stride)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.weights_info = info
    return model


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


def _compute_losses(model, out_full, out_small, targets, config: TrainConfig,
                    gather: bool = False) -> dict[str, torch.Tensor]:
    """The Table-2 loss of ``config`` (see :func:`sisnet.losses.compute_losses`).

    ``gather``: mine triplets over every process's batch (:class:`sisnet.distributed.GatheredTripletLoss`).
    """
    from sisnet.losses import CrossEntropyLabelSmooth, DRCLoss, TripletLoss, compute_losses

    triplet_cls = distributed.GatheredTripletLoss if gather else TripletLoss
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

    ``forward(img_full, img_small, targets)`` -> the loss dict of :func:`_compute_losses` (both branches run
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
        return _compute_losses(self.model, out_full, out_small, targets, self.config, self.gather)


def _device_views(batch, config: TrainConfig, device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
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
    img_full, img_small = _device_views(batch, config, device)
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
#: Steps between reads of the losses (each read is one host synchronisation; NaN/inf is caught there).
_CHECK_EVERY = 50


def _read_losses(pending: list[torch.Tensor], world: distributed.World) -> torch.Tensor:
    """The pending steps' losses ``(steps, 4)`` (order :data:`_LOSS_KEYS`), averaged over processes, on the CPU."""
    rows = distributed.mean_over_processes(torch.stack(pending), world)
    pending.clear()
    return rows.double().cpu()


# ---------------------------------------------------------------------------------------------- fit
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


def _check_same_run(record: dict, run_id: str, precision: str, fingerprint: str, what: str) -> None:
    """Refuse a history or checkpoint (``record``) of another run, naming what differs.

    Precision and data are checked first (their messages say how to resume); records written before they were
    stored fall through to the run-id check, which refuses them too.
    """
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
            f"{run_id!r}). Resume it with its own config (sisnet.engine.load_model shows it), use another run_dir "
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
    world = distributed.current()
    ensure_writable_dir(run_dir if run_dir is not None else config.runs_dir, "runs folder")  # before any work
    t_start = time.perf_counter()
    dataset = training_dataset(config, dataset)
    device = select_device(config.device)
    precision, fingerprint = precision_name(config.amp, device), dataset.fingerprint()
    run_id = run_key(config, dataset, device, world_size=world.size)
    run_dir = Path(run_dir) if run_dir is not None else Path(config.runs_dir) / run_id
    ensure_writable_dir(run_dir, "runs folder")
    history_path, ckpt_path = run_dir / HISTORY_NAME, run_dir / CHECKPOINT_NAME

    if history_path.is_file():
        try:
            cached = load_history(run_dir)
        except ValueError:
            cached = None  # unreadable history: the checkpoint (if any) is the authority
        if cached is not None:
            _check_same_run(cached, run_id, precision, fingerprint, f"The history in {str(run_dir)!r}")
            if cached.complete and resume:
                return cached

    num_classes = dataset.num_train_pids
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed training input sizes: let cuDNN pick the fastest kernels

    ckpt = None
    if resume and ckpt_path.is_file():
        ckpt = load_checkpoint(ckpt_path)
        _check_same_run(ckpt, run_id, precision, fingerprint, f"Checkpoint {str(ckpt_path)!r}")

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
    trainer = distributed.wrap(TrainForward(model, config, gather=world.distributed), world, device)
    optimizer, scheduler = build_optimizer(config, model)
    scaler = torch.amp.GradScaler(device.type, enabled=autocast_dtype(config.amp, device) == torch.float16)

    history = History(run_id=run_id, config=config.to_dict(), weights=weights_info, precision=precision,
                      devices=[device.type], data_fingerprint=fingerprint, epochs=[], evals=[], complete=False,
                      wall_seconds=0.0)
    start_epoch = 1
    if ckpt is not None:
        # Tensors were read onto the CPU: load_state_dict copies them to the model's device, and the optimizer
        # moves its state to its parameters' device, so a checkpoint resumes on another device.
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        _restore_scaler(scaler, ckpt["scaler"], ckpt_path)
        set_rng_state(ckpt["rng"])
        history = History(json.loads(ckpt["history"]))
        history.setdefault("precision", precision)
        history.setdefault("data_fingerprint", fingerprint)
        devices = list(history.get("devices") or [])
        history["devices"] = devices + [device.type] if devices[-1:] != [device.type] else devices
        start_epoch = int(ckpt["epoch"]) + 1
    if world.distributed or "processes" in history:
        history["processes"] = world.size  # of the latest launch (the run id leaves the process count out)

    train_images = _train_images(config, dataset)
    loader = build_train_loader(config, dataset, images=train_images, world=world)
    eval_cache: dict[str, torch.Tensor] = {}
    eval_epochs = set(config.eval_epochs())
    wall_before = float(history.get("wall_seconds", 0.0))

    epoch_iter: Any = range(start_epoch, config.epochs + 1)
    bar = None
    if progress and world.is_main:
        from tqdm.auto import tqdm

        bar = tqdm(epoch_iter, desc=f"fit {run_id}", unit="epoch", initial=start_epoch - 1, total=config.epochs)
        epoch_iter = bar
    for epoch in epoch_iter:
        t_epoch = time.perf_counter()
        _reseed(config.seed, epoch)
        loader.sampler.set_epoch(epoch)
        sums = torch.zeros(len(_LOSS_KEYS), dtype=torch.float64)
        steps = 0
        lr = optimizer.param_groups[0]["lr"]
        pending: list[torch.Tensor] = []
        for step, batch in enumerate(loader, start=1):
            losses = train_step(trainer, optimizer, batch, config, scaler)
            pending.append(torch.stack([losses[k].float() for k in _LOSS_KEYS]))
            if step % _CHECK_EVERY == 0 or step == len(loader):
                rows = _read_losses(pending, world)
                bad = (~torch.isfinite(rows).all(dim=1)).nonzero().flatten()
                if len(bad):
                    at = steps + int(bad[0]) + 1
                    raise NonFiniteLossError(
                        f"Non-finite loss {dict(zip(_LOSS_KEYS, rows[int(bad[0])].tolist()))} at epoch {epoch} step "
                        f"{at} (of {len(loader)}) of run {run_id}. Lower lr (now {lr:g}), set amp='off', or check the "
                        f"input data; the last good checkpoint is {str(ckpt_path)!r} (epoch {epoch - 1})."
                    )
                sums += rows.sum(dim=0)
                steps += len(rows)
        scheduler.step()
        row = {"epoch": epoch, **{f"loss_{k}": float(sums[i]) / max(steps, 1) for i, k in enumerate(_LOSS_KEYS)},
               "lr": lr, "seconds": time.perf_counter() - t_epoch}
        history["epochs"].append(row)
        if not world.is_main:  # the main process evaluates and writes; the others wait for it
            distributed.barrier(world)
            continue
        if epoch in eval_epochs:
            t_eval = time.perf_counter()
            if config.precise_bn:
                recalibrate_bn(model, config, train_images if train_images is not None else
                               decode_images_cached([r.path for r in dataset.train],
                                                    (config.img_height, config.img_width), "decode train"))
            res = evaluate(model, dataset, config, modes=EVAL_MODES, progress=False, image_cache=eval_cache)
            for mode, m in res.items():
                history["evals"].append({"epoch": epoch, "mode": mode, **{k: m[k] for k in ("rank1", "rank5", "rank10", "mAP", "mINP")}})
            row["eval_seconds"] = time.perf_counter() - t_eval
        if bar is not None:
            last = history["evals"][-2] if epoch in eval_epochs else None
            bar.set_postfix(loss=f"{row['loss_total']:.3f}", **({"r1": f"{last['rank1']:.3f}"} if last else {}))
        history["wall_seconds"] = wall_before + (time.perf_counter() - t_start)
        history["complete"] = epoch == config.epochs
        save_checkpoint(ckpt_path, history_path, model, optimizer, scheduler, scaler, epoch, history, config, num_classes)
        distributed.barrier(world)
    if bar is not None:
        bar.close()
    if not history.get("complete"):  # nothing left to train (e.g. resumed after the last epoch)
        history["complete"] = True
        if world.is_main:
            atomic_write_json(history_path, history)
    return history
