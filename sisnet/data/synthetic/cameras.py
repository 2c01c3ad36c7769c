"""The synthetic cameras: camera model, procedural backgrounds and :func:`render_capture` (one detection crop)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageFilter

from .people import VIEWS, Identity, render_person
from .settings import SyntheticConfig
from .streams import S_BACKGROUND, S_CAMERA


# ------------------------------------------------------------------------------------------------ camera
@dataclass(frozen=True)
class _Camera:
    index: int  # 0-based
    backgrounds: tuple[np.ndarray, ...]  # the scene pool (Hb, Wb, 3) uint8, shared by every camera
    gain: float
    cast: tuple[float, float, float]
    offset: float
    noise_sigma: float
    blur_px: float  # optical blur (Gaussian radius) at native resolution
    view_p: tuple[float, float, float]
    log_h: tuple[float, float]  # log person-height range
    far: bool = False  # a far camera of the far/near regime (generator version 4)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: tuple[int, int]) -> np.ndarray:
    """Low-frequency noise in [0, 1] of ``shape`` (H, W): random grid, bicubic-upsampled by PIL."""
    g = (rng.random(cells) * 255).astype(np.uint8)
    up = Image.fromarray(g).resize((shape[1], shape[0]), Image.BICUBIC)
    return np.asarray(up, dtype=np.float32) / 255.0


def background_texture(rng: np.random.Generator, kind: int, shape: tuple[int, int] = (384, 768)) -> np.ndarray:
    """A procedural background texture (H, W, 3) uint8; ``kind`` picks brick / tiles / foliage / shop front /
    pavement / poster wall. Vectorised numpy on index grids."""
    Hb, Wb = shape
    yy, xx = np.mgrid[0:Hb, 0:Wb]
    base = rng.integers(60, 200, size=3).astype(np.float32)
    alt = rng.integers(40, 220, size=3).astype(np.float32)
    low = _smooth_noise(rng, shape, (6, 12))[..., None]
    if kind == 0:  # brick wall
        bh = int(rng.integers(10, 20)); bw = int(bh * rng.uniform(2.0, 2.6))
        row = yy // bh
        col = (xx + (row % 2) * (bw // 2)) // bw
        tint = rng.uniform(0.8, 1.2, size=(Hb // bh + 2, Wb // bw + 3)).astype(np.float32)
        img = base * tint[row, col][..., None]
        mortar = ((yy % bh) < 2) | (((xx + (row % 2) * (bw // 2)) % bw) < 2)
        img[mortar] = alt * 0.5 + 100
    elif kind == 1:  # floor / wall tiles
        t = int(rng.integers(18, 48))
        chk = (((yy // t) + (xx // t)) % 2).astype(np.float32)[..., None]
        img = base * (1 - chk) + alt * chk
        img[(yy % t < 1) | (xx % t < 1)] *= 0.6
    elif kind == 2:  # foliage / park
        green = np.array([50, 110, 50], np.float32) * rng.uniform(0.7, 1.3, 3).astype(np.float32)
        fine = _smooth_noise(rng, shape, (48, 96))[..., None]
        img = green * (0.5 + 0.7 * fine) + 40 * low
    elif kind == 3:  # shop front: glass panels and mullions
        pw = int(rng.integers(50, 110))
        grad = (yy / Hb).astype(np.float32)[..., None]
        img = base * (0.7 + 0.5 * grad) + alt * 0.25 * low
        img[(xx % pw) < 6] = alt * 0.6
        band = (yy > Hb * 0.15) & (yy < Hb * 0.2)
        img[band] = alt
    elif kind == 4:  # pavement with stripes
        s = int(rng.integers(24, 60))
        stripe = ((yy + xx // 3) // s % 2).astype(np.float32)[..., None]
        img = base * (0.85 + 0.15 * stripe) * (0.8 + 0.4 * low)
    else:  # plain wall with posters
        img = base * (0.85 + 0.3 * low)
        for _ in range(int(rng.integers(6, 14))):
            y0, x0 = int(rng.integers(0, Hb - 40)), int(rng.integers(0, Wb - 30))
            ph, pw = int(rng.integers(30, 120)), int(rng.integers(20, 90))
            img[y0:y0 + ph, x0:x0 + pw] = rng.integers(20, 240, size=3)
    grain = rng.normal(0, 6, size=(Hb, Wb, 1)).astype(np.float32)
    return np.clip(img * (0.75 + 0.5 * low) + grain, 0, 255).astype(np.uint8)


#: Scenes in the shared background pool (every kind of :func:`background_texture` 6 times).
NUM_BACKGROUNDS = 36


@lru_cache(maxsize=4)
def _background_pool(seed: int) -> tuple[np.ndarray, ...]:
    """The scenes every capture draws its background from, independently of identity and camera.

    Generator version 3 (was: one fixed scene per camera). With one scene per camera and each identity seen by a
    subset of cameras, the background told the camera and so narrowed down the identity: the trained models'
    class activation maps lay on the background (0.16-0.20 of their mass on the person against 0.26 for a
    uniform map), leaving DRC nothing on the person to align. Now each capture draws its scene from this pool,
    so the background carries no information about who is in the crop; a camera keeps its optics (blur, noise,
    gain, colour cast) and its distance (person-height distribution).
    """
    return tuple(background_texture(np.random.default_rng([seed, S_BACKGROUND, i]), i % 6) for i in range(NUM_BACKGROUNDS))


@lru_cache(maxsize=64)
def _camera(seed: int, index: int, num_cameras: int, h_lo: int, h_hi: int, spread: float,
            gain: tuple[float, float], cast: float, far_cameras: int = 0,
            far_px: tuple[int, int] = (24, 48), near_px: tuple[int, int] = (96, 256)) -> _Camera:
    rng = np.random.default_rng([seed, S_CAMERA, index])
    if far_cameras:  # version 4: cameras 0..far_cameras-1 are far, the others near (log-uniform inside each range)
        rng_h = far_px if index < far_cameras else near_px
        log_h = (math.log(rng_h[0]), math.log(rng_h[1]))
    else:  # camera-dependent height distribution: cameras spread from far to near (random order)
        order = np.random.default_rng([seed, S_CAMERA, 10_001]).permutation(num_cameras)
        t = order[index] / max(1, num_cameras - 1)
        lo, hi = math.log(h_lo), math.log(h_hi)
        centre = lo + 0.25 * (hi - lo) + t * 0.5 * (hi - lo)
        ls = math.log(spread)
        log_h = (max(lo, centre - ls), min(hi, centre + ls))
    vp = rng.dirichlet([1.2, 1.2, 1.2]) * 0.7 + 0.1
    return _Camera(
        index=index, backgrounds=_background_pool(seed), gain=float(rng.uniform(*gain)),
        cast=tuple(float(x) for x in rng.uniform(1 - cast, 1 + cast, size=3)), offset=float(rng.uniform(-8, 8)),
        noise_sigma=float(rng.uniform(2.0, 7.0)), blur_px=float(rng.uniform(0.5, 0.9)), view_p=tuple(float(x) for x in vp / vp.sum()), log_h=log_h,
        far=bool(far_cameras) and index < far_cameras,
    )


def camera_model(seed: int, index: int, config: SyntheticConfig | None = None) -> _Camera:
    """The camera ``index`` (0-based) of the dataset generated with ``seed`` and ``config`` (default config)."""
    cfg = config or SyntheticConfig()
    if not 0 <= index < cfg.num_cameras:
        raise ValueError(f"camera index {index} is outside 0..{cfg.num_cameras - 1}.")
    return _camera(int(seed), int(index), cfg.num_cameras, cfg.height_px_range[0], cfg.height_px_range[1],
                   float(cfg.camera_height_spread), tuple(float(g) for g in cfg.camera_gain), float(cfg.camera_cast),
                   int(cfg.far_cameras), tuple(cfg.far_height_px), tuple(cfg.near_height_px))


def render_capture(identity: Identity, camera: _Camera, rng: np.random.Generator, *,
                   image_size: tuple[int, int] = (128, 64), junk: bool = False, height_px: int | None = None,
                   view: str | None = None) -> tuple[Image.Image, dict]:
    """One detection crop of ``identity`` seen by ``camera``: an RGB image of ``image_size`` (H, W).

    The person is drawn at a native height (drawn from the camera's distribution unless ``height_px`` is
    given) on a background crop of the matching native size; the crop gets the camera's optical blur,
    illumination, colour cast and noise, and is then resized to ``image_size``.
    Returns ``(image, info)`` with ``info = {height_px, crop_height_px, view, mask}`` (native pixel sizes;
    ``mask`` is the person's silhouette in the returned image, a uint8 ``image_size`` array of 0 / 255: the
    person's alpha pasted at the same place, resized like the image and thresholded at half coverage; it
    draws no random numbers, so the image is the same with or without it).
    ``junk=True`` gives a bad crop (part of a body, or mostly background) like Market's ``-1`` images.
    """
    h_draw = int(round(math.exp(rng.uniform(*camera.log_h))))
    view_draw = VIEWS[int(rng.choice(3, p=camera.view_p))]
    h = int(height_px) if height_px is not None else h_draw
    view = view if view is not None else view_draw
    fill = rng.uniform(0.8, 0.92)  # person height / crop height
    ch = max(h + 1, int(round(h / fill)))
    cw = max(4, int(round(ch * image_size[1] / image_size[0])))
    bg = camera.backgrounds[int(rng.integers(len(camera.backgrounds)))]  # independent of identity and camera
    if ch > bg.shape[0] or cw > bg.shape[1]:  # very large captures: repeat the texture
        bg = np.tile(bg, (ch // bg.shape[0] + 1, cw // bg.shape[1] + 1, 1))
    y0 = int(rng.integers(0, bg.shape[0] - ch + 1))
    x0 = int(rng.integers(0, bg.shape[1] - cw + 1))
    crop = Image.fromarray(bg[y0:y0 + ch, x0:x0 + cw])
    person = render_person(identity, h, view, rng)
    px = (cw - person.width) // 2 + int(round(rng.normal(0, 0.04) * cw))
    py = (ch - h) // 2 + int(round(rng.normal(0, 0.025) * ch))
    if junk:
        mode = rng.integers(3)
        if mode == 0:  # only the upper or lower part of the body: the box is shifted off the person
            py += int((0.45 + 0.2 * rng.random()) * h) * (1 if rng.random() < 0.5 else -1)
        elif mode == 1:  # mostly background with a sliver of the person at one side
            px += int((0.55 + 0.15 * rng.random()) * cw) * (1 if rng.random() < 0.5 else -1)
        else:  # a person much too small in a too-large box (bad detection)
            person = render_person(identity, max(8, h // 3), view, rng)
            px = int(rng.integers(0, max(1, cw - person.width)))
            py = int(rng.integers(0, max(1, ch - person.height)))
    crop.paste(person, (px, py), person)
    silhouette = Image.new("L", crop.size, 0)
    silhouette.paste(person.getchannel("A"), (px, py))
    mask = np.asarray(silhouette.resize((image_size[1], image_size[0]), Image.BILINEAR)) >= 128
    crop = crop.filter(ImageFilter.GaussianBlur(camera.blur_px))
    arr = np.asarray(crop, dtype=np.float32)
    arr = arr * (camera.gain * np.asarray(camera.cast, np.float32)) + camera.offset
    arr += rng.standard_normal(arr.shape, dtype=np.float32) * camera.noise_sigma
    out = Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8))
    out = out.resize((image_size[1], image_size[0]), Image.BILINEAR)
    return out, {"height_px": h, "crop_height_px": ch, "view": view, "mask": mask.astype(np.uint8) * 255}
