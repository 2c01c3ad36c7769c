"""Class activation maps (CAM, Zhou et al. 2016) for :class:`sisnet.model.SiSNet`, with the BNNeck folded in.

The classifier sees ``bn(GAP(F))``, not ``GAP(F)``. A BatchNorm1d is an affine map per channel,
``bn(x) = a * x + b`` with ``a = gamma / sqrt(var + eps)`` and ``b = beta - a * mean``, so for class c

    logit_c = W_c . bn(GAP(F)) = mean_ij( sum_k W_ck a_k F_kij ) + W_c . b .

The raw CAM is the term inside the spatial mean:

    raw_cam_c(i, j) = sum_k W_ck a_k F_kij          (shape (B, h, w))

hence ``mean_ij raw_cam_c = logit_c - W_c . b``; in eval mode ``W_c . b`` is a constant of the trained
model, independent of the input (tests/test_cam.py checks exactly this).

Which statistics are folded in (decision): the same ones the BNNeck itself uses in that mode. In eval mode
the running mean/var; in train mode (or without running statistics) the *batch* statistics of
``GAP(F)`` over the batch passed in, computed exactly as BatchNorm does (biased variance). So during
training the CAM is the decomposition of the very logits being trained (the identity above holds with the
batch ``b``), which is what the DRC loss should make consistent; after training it is the decomposition of
the logits used at test time. Pass the whole branch batch (as returned by ``SiSNet.forward``) so that the
batch statistics match the forward pass.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from sisnet.distributed import is_synced_bn, moments

__all__ = ["bnneck_affine", "raw_cam", "similarity_map", "normalize_cam", "resize_to_common", "overlay_cam", "NORMALIZATIONS"]

NORMALIZATIONS = ("minmax", "softmax", "none")


def bnneck_affine(model: Any, feature_map: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """The BNNeck as ``bn(x) = a * x + b``; returns ``(a, b)``, each (C,), float32.

    Uses running statistics when the BNNeck is in eval mode, else the batch statistics of
    ``feature_map.mean((2, 3))`` (``feature_map`` (B, C, h, w) required then, B >= 2), taken over every
    process's batch when the BNNeck is a synced BatchNorm (``sync_bn`` in a torchrun run), as the BNNeck does.
    """
    bn = model.bottleneck
    gamma = bn.weight.float() if bn.weight is not None else torch.ones(bn.num_features, device=bn.running_mean.device)
    beta = bn.bias.float() if bn.bias is not None else torch.zeros_like(gamma)
    use_batch_stats = bn.training or bn.running_mean is None
    if use_batch_stats:
        if feature_map is None:
            raise ValueError("The BNNeck is in train mode (batch statistics): pass the branch's feature_map.")
        if feature_map.shape[0] < 2:
            raise ValueError(
                "The BNNeck is in train mode and needs >= 2 images for batch statistics; call model.eval() "
                "for single-image CAMs."
            )
        pooled = feature_map.float().mean(dim=(2, 3))
        mean, var, _ = moments(pooled, [0], synced=is_synced_bn(bn))
    else:
        mean = bn.running_mean.float()
        var = bn.running_var.float()
    a = gamma / torch.sqrt(var + bn.eps)
    b = beta - a * mean
    return a, b


def _class_index(class_idx: int | Tensor, batch: int, num_classes: int, device: torch.device) -> Tensor:
    if isinstance(class_idx, Tensor):
        idx = class_idx.to(device=device).long().reshape(-1)
        if idx.numel() == 1 and batch != 1:
            idx = idx.expand(batch)
        if idx.numel() != batch:
            raise ValueError(f"class_idx must be an int or a (B,) tensor with B={batch}; got shape {tuple(class_idx.shape)}.")
    elif isinstance(class_idx, (int, np.integer)) and not isinstance(class_idx, bool):
        idx = torch.full((batch,), int(class_idx), dtype=torch.long, device=device)
    else:
        raise TypeError(f"class_idx must be an int or a (B,) integer tensor, got {type(class_idx).__name__}.")
    # Checked on the CPU only: on an accelerator the check would stop the training step for a host sync, and an
    # out-of-range label fails in the indexing anyway (device-side assert).
    if idx.numel() and idx.device.type == "cpu" and (int(idx.min()) < 0 or int(idx.max()) >= num_classes):
        raise ValueError(
            f"class_idx out of range: values must lie in [0, {num_classes - 1}] (training identities), "
            f"got min {int(idx.min())}, max {int(idx.max())}."
        )
    return idx


def raw_cam(model: Any, feature_map: Tensor, class_idx: int | Tensor, detach_classifier: bool = False) -> Tensor:
    """Raw CAM ``sum_k W_ck a_k F_kij`` of class ``class_idx`` -> (B, h, w), float32.

    Args:
        model: a :class:`~sisnet.model.SiSNet` (needs ``bottleneck`` and ``classifier``).
        feature_map: (B, C, h, w) the branch's last feature map (``ModelOutput.feature_map``).
        class_idx: one class for all images (int) or one per image ((B,) tensor, e.g. the identity labels).
        detach_classifier: treat the classifier weights W and the folded BNNeck scale ``a`` as constants,
            so gradients reach only the backbone through ``feature_map``.

    Computed in float32 with autocast disabled (AMP-safe).
    """
    if not isinstance(feature_map, Tensor) or feature_map.dim() != 4:
        raise ValueError("feature_map must be a (B, C, h, w) tensor (ModelOutput.feature_map).")
    weight = model.classifier.weight  # (num_classes, C)
    if feature_map.shape[1] != weight.shape[1]:
        raise ValueError(
            f"feature_map has {feature_map.shape[1]} channels but the classifier expects {weight.shape[1]}: "
            f"pass the feature map produced by this model."
        )
    idx = _class_index(class_idx, feature_map.shape[0], weight.shape[0], feature_map.device)
    with torch.autocast(device_type=feature_map.device.type, enabled=False):
        fmap = feature_map.float()
        a, _ = bnneck_affine(model, fmap)
        w = weight.float()[idx]  # (B, C)
        if detach_classifier:
            w, a = w.detach(), a.detach()
        return torch.einsum("bc,bchw->bhw", w * a, fmap)


def similarity_map(model: Any, feature_map: Tensor, embedding: Tensor) -> Tensor:
    """Where a query resembles a gallery image: ``sum_k e_k a_k F_kij`` -> (B, h, w), float32.

    ``embedding`` (B, C) is the gallery image's retrieval feature (``ModelOutput.bn_feature``), L2-normalised
    here. The query's own retrieval feature is ``bn(GAP(F)) = a * GAP(F) + b``, so

        e . bn(GAP(F)) = mean_ij( sum_k e_k a_k F_kij ) + e . b ,

    the same decomposition as :func:`raw_cam` with the gallery feature in place of a classifier row: the map's
    mean plus a constant is the query's (unnormalised) similarity to that gallery image. Unlike a CAM it needs no
    training class, so it is defined for the unseen identities of a test set. Our reading: the paper draws CAMs
    only; this map is the companion's class-free counterpart (the spatial decomposition of a pooled-feature
    similarity, as in Stylianou et al., "Visualizing Deep Similarity Networks", WACV 2019).
    """
    if not isinstance(feature_map, Tensor) or feature_map.dim() != 4:
        raise ValueError("feature_map must be a (B, C, h, w) tensor (ModelOutput.feature_map).")
    if embedding.shape != feature_map.shape[:2]:
        raise ValueError(f"embedding must be (B, C) = {tuple(feature_map.shape[:2])} (one gallery feature per "
                         f"query), got {tuple(embedding.shape)}.")
    with torch.autocast(device_type=feature_map.device.type, enabled=False):
        fmap = feature_map.float()
        a, _ = bnneck_affine(model, fmap)
        e = F.normalize(embedding.float(), dim=1)
        return torch.einsum("bc,bchw->bhw", e * a, fmap)


def normalize_cam(cam: Tensor, method: str = "minmax", eps: float = 1e-6) -> Tensor:
    """Per-image normalisation over the last two (spatial) dimensions of ``cam`` (..., h, w).

    ``"minmax"``: ``(cam - min) / (max - min + eps)``, values in [0, 1] (default; a constant map -> 0).
    ``"softmax"``: a spatial softmax, the map becomes a distribution summing to 1 over the h*w positions.
    ``"none"``: returned unchanged.
    """
    if method not in NORMALIZATIONS:
        raise ValueError(f"normalization method must be one of {NORMALIZATIONS}, got {method!r}.")
    if cam.dim() < 2:
        raise ValueError(f"cam must have shape (..., h, w), got {tuple(cam.shape)}.")
    if method == "none":
        return cam
    flat = cam.flatten(-2)
    if method == "softmax":
        return flat.softmax(dim=-1).reshape(cam.shape)
    lo = flat.min(dim=-1, keepdim=True).values
    hi = flat.max(dim=-1, keepdim=True).values
    return ((flat - lo) / (hi - lo + eps)).reshape(cam.shape)


def _resize(cam: Tensor, size: tuple[int, int], mode: str) -> Tensor:
    if tuple(cam.shape[-2:]) == tuple(size):
        return cam
    kwargs = {"align_corners": False} if mode in ("bilinear", "bicubic") else {}
    return F.interpolate(cam.unsqueeze(1), size=size, mode=mode, **kwargs).squeeze(1)


def resize_to_common(
    cam_a: Tensor, cam_b: Tensor, size: tuple[int, int] | None = None, mode: str = "bilinear"
) -> tuple[Tensor, Tensor]:
    """Resize two CAM batches (B, h_a, w_a) and (B, h_b, w_b) to one size (B, H, W).

    ``size=None``: the larger map's size (per dimension, ``(max(h_a, h_b), max(w_a, w_b))``).
    ``mode``: an ``F.interpolate`` mode ("bilinear" default, "nearest", "bicubic", "area").
    """
    if cam_a.dim() != 3 or cam_b.dim() != 3:
        raise ValueError(f"CAMs must be (B, h, w); got {tuple(cam_a.shape)} and {tuple(cam_b.shape)}.")
    if cam_a.shape[0] != cam_b.shape[0]:
        raise ValueError(f"The two CAM batches differ in size: {cam_a.shape[0]} vs {cam_b.shape[0]} images.")
    if mode not in ("bilinear", "nearest", "bicubic", "area", "nearest-exact"):
        raise ValueError(f"mode must be 'bilinear', 'bicubic', 'nearest', 'nearest-exact' or 'area', got {mode!r}.")
    if size is None:
        size = (max(cam_a.shape[-2], cam_b.shape[-2]), max(cam_a.shape[-1], cam_b.shape[-1]))
    size = (int(size[0]), int(size[1]))
    if min(size) < 1:
        raise ValueError(f"size must be two positive ints (H, W), got {size}.")
    return _resize(cam_a, size, mode), _resize(cam_b, size, mode)


def overlay_cam(image: Any, cam: Any, alpha: float = 0.5, colormap: str = "jet") -> np.ndarray:
    """Heat map of ``cam`` over ``image``: a uint8 (H, W, 3) array.

    Args:
        image: (H, W, 3) or (H, W) uint8 array (floats in [0, 1] are scaled by 255), a PIL image, or a tensor.
        cam: (h, w) array/tensor (any range; min-max normalised here), resized bilinearly to (H, W).
        alpha: weight of the heat map, in [0, 1].
        colormap: a matplotlib colormap name.
    """
    import matplotlib

    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}.")
    img = np.asarray(image.detach().cpu() if isinstance(image, Tensor) else image)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise ValueError(f"image must be (H, W, 3) (channels last), got shape {img.shape}; for a CHW tensor use .permute(1, 2, 0).")
    img = img[:, :, :3]
    if np.issubdtype(img.dtype, np.floating):
        img = img * 255.0 if img.max() <= 1.0 else img
    img = np.clip(img.astype(np.float32), 0, 255)
    cam_t = torch.as_tensor(np.asarray(cam.detach().cpu() if isinstance(cam, Tensor) else cam), dtype=torch.float32)
    if cam_t.dim() != 2:
        raise ValueError(f"cam must be a single (h, w) map, got shape {tuple(cam_t.shape)}.")
    cam_t = normalize_cam(_resize(cam_t[None], (img.shape[0], img.shape[1]), "bilinear")[0])
    try:
        cmap = matplotlib.colormaps[colormap]
    except KeyError as exc:
        raise ValueError(f"Unknown matplotlib colormap {colormap!r}; try 'jet', 'viridis', 'inferno'.") from exc
    heat = cmap(cam_t.clamp(0, 1).numpy())[:, :, :3] * 255.0
    out = (1.0 - alpha) * img + alpha * heat
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
