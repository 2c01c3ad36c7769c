"""Two-scale input pipeline: decode (once, to RAM), augment, and derive the second-scale view.

Train view (strong-baseline recipe, on ``uint8`` tensors, see :class:`TwoScaleTransform`):
resize to ``(H, W)`` -> horizontal flip -> pad ``pad_px`` + random crop ``(H, W)`` -> float in [0, 1] ->
ImageNet normalisation -> random erasing (on the normalised image, fill 0 = the ImageNet mean).
The second-scale view is then made from that SAME augmented tensor (so flip, crop and erased box
are shared and the two branches' CAMs are comparable):

- ``small_view="native"``: bilinear (antialiased) resize to ``(round(H*s), round(W*s))``;
- ``small_view="degrade"``: the same down-scaling, then bilinear up-scaling back to ``(H, W)``.

Where each part runs (the device-fed path)
------------------------------------------
Each transform has two halves. ``prepare`` is the per-sample CPU half that runs in the data-loader
workers: resize, flip and pad + crop on ``uint8``, and drawing the erasing box, all from the sample's
own ``random.Random(sample_seed)``. ``finish`` is the batched half that runs on the training device:
``uint8 -> float``, normalisation, erasing (the boxes travel with the batch as ``(B, 4)`` integers) and
the second view. So batches leave the workers as ``uint8`` (4x smaller in shared memory and over PCIe
than float32, and the small view is not shipped at all), and the arithmetic-heavy part is done on the
GPU. Calling a transform (``transform(img, rng)``) runs both halves on one image on the CPU: same
values, same random draws.

Decoding and caching
--------------------
:func:`decode_images` decodes every image of a split with PIL, resizes it to ``(H, W)`` once and
keeps the result as one contiguous ``uint8`` tensor ``(N, 3, H, W)`` in RAM (the synthetic set's
~2k crops at 128x64 are ~50 MB; Market-1501's 12,936 training crops at 256x128 ~1.3 GB). Resizing
is deterministic so doing it once is exact, and after that a training sample costs only the
cheap ``uint8`` geometry of :meth:`TwoScaleTransform.prepare`, so on 2 cores the data path needs no worker
processes (``num_workers=0``) and never bottlenecks the model. Set ``cache_images=False`` for datasets that
do not fit in RAM: images are then decoded in ``__getitem__``.

Bad images (policy: refuse, listing every bad file)
---------------------------------------------------
With caching, every image is fully decoded before training starts; all files that fail
(corrupt or truncated JPEG, a non-image file with an image name, a missing file) are collected and
reported together in one :class:`BadImageError` (a ``ValueError``) naming each file and the fix,
before any work is done. Without caching the first bad file met raises the same error naming it.
Nothing is silently skipped: a skipped image would change identities/counts and make results
incomparable with published numbers.
"""
from __future__ import annotations

import dataclasses

import math
import os
import random
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageFile
from torch.utils.data import Dataset
from torchvision.transforms import v2

__all__ = [
    "SMALL_VIEWS",
    "ViewSpec",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "BadImageError",
    "decode_image",
    "decode_images",
    "decode_images_cached",
    "TwoScaleTransform",
    "EvalTransform",
    "TwoScaleDataset",
    "make_small_view",
    "degrade",
    "NO_ERASE",
    "erase_boxes",
]

#: How the second-scale view is fed: at its native lower resolution, or degraded back to the full size.
SMALL_VIEWS = ("native", "degrade")


