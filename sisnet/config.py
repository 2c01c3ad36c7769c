"""Training configurations: one flat dataclass and three named profiles.

``get_config("cpu", epochs=3, drc=True)`` returns a validated :class:`TrainConfig`; overrides are flat
keyword arguments (one name per hyper-parameter). Unknown names and bad values raise ``ValueError``
naming the valid options.

Profiles
--------
``smoke``
    Seconds per run, for tests and notebook smoke runs: resnet18 (random weights), 64x32 input,
    P x K = 4 x 2, 2 epochs of 3 steps, evaluated after both.
``cpu``
    The default companion run on a 2-core CPU: mobilenetv2_100 with ImageNet weights (``pretrained="auto"``:
    a file in the weights cache, the offline source, or timm's hub; an error saying how to supply a file when
    none can be had, never random weights; see :mod:`sisnet.weights`), P x K = 8 x 4, ``channels_last=True``
    (on CPU, oneDNN made the step ~1.5x and inference ~2x faster than the default layout). Every open setting was
    chosen on the validation split (held-out training identities, never the test split) by
    :mod:`sisnet.report.validation`; its table is ``results/cpu/synthetic/tables/validation_choices.csv`` and a
    test checks that the values here are its winners: 128x64 input with output stride 16 (an 8x4 last map, for CAMs
    with a spatial extent; 96x48 gives 6x3 and 64x32 at stride 8 scored lower), Adam 1e-3 (3e-3 won on S.+T.
    runs; the re-check on both losses, where 3e-3 breaks the softmax-only runs, chose 1e-3), 10 epochs of 35
    steps with 1 warm-up epoch and x0.1 for the last 2, triplet on the pooled features, the "degrade" second
    view (x0.5 down, back up), precise BatchNorm (statistics re-estimated on 8 full-scale batches before each
    evaluation), DRC weight 1. Evaluated after epochs 9 and 10 (after the decay: Table 3 averages the two). Cost on 2 cores: see README (``python -m sisnet.benchmark --section train``).
``paper``
    The paper / Bag-of-Tricks schedule: resnet50, 256x128, Adam 3.5e-4 (weight decay 5e-4), linear
    warm-up over 10 epochs from 3.5e-5, steps at 40 and 70 (x0.1), 120 epochs, 16 x 4 batches, last
    stride 1, label smoothing 0.1, triplet margin 0.3, random erasing 0.5, flip, pad 10, second scale 0.5; and,
    from the cpu profile's validation sweep (not from the paper), precise BatchNorm before each evaluation.
    Weights: ``backbone="resnet50.tv_in1k"``, torchvision's ImageNet ResNet-50 as timm publishes it
    (``https://download.pytorch.org/models/resnet50-0676ba61.pth``), the initialisation Bag of Tricks'
    94.5 R1 / 85.9 mAP on Market-1501 were obtained from. timm's untagged ``resnet50`` means its default
    ``resnet50.a1_in1k`` (another training recipe), so the tag is part of the name. Missing ImageNet weights
    are an error that says how to supply a file. The ImageNet-vs-random comparison of notebook 02 is off
    (:attr:`ProfileSettings.init_comparison`): 120 epochs of a second, random-init ResNet-50 answer a question
    the ``cpu`` profile already answers.
    Data-loader workers ``"auto"`` (sized to the machine, :mod:`sisnet.data.loader`). On several GPUs:
    ``torchrun -m sisnet.train`` (:mod:`sisnet.train`), with ``sync_bn=True`` for BatchNorm over all of them.

Table 2 is :data:`TABLE2_GRID`: Baseline / SiSNet / SiSNet+DRC under softmax ("S.") and softmax +
triplet ("S.+T.") losses.
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sisnet.cam import NORMALIZATIONS as CAM_NORMALIZATIONS
from sisnet.data import DATASET_NAMES
from sisnet.data.transforms import SMALL_VIEWS, ViewSpec
from sisnet.losses import BRANCH_REDUCTIONS, DRC_DISTANCES
from sisnet.metrics.distance import METRICS

__all__ = ["TrainConfig", "get_config", "PROFILES", "PROFILE_SETTINGS", "ProfileSettings", "profile_settings",
           "TABLE2_GRID", "PROFILE_NAMES", "config_from_dict", "dataset_folder", "runs_folder"]

AMP_MODES = ("auto", "off", "bf16", "fp16")
SPLIT_CHOICES = ("test", "val")
# Renamed fields: old name -> new name (old checkpoints and histories still load).
_RENAMED = {"data_root": "dataset_dir"}

# Fields that do not change what a run computes: left out of ``run_id`` so that, e.g., the same run
# with more data-loader workers or another runs folder hits the runs cache. ``device`` and ``amp`` are
# replaced in the key by what they decide together: the effective precision (fp32 / bf16 / fp16). ``sync_bn``
# only acts in a multi-process (torchrun) run, where it makes the run compute what the single-process run computes
# (BatchNorm over the global batch); a multi-process run without it gets its own key (see ``bn_group``).
_NON_RESULT_FIELDS = frozenset({"profile", "num_workers", "runs_dir", "device", "amp", "cache_images", "sync_bn"})


# ---------------------------------------------------------------------------------------------- field checks
def _need_choice(cfg: "TrainConfig", name: str, options: tuple[str, ...]) -> None:
    value = getattr(cfg, name)
    if value not in options:
        raise ValueError(f"{name}={value!r} is not valid; choose one of {list(options)}.")


def _need_number(cfg: "TrainConfig", name: str, allow_zero: bool = False) -> None:
    value = getattr(cfg, name)
    bad = value < 0 if allow_zero else value <= 0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or bad:
        need = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}={value!r} is not valid; it must be a number {need}.")


def _need_integer(cfg: "TrainConfig", name: str, allow_zero: bool = False) -> None:
    value = getattr(cfg, name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name}={value!r} is not valid; it must be an integer.")
    _need_number(cfg, name, allow_zero)


def _need_bool(cfg: "TrainConfig", name: str) -> None:
    if not isinstance(getattr(cfg, name), bool):
        raise ValueError(f"{name}={getattr(cfg, name)!r} is not valid; use True or False.")


@dataclass
class TrainConfig:
    """Every hyper-parameter of one training run (flat: one name per knob).

    Images are ``(B, 3, img_height, img_width)`` tensors for the full-scale branch. The second
    (small-scale) branch sees the SAME augmented image (same flip, crop and erasing) rescaled by
    ``scale_factor``:

    - ``small_view="native"`` (default; the ``cpu`` profile uses "degrade", see the module docstring)
      feeds it at its native lower resolution,
      ``(B, 3, round(H * s), round(W * s))``. Chosen as default because (1) it is what a real
      small/far-away person crop contains: fewer pixels, not a blurred full-size image; (2) the
      siamese branch then costs about ``s**2`` = 0.25 of the full branch (two-scale step ~1.25x the
      baseline step instead of 2x with "degrade"); (3) CAMs of the two branches then have different
      sizes, which the DRC loss handles by resizing both maps to the larger one (bilinear,
      :func:`sisnet.cam.resize_to_common`).
    - ``small_view="degrade"`` down-samples by ``s`` and up-samples back to ``(H, W)``: the small
      branch sees a blurred full-size image (same CAM size; costs 2x the baseline step).

    ``siamese=False`` is the Baseline: the same network trained on the full-resolution view only.
    """

    profile: str = "custom"
    # data
    dataset: str = "synthetic"
    dataset_dir: str = "data/synthetic"  # ONE dataset's folder (``data_root`` elsewhere = the folder of all datasets)
    combine_val: bool = False
    split: str = "test"  # "val": train on the training ids minus ``val_ids`` held out, evaluate on those
    val_ids: int = 50  # identities held out by split="val" (sisnet.data.ReIDDataset.validation_split)
    # model
    backbone: str = "mobilenetv2_100"
    pretrained: bool | str = "auto"
    last_stride: int | None = 1
    output_stride: int | None = None  # timm's dilation (8 or 16) instead of last_stride (then last_stride=None)
    # input / augmentation
    img_height: int = 128
    img_width: int = 64
    scale_factor: float = 0.5
    small_view: str = "native"
    flip_prob: float = 0.5
    pad_px: int = 10
    erasing_prob: float = 0.5
    low_res_aug: float = 0.0  # one-branch control: each image replaced by the second-scale view with this probability
    # method switches (Table 2) and losses
    siamese: bool = True
    drc: bool = False
    drc_weight: float = 1.0
    drc_distance: str = "mse"
    cam_normalization: str = "minmax"
    detach_classifier: bool = False
    triplet: bool = True
    triplet_margin: float = 0.3
    triplet_normalize: bool = False  # batch-hard triplet on L2-normalised features (the cosine retrieval space)
    label_smoothing: float = 0.1
    branch_reduction: str = "mean"  # siamese ID/triplet terms: (L_full + L_small) / 2 ("mean") or sum
    # sampler / schedule
    P: int = 16
    K: int = 4
    epochs: int = 120
    steps_per_epoch: int | None = None  # None: the usual PK-sampler epoch length
    lr: float = 3.5e-4
    weight_decay: float = 5e-4
    warmup_epochs: int = 10
    warmup_factor: float = 0.1  # warm-up starts at lr * warmup_factor (3.5e-5 for the paper)
    milestones: tuple[int, ...] = (40, 70)
    gamma: float = 0.1
    # evaluation
    eval_every: int = 10  # 0 = no periodic evaluation
    eval_last: int = 5  # always evaluate at each of the last ``eval_last`` epochs (Table 3's mean)
    eval_batch_size: int = 128
    metric: str = "cosine"
    precise_bn: int = 0  # >0: before each evaluation, re-estimate BatchNorm statistics on this many full-scale batches
    rerank: bool = False
    # runtime
    seed: int = 0
    num_workers: int | str = 0  # "auto": sized to the machine and device (sisnet.data.loader)
    cache_images: bool = True
    device: str = "auto"
    amp: str = "auto"  # "auto" = bf16 (or fp16 + GradScaler) on CUDA, fp32 on CPU; "bf16"/"fp16" on either
    channels_last: bool = False
    sync_bn: bool = False  # torchrun runs: BatchNorm statistics over all processes' samples (SyncBatchNorm)
    runs_dir: str = "data/runs"

    def __post_init__(self) -> None:
        if isinstance(self.milestones, list):
            self.milestones = tuple(self.milestones)
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Raise ``ValueError`` (naming the valid options) for any bad value."""
        self._validate_types()
        self._validate_ranges()
        self._validate_consistency()
        self._validate_pretrained()
        self._validate_backbone()

    def _validate_types(self) -> None:
        """Every choice field among its options, every number, integer, flag and probability of the right kind."""
        _need_choice(self, "dataset", DATASET_NAMES)
        _need_choice(self, "small_view", SMALL_VIEWS)
        _need_choice(self, "drc_distance", DRC_DISTANCES)
        _need_choice(self, "cam_normalization", CAM_NORMALIZATIONS)
        _need_choice(self, "branch_reduction", BRANCH_REDUCTIONS)
        _need_choice(self, "amp", AMP_MODES)
        _need_choice(self, "metric", METRICS)
        _need_choice(self, "split", SPLIT_CHOICES)
        for name in ("img_height", "img_width", "P", "K", "epochs", "eval_batch_size"):
            _need_integer(self, name)
        for name in ("pad_px", "warmup_epochs", "eval_every", "eval_last", "seed", "precise_bn", "val_ids"):
            _need_integer(self, name, allow_zero=True)
        if self.num_workers != "auto" and (isinstance(self.num_workers, bool) or not isinstance(self.num_workers, int)
                                           or self.num_workers < 0):
            raise ValueError(f"num_workers={self.num_workers!r} is not valid; use an integer >= 0 or 'auto'.")
        for name in ("lr", "scale_factor", "gamma", "warmup_factor"):
            _need_number(self, name)
        for name in ("weight_decay", "drc_weight", "triplet_margin", "label_smoothing"):
            _need_number(self, name, allow_zero=True)
        for name in ("combine_val", "siamese", "drc", "detach_classifier", "triplet", "rerank",
                     "cache_images", "channels_last", "sync_bn", "triplet_normalize"):
            _need_bool(self, name)
        for name in ("flip_prob", "erasing_prob", "low_res_aug"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ValueError(f"{name}={value!r} is not valid; it must be a probability in [0, 1].")

    def _validate_ranges(self) -> None:
        """The scale factor, label smoothing, last stride, K with triplet, steps per epoch and milestones in range."""
        if not 0 < self.scale_factor <= 1:
            raise ValueError(f"scale_factor={self.scale_factor!r} is not valid; it must be in (0, 1].")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing={self.label_smoothing!r} is not valid; it must be in [0, 1).")
        from sisnet.model import LAST_STRIDES

        if self.last_stride not in LAST_STRIDES:
            raise ValueError(
                f"last_stride={self.last_stride!r} is not valid; choose 1 (strong baseline), 2 or None (backbone default)."
            )
        if self.K < 2 and self.triplet:
            raise ValueError("K must be >= 2 when triplet=True (batch-hard triplet needs a positive per anchor).")
        if self.steps_per_epoch is not None:
            _need_integer(self, "steps_per_epoch")
        if not all(isinstance(m, int) and not isinstance(m, bool) and m > 0 for m in self.milestones):
            raise ValueError(f"milestones={self.milestones!r} is not valid; give positive epoch numbers.")
        if list(self.milestones) != sorted(self.milestones):
            raise ValueError(f"milestones={self.milestones!r} is not valid; they must be increasing.")

    def _validate_consistency(self) -> None:
        """Settings that must agree with each other, then the device name and the small view's size."""
        if self.low_res_aug and self.siamese:
            raise ValueError("low_res_aug is the one-branch control (siamese=False): SiSNet already feeds the "
                             "second-scale view through its second branch. Set low_res_aug=0 or siamese=False.")
        if self.output_stride is not None:
            if self.output_stride not in (8, 16):
                raise ValueError(f"output_stride={self.output_stride!r} is not valid; choose 8, 16 or None.")
            if self.last_stride is not None:
                raise ValueError("output_stride replaces last_stride: set last_stride=None with output_stride.")
        if self.drc and not self.siamese:
            raise ValueError("drc=True needs siamese=True: the DRC loss compares the two branches' CAMs.")
        if not isinstance(self.device, str) or not (
            self.device in ("auto", "cpu") or self.device.startswith("cuda") or self.device == "mps"
        ):
            raise ValueError(f"device={self.device!r} is not valid; use 'auto', 'cpu' or 'cuda[:N]'.")
        small_h, small_w = self.small_size
        if min(small_h, small_w) < 8:
            raise ValueError(
                f"scale_factor={self.scale_factor} makes the small view {small_h}x{small_w} px; "
                "use a larger scale_factor or input size (at least 8 px per side)."
            )

    def _validate_pretrained(self) -> None:
        from sisnet.weights import check_pretrained  # the one definition of what ``pretrained`` may be

        self.pretrained = check_pretrained(self.pretrained)

    def _validate_backbone(self) -> None:
        from sisnet.model import check_backbone  # the one check of a backbone name

        check_backbone(self.backbone)

    # ------------------------------------------------------------------ derived values
    def view_spec(self) -> ViewSpec:
        """The two views' definition (sizes, scale, small view, augmentation) that the transforms take."""
        return ViewSpec(self.img_height, self.img_width, self.scale_factor, self.small_view, self.flip_prob,
                        self.pad_px, self.erasing_prob)

    @property
    def small_size(self) -> tuple[int, int]:
        """(height_px, width_px) of the second-scale view as fed to the network."""
        return self.view_spec().small_size

    @property
    def native_small_size(self) -> tuple[int, int]:
        """(height_px, width_px) of the image after down-scaling by ``scale_factor``."""
        return self.view_spec().native_small_size

    @property
    def batch_size(self) -> int:
        return self.P * self.K

    def eval_epochs(self) -> list[int]:
        """Epochs (1-based) after which the run evaluates: every ``eval_every`` and the last ``eval_last``."""
        out = {e for e in range(1, self.epochs + 1) if self.eval_every and e % self.eval_every == 0}
        out |= set(range(max(1, self.epochs - self.eval_last + 1), self.epochs + 1))
        out.add(self.epochs)
        return sorted(out)

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (tuples become lists); round-trips through :func:`config_from_dict`."""
        d = dataclasses.asdict(self)
        d["milestones"] = list(self.milestones)
        return d

    def run_id(self, *, precision: str, data_fingerprint: str, bn_group: int = 1) -> str:
        """The runs-cache key: 12 hex digits of sha256 over what changes a run's result.

        That is every field except those that only change how fast or where it runs (profile name,
        num_workers, runs_dir, cache_images, sync_bn), with ``device`` and ``amp`` replaced by the effective
        ``precision`` they give (``"fp32"``, ``"bf16"`` or ``"fp16"``, see :func:`sisnet.utils.precision_name`),
        plus ``data_fingerprint`` (:meth:`sisnet.data.ReIDDataset.fingerprint`), so that a CPU (fp32) run never
        answers a GPU (bf16) request and replaced data is never answered from the cache. ``bn_group`` > 1 marks
        a multi-process run whose BatchNorm statistics are per process (no ``sync_bn``): it computes something else
        than the single-process run, so it gets another key (1 leaves the key as it was). Stable across
        processes and Python versions (sha256 of sorted JSON). Use :func:`sisnet.runs.run_key`, which derives
        both from the config, the device and the dataset; this method only hashes.
        """
        from sisnet.utils import PRECISIONS

        if precision not in PRECISIONS:
            raise ValueError(f"precision={precision!r} is not valid; choose one of {list(PRECISIONS)}.")
        if not isinstance(data_fingerprint, str) or not data_fingerprint:
            raise ValueError("data_fingerprint must be a non-empty string (sisnet.data.ReIDDataset.fingerprint()).")
        d = {k: v for k, v in self.to_dict().items() if k not in _NON_RESULT_FIELDS}
        d["precision"], d["data_fingerprint"] = precision, data_fingerprint
        if int(bn_group) != 1:
            d["bn_group"] = int(bn_group)
        blob = json.dumps(d, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:12]

    def replace(self, **overrides: Any) -> "TrainConfig":
        """A copy with ``overrides`` applied (validated like :func:`get_config`)."""
        _check_keys(overrides)
        return dataclasses.replace(self, **overrides)


_FIELD_NAMES = tuple(f.name for f in dataclasses.fields(TrainConfig))


def _check_keys(overrides: dict[str, Any]) -> None:
    renamed = [k for k in overrides if k in _RENAMED]
    if renamed:
        raise ValueError(
            f"Config parameter {renamed[0]!r} is now called {_RENAMED[renamed[0]]!r} (one dataset's folder, e.g. "
            f"'data/synthetic'); 'data_root' means the folder that holds all datasets (sisnet.reproduce --data-root)."
        )
    unknown = [k for k in overrides if k not in _FIELD_NAMES or k == "profile"]
    if unknown:
        hints = []
        for k in unknown:
            close = difflib.get_close_matches(k, _FIELD_NAMES, n=3)
            hints.append(f"{k!r}" + (f" (did you mean {close}?)" if close else ""))
        raise ValueError(
            f"Unknown config parameter(s): {', '.join(hints)}. Valid parameters: {sorted(set(_FIELD_NAMES) - {'profile'})}."
        )


# Profile values (the module docstring says why each was chosen). Fields not named keep the
# TrainConfig defaults, which are the paper / Bag-of-Tricks values.
PROFILES: dict[str, dict[str, Any]] = {
    "smoke": dict(
        backbone="resnet18", pretrained=False, last_stride=1,
        img_height=64, img_width=32, pad_px=3, P=4, K=2,
        epochs=2, steps_per_epoch=3, warmup_epochs=1, milestones=(2,),
        eval_every=1, eval_last=2, eval_batch_size=64, val_ids=4,
        num_workers=0, cache_images=True, channels_last=False,
    ),
    # Chosen on the validation split (results/cpu/synthetic/tables/validation_choices.csv; a test checks that these
    # values are the sweep's winners): input size, lr, schedule, triplet features, second view, BN, DRC weight.
    "cpu": dict(
        backbone="mobilenetv2_100", pretrained="auto", last_stride=1,
        img_height=128, img_width=64, pad_px=5, P=8, K=4, small_view="degrade",
        epochs=10, steps_per_epoch=35, lr=1e-3, warmup_epochs=1, milestones=(8,),
        triplet_normalize=False, precise_bn=8, drc_weight=1.0,
        eval_every=0, eval_last=2, eval_batch_size=256,
        num_workers=0, cache_images=True, channels_last=True,
    ),
    "paper": dict(
        backbone="resnet50.tv_in1k", pretrained="auto", last_stride=1,
        img_height=256, img_width=128, scale_factor=0.5, P=16, K=4,
        epochs=120, lr=3.5e-4, weight_decay=5e-4, warmup_epochs=10, warmup_factor=0.1,
        milestones=(40, 70), gamma=0.1, label_smoothing=0.1, triplet_margin=0.3,
        erasing_prob=0.5, flip_prob=0.5, pad_px=10,
        precise_bn=8,  # adopted from the cpu profile's validation choice (issue: what wins, in both profiles)
        eval_every=10, eval_last=5, eval_batch_size=256,
        num_workers="auto", cache_images=True, channels_last=True,
    ),
}
PROFILE_NAMES = tuple(PROFILES)


@dataclass(frozen=True)
class ProfileSettings:
    """What a profile decides besides :class:`TrainConfig` fields (read by the notebooks, reproduce, benchmark).

    ``seeds``: the ablation's seeds (5 for ``cpu``: paired intervals over seeds); ``synthetic_size``: the generated set's size
    (``tiny`` keeps smoke runs in seconds); ``num_threads``: torch CPU threads (``None`` = torch's default;
    ``smoke`` uses 1: its tensors are tiny, and on a busy 2-core machine one thread measured 3-10x faster than
    two, which wait on each other); ``footage_frames`` / ``footage_people``: the rendered street sequence of
    notebook 08; ``init_comparison``: whether notebook 02 trains the ImageNet-vs-random comparison (a second,
    random-init run per seed; on for ``cpu`` and ``smoke``, off for ``paper``, where it would be 120 more
    ResNet-50 epochs per seed; the notebook's ``init_comparison`` parameter overrides it); ``run_threads``: torch
    threads of every training run (``None``: the process's setting). When set, the notebooks train independent
    runs in parallel worker processes (the cores divided by it, :mod:`sisnet.parallel`), and every run, in a
    worker or in the kernel, uses that many threads, so its numbers do not depend on how many ran at once.
    """

    seeds: tuple[int, ...]
    synthetic_size: str
    num_threads: int | None
    footage_frames: int
    footage_people: int
    init_comparison: bool = True
    run_threads: int | None = None


PROFILE_SETTINGS: dict[str, ProfileSettings] = {
    "smoke": ProfileSettings(seeds=(0,), synthetic_size="tiny", num_threads=1, footage_frames=40, footage_people=10,
                             run_threads=1),
    "cpu": ProfileSettings(seeds=(0, 1, 2, 3, 4), synthetic_size="default", num_threads=None, footage_frames=200,
                           footage_people=30, init_comparison=False, run_threads=1),
    "paper": ProfileSettings(seeds=(0,), synthetic_size="default", num_threads=None, footage_frames=200,
                             footage_people=30, init_comparison=False),
}


def profile_settings(profile: str) -> ProfileSettings:
    """The :class:`ProfileSettings` of ``profile`` (``ValueError`` naming the profiles otherwise)."""
    if profile not in PROFILE_SETTINGS:
        raise ValueError(f"profile={profile!r} is not a profile; choose one of {list(PROFILE_NAMES)}.")
    return PROFILE_SETTINGS[profile]


def dataset_folder(dataset: str, data_root: str | Path, profile: str) -> Path:
    """Folder of ``dataset`` under ``data_root`` (the folder that holds all datasets and the runs cache).

    ``synthetic`` lives at ``<data_root>/synthetic`` (default size) or ``<data_root>/synthetic-<size>`` (e.g.
    ``synthetic-tiny`` for the ``smoke`` profile), so a smoke run never overwrites the default data. The real
    datasets are looked up at ``<data_root>/<name>`` (the loader accepts the archive folder or its parent).
    """
    data_root = Path(data_root)
    if dataset == "synthetic":
        size = profile_settings(profile).synthetic_size
        return data_root / ("synthetic" if size == "default" else f"synthetic-{size}")
    return data_root / dataset


def runs_folder(data_root: str | Path) -> Path:
    """The training-runs cache under ``data_root``: ``<data_root>/runs``."""
    return Path(data_root) / "runs"


def get_config(profile: str = "cpu", **overrides: Any) -> TrainConfig:
    """The named profile's config with flat ``overrides`` applied, validated.

    >>> get_config("smoke", epochs=1, drc=True).drc
    True

    Raises ``ValueError`` for an unknown profile, an unknown parameter or a bad value.
    """
    if profile not in PROFILES:
        close = difflib.get_close_matches(str(profile), PROFILE_NAMES, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"Unknown profile {profile!r}; choose one of {list(PROFILE_NAMES)}.{hint}")
    _check_keys(overrides)
    values = {**PROFILES[profile], **overrides}
    return TrainConfig(profile=profile, **values)


def config_from_dict(d: dict[str, Any]) -> TrainConfig:
    """Rebuild a :class:`TrainConfig` from :meth:`TrainConfig.to_dict` output (e.g. a checkpoint).

    The pretrained-weights file is not re-checked (a saved model no longer needs it).
    """
    d = {_RENAMED.get(k, k): v for k, v in d.items()}
    unknown = [k for k in d if k not in _FIELD_NAMES]
    if unknown:
        raise ValueError(
            f"Config dict has unknown parameter(s) {unknown}; it was written by another version of sisnet."
        )
    if isinstance(d.get("pretrained"), str) and d["pretrained"].lower().endswith(_weight_suffixes()):
        if not Path(d["pretrained"]).is_file():
            d["pretrained"] = False
    return TrainConfig(**d)


def _weight_suffixes() -> tuple[str, ...]:
    from sisnet.weights import WEIGHT_SUFFIXES

    return WEIGHT_SUFFIXES


# Table 2 of the paper: method x loss. Baseline = one (full-resolution) scale only.
_METHODS = {
    "Baseline": dict(siamese=False, drc=False),
    # the augmentation control (not in the paper): one branch, each image replaced by the second-scale view
    # with probability 0.5, so it sees low-resolution images as often as SiSNet does without the siamese branch
    "Baseline+LR aug.": dict(siamese=False, drc=False, low_res_aug=0.5),
    "SiSNet": dict(siamese=True, drc=False),
    "SiSNet+DRC": dict(siamese=True, drc=True),
}
_LOSSES = {"S.": dict(triplet=False), "S.+T.": dict(triplet=True)}

TABLE2_GRID: list[dict[str, Any]] = [
    {"name": method, "loss": loss, "overrides": {**m_over, **l_over}}
    for loss, l_over in _LOSSES.items()
    for method, m_over in _METHODS.items()
]
