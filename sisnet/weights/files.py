"""Weights files: hashing, reading a state dict safely, and checking it against a timm backbone's keys and shapes.

The one rule for what a weights file must hold (:func:`check_weights_file`); used by the resolver and by
:class:`sisnet.model.SiSNet`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import torch

from sisnet.utils import atomic_write

__all__ = ["WEIGHT_SUFFIXES", "PretrainedUnavailableError", "WeightsMismatchError", "MissingWeightsFileError",
           "PretrainedInfo", "sha256_bytes", "sha256_file", "convert_by_position", "check_state_dict",
           "check_weights_file", "load_state_dict_file", "save_safetensors"]

WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors", ".ckpt")


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


def save_safetensors(state_dict: Mapping[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    """Write ``state_dict`` (contiguous tensors) and ``metadata`` to ``path`` as safetensors, atomically."""
    from safetensors.torch import save as st_save

    blob = st_save({k: v.contiguous() for k, v in state_dict.items()}, metadata=metadata)
    with atomic_write(path, "wb") as fh:
        fh.write(blob)