@dataclass(frozen=True)
class ViewSpec:
    """What the two views of an image are: the only input the transforms need (resolved once from a config).

    ``height``/``width``: the full-scale input; ``scale``: the second scale's factor; ``small_view``: one of
    :data:`SMALL_VIEWS`; ``flip_prob``, ``pad_px``, ``erasing_prob``: the training augmentation.
    """

    height: int
    width: int
    scale: float = 0.5
    small_view: str = "native"
    flip_prob: float = 0.5
    pad_px: int = 10
    erasing_prob: float = 0.5

    @property
    def size(self) -> tuple[int, int]:
        """(height_px, width_px) of the full-scale view."""
        return self.height, self.width

    @property
    def native_small_size(self) -> tuple[int, int]:
        """(height_px, width_px) of the image after down-scaling by ``scale``."""
        return max(1, round(self.height * self.scale)), max(1, round(self.width * self.scale))

    @property
    def small_size(self) -> tuple[int, int]:
        """(height_px, width_px) of the second-scale view as fed to the network."""
        return self.size if self.small_view == "degrade" else self.native_small_size


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Never decode truncated files silently (PIL's default, asserted here so a notebook cannot flip it for us).
ImageFile.LOAD_TRUNCATED_IMAGES = False


class BadImageError(ValueError):
    """One or more image files could not be decoded; ``.files`` lists ``(path, reason)``."""

    def __init__(self, bad: Sequence[tuple[str, str]], total: int) -> None:
        self.files = list(bad)
        shown = "\n".join(f"  {p}: {r}" for p, r in self.files[:20])
        more = f"\n  ... and {len(self.files) - 20} more" if len(self.files) > 20 else ""
        super().__init__(
            f"{len(self.files)} of {total} image file(s) could not be read (corrupt, truncated or not an image):\n"
            f"{shown}{more}\nFix: re-extract/re-download the dataset, or delete these files "
            "(they are identified by file name, so removing them removes those samples)."
        )


def decode_image(path: str | Path, size_hw: tuple[int, int] | None = None) -> torch.Tensor:
    """Decode one file to a ``uint8`` tensor ``(3, H, W)``, resized (bilinear) to ``size_hw`` if given.

    Raises :class:`BadImageError` naming the file when it cannot be decoded.
    """
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if size_hw is not None and (im.height, im.width) != tuple(size_hw):
                im = im.resize((size_hw[1], size_hw[0]), Image.BILINEAR)
            arr = np.asarray(im, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise BadImageError([(str(path), f"{type(exc).__name__}: {exc}")], 1) from exc
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


def decode_images(
    paths: Sequence[str | Path], size_hw: tuple[int, int], progress: bool = False, desc: str = "decode"
) -> torch.Tensor:
    """Decode and resize every file into one ``uint8`` tensor ``(N, 3, H, W)``.

    All files are tried; every failure is reported together in one :class:`BadImageError`.
    """
    out = torch.empty((len(paths), 3, *size_hw), dtype=torch.uint8)
    bad: list[tuple[str, str]] = []
    it: Any = paths
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(paths, desc=desc, leave=False, unit="img")
    for i, p in enumerate(it):
        try:
            out[i] = decode_image(p, size_hw)
        except BadImageError as exc:
            bad.extend(exc.files)
    if bad:
        raise BadImageError(bad, len(paths))
    return out


_DECODED: "OrderedDict[tuple, torch.Tensor]" = OrderedDict()
_DECODED_MAX_ENTRIES = 6


def decode_images_cached(paths: Sequence[str], size_hw: tuple[int, int], desc: str = "decode") -> torch.Tensor:
    """:func:`decode_images` with a small in-process cache (key: paths, file sizes and mtimes, size).

    The Table 2 grid trains many runs on the same images in one process; decoding ~3.7k JPEGs costs a few
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


def make_small_view(x: torch.Tensor, spec: ViewSpec) -> torch.Tensor:
    """Second-scale view of float image(s) ``(3, H, W)`` or ``(B, 3, H, W)``.

    ``native``: ``(.., 3, round(H*s), round(W*s))``; ``degrade``: down then back up, ``(.., 3, H, W)``.
    """
    batched = x.dim() == 4
    xb = x if batched else x.unsqueeze(0)
    small = F.interpolate(xb, size=spec.native_small_size, mode="bilinear", align_corners=False, antialias=True)
    if spec.small_view == "degrade":
        small = F.interpolate(small, size=xb.shape[-2:], mode="bilinear", align_corners=False)
    return small if batched else small.squeeze(0)


def low_resolution_augment(full: torch.Tensor, spec: ViewSpec, replace: torch.Tensor) -> torch.Tensor:
    """The one-branch control's augmentation: rows of ``full`` ``(B, 3, H, W)`` where ``replace`` ``(B,)`` is True
    become the second-scale view made by SiSNet's operator (:func:`make_small_view`: down-sampled by the spec's
    scale with anti-aliasing), up-sampled back to ``(H, W)`` so that the batch keeps one size. With
    ``small_view="degrade"`` that is exactly the view SiSNet's second branch sees; with ``"native"`` it is that
    view re-sized to the full size (a one-branch batch cannot hold two sizes).
    """
    if not bool(replace.any()):
        return full
    small = make_small_view(full, dataclasses.replace(spec, small_view="degrade"))
    return torch.where(replace.to(full.device).view(-1, 1, 1, 1), small, full)


def degrade(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Down-scale float image(s) ``(.., 3, H, W)`` by ``factor`` and up-scale back to ``(H, W)`` (bilinear).

    Used for the cross-scale protocol (queries seen at a lower resolution). ``factor=1`` returns ``x``.
    """
    if factor == 1.0:
        return x
    batched = x.dim() == 4
    xb = x if batched else x.unsqueeze(0)
    h, w = xb.shape[-2:]
    size = (max(1, round(h * factor)), max(1, round(w * factor)))
    small = F.interpolate(xb, size=size, mode="bilinear", align_corners=False, antialias=True)
    up = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    return up if batched else up.squeeze(0)


#: The erasing box ``(top, left, height, width)`` of a sample that is not erased.
NO_ERASE = (0, 0, 0, 0)


class TwoScaleTransform:
    """Training augmentation: ``uint8 (3, h, w)`` -> ``(full (3, H, W), small (3, H', W'))`` float tensors.

    Same recipe and parameter distributions as torchvision's ``RandomHorizontalFlip``, ``Pad`` (zero
    fill) + ``RandomCrop`` and ``RandomErasing(scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0)``, but
    written with plain tensor ops and an explicit ``random.Random`` because the v2 transform classes
    draw from torch's global RNG (so per-sample seeding would need ``fork_rng``, ~0.25 ms a sample)
    and carry ~0.3 ms of Python overhead a sample; this version is ~4x cheaper and its randomness is a
    pure function of the sample seed (exact resume, independent of worker count).

    Split in two (see the module doc): :meth:`prepare` (CPU, per sample, ``uint8``) and :meth:`finish`
    (batched, on any device); calling the transform runs both on one image.
    """

    erase_scale = (0.02, 0.33)
    erase_ratio = (0.3, 3.3)

    def __init__(self, spec: ViewSpec) -> None:
        self.spec = spec
        self.size = spec.size
        self.resize = v2.Resize(self.size, antialias=True)
        self._norm = _Normaliser()

    def __call__(self, img: torch.Tensor, rng: random.Random | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        image, box = self.prepare(img, rng)
        full, small = self.finish(image[None], box[None])
        return full[0], small[0]

    def prepare(self, img: torch.Tensor, rng: random.Random | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The CPU half: ``(uint8 (3, H, W) resized, flipped, padded + cropped; erasing box (4,) int64)``.

        The box is ``(top, left, height, width)`` of the region to erase, :data:`NO_ERASE` for none. Draws
        from ``rng`` in a fixed order (flip, crop offsets, erasing), so a sample seed fixes everything.
        """
        cfg = self.spec
        rng = rng if rng is not None else random.Random(torch.randint(0, 2**62, ()).item())
        if tuple(img.shape[-2:]) != self.size:
            img = self.resize(img)
        if rng.random() < cfg.flip_prob:
            img = img.flip(-1)
        if cfg.pad_px:
            top, left = rng.randint(0, 2 * cfg.pad_px), rng.randint(0, 2 * cfg.pad_px)
            img = _shifted_crop(img, top - cfg.pad_px, left - cfg.pad_px)
        box = NO_ERASE
        if cfg.erasing_prob > 0 and rng.random() < cfg.erasing_prob:
            box = self._erase_box(rng) or NO_ERASE
        return img.contiguous(), torch.tensor(box, dtype=torch.int64)

    def finish(self, images: torch.Tensor, boxes: torch.Tensor | None = None,
               small: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The batched half, on ``images``' device: ``uint8 (B, 3, H, W)`` -> ``(full, small or None)``, float32.

        Normalises (the ImageNet mean and std), zeroes each sample's erasing box (``boxes`` ``(B, 4)``; 0 = the
        ImageNet mean after normalising) and makes the second view from the erased image. ``small=False``
        skips the second view (the Baseline does not use it).
        """
        full = self._norm(images)
        if boxes is not None and self.spec.erasing_prob > 0:
            full = erase_boxes(full, boxes.to(full.device, non_blocking=True))
        return full, make_small_view(full, self.spec) if small else None

    def _erase_box(self, rng: random.Random) -> tuple[int, int, int, int] | None:
        H, W = self.size
        area = H * W
        log_r = (math.log(self.erase_ratio[0]), math.log(self.erase_ratio[1]))
        for _ in range(10):  # same rejection loop as torchvision's RandomErasing.make_params
            erase_area = area * rng.uniform(*self.erase_scale)
            aspect = math.exp(rng.uniform(*log_r))
            h = int(round(math.sqrt(erase_area * aspect)))
            w = int(round(math.sqrt(erase_area / aspect)))
            if h < H and w < W:
                return rng.randint(0, H - h), rng.randint(0, W - w), h, w
        return None


def _shifted_crop(img: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``pad(img, |shift|)`` (zero fill) then the ``(H, W)`` crop whose origin is ``(dy, dx)`` from the image's.

    Equals ``F.pad(img, (p, p, p, p))[:, dy + p : dy + p + H, dx + p : dx + p + W]`` without building the
    padded copy (one zero-filled output, one copy of the overlap).
    """
    _, h, w = img.shape
    out = torch.zeros_like(img)
    src_r, dst_r = slice(max(0, dy), min(h, h + dy)), slice(max(0, -dy), min(h, h - dy))
    src_c, dst_c = slice(max(0, dx), min(w, w + dx)), slice(max(0, -dx), min(w, w - dx))
    out[:, dst_r, dst_c] = img[:, src_r, src_c]
    return out


def erase_boxes(full: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Zero ``full[b, :, top:top+h, left:left+w]`` for each row ``(top, left, h, w)`` of ``boxes``, in place.

    On an accelerator: one masked fill for the whole batch (no loop over samples, no host synchronisation). On
    the CPU: one slice assignment per erased sample (reading the boxes costs nothing there; the masks would).
    """
    if full.device.type == "cpu":
        for b, (top, left, h, w) in enumerate(boxes.tolist()):
            if h and w:
                full[b, :, top : top + h, left : left + w] = 0.0
        return full
    H, W = full.shape[-2:]
    top, left, h, w = boxes.unbind(1)
    rows = torch.arange(H, device=full.device)
    cols = torch.arange(W, device=full.device)
    in_rows = (rows >= top[:, None]) & (rows < (top + h)[:, None])  # (B, H)
    in_cols = (cols >= left[:, None]) & (cols < (left + w)[:, None])  # (B, W)
    return full.masked_fill_((in_rows[:, :, None] & in_cols[:, None, :])[:, None], 0.0)


class _Normaliser:
    """``uint8 (.., 3, H, W)`` -> ``(x / 255 - mean) / std`` float32, with the constants cached per device."""

    def __init__(self) -> None:
        self._consts: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        dev = images.device
        if dev not in self._consts:
            scale, shift = _normalisation_constants()
            self._consts[dev] = (scale.to(dev), shift.to(dev))
        scale, shift = self._consts[dev]
        return images.float().mul_(scale).sub_(shift)  # = Normalize(ToDtype(scale=True)(img))

    def __getstate__(self) -> dict:  # device tensors are not shipped to data-loader workers
        return {"_consts": {}}


def _normalisation_constants() -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel ``scale, shift`` with ``x_uint8 * scale - shift == (x / 255 - mean) / std``."""
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return 1.0 / (255.0 * std), mean / std


class EvalTransform:
    """Test-time: resize + normalise; ``query_scale < 1`` degrades the image first (cross-scale queries).

    ``uint8 (3, h, w)`` -> ``(full (3, H, W), small (3, H', W'))``. Split like :class:`TwoScaleTransform`:
    :meth:`prepare` (resize, CPU) and :meth:`finish` (normalise, degrade, second view; batched, any device).
    """

    def __init__(self, spec: ViewSpec, query_scale: float = 1.0) -> None:
        if not 0 < query_scale <= 1:
            raise ValueError(f"query_scale={query_scale!r} is not valid; it must be in (0, 1].")
        self.spec = spec
        self.query_scale = float(query_scale)
        self.resize = v2.Resize(spec.size, antialias=True)
        self._norm = _Normaliser()

    def __call__(self, img: torch.Tensor, rng: random.Random | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        image, _ = self.prepare(img, rng)
        full, small = self.finish(image[None])
        return full[0], small[0]

    def prepare(self, img: torch.Tensor, rng: random.Random | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The CPU half: ``(uint8 (3, H, W), the box (4,) of no erasing)``."""
        if tuple(img.shape[-2:]) != self.spec.size:
            img = self.resize(img)
        return img.contiguous(), torch.tensor(NO_ERASE, dtype=torch.int64)

    def finish(self, images: torch.Tensor, boxes: torch.Tensor | None = None,
               small: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The batched half: ``uint8 (B, 3, H, W)`` -> ``(full, small or None)``; ``boxes`` is ignored."""
        full = degrade(self._norm(images), self.query_scale)
        return full, make_small_view(full, self.spec) if small else None


class TwoScaleDataset(Dataset):
    """Records -> ``(img_full (3, H, W), img_small (3, H', W'), pid, camid)``.

    Args:
        records: sequence of ``(path, pid, camid)`` (``sisnet.data.Record``).
        transform: :class:`TwoScaleTransform` (train) or :class:`EvalTransform`.
        images: optional pre-decoded ``uint8 (N, 3, H, W)`` tensor (see :func:`decode_images`);
            ``None`` decodes each file on access.
        size_hw: decode size when ``images`` is None (default: the transform's full-scale size).
        raw: return the transform's CPU half only, ``(uint8 (3, H, W), erasing box (4,), pid, camid)``; the
            batch is finished on the device with ``transform.finish(images, boxes)`` (the device-fed path).

    Indices may be plain ints or ``(index, sample_seed)`` pairs (from
    :class:`~sisnet.data.sampler.RandomIdentitySampler` with ``with_sample_seeds=True``): the
    augmentation of that sample is then drawn from ``random.Random(sample_seed)`` (the global RNGs
    are untouched), so it is identical whether
    the sample is loaded in the main process or any worker, and after a resume.
    """

    def __init__(
        self,
        records: Sequence[Any],
        transform: TwoScaleTransform | EvalTransform,
        images: torch.Tensor | None = None,
        size_hw: tuple[int, int] | None = None,
        raw: bool = False,
    ) -> None:
        self.records = list(records)
        self.raw = bool(raw)
        self.transform = transform
        if images is not None and len(images) != len(self.records):
            raise ValueError(f"images has {len(images)} entries for {len(self.records)} records.")
        self.images = images
        self.size_hw = size_hw or transform.spec.size

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, int, int]:
        """``(full, small, pid, camid)``, or with ``raw`` ``(uint8 image, erasing box, pid, camid)``."""
        if isinstance(key, (tuple, list)):
            index, sample_seed = int(key[0]), int(key[1])
        else:
            index, sample_seed = int(key), None
        rec = self.records[index]
        img = self.images[index] if self.images is not None else decode_image(rec[0], self.size_hw)
        rng = random.Random(sample_seed) if sample_seed is not None else None
        first, second = (self.transform.prepare if self.raw else self.transform)(img, rng)
        return first, second, int(rec[1]), int(rec[2])

