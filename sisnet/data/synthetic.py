"""The embedded default dataset: a procedurally drawn, multi-scale person ReID set in Market-1501 layout.

Why it exists
-------------
Real ReID datasets (Market-1501, DukeMTMC-reID, MSMT17) cannot be downloaded here and a fresh user may not
have them, so the project ships this generator. It writes a folder that the ordinary Market-1501 loader reads
(``sisnet.data.load_dataset("synthetic", root)``) and that is built to exercise the problem the SiSNet paper
is about: the *same* person captured at very different resolutions.

What it is
----------
* People are drawn with PIL primitives (head, hair, torso, arms, legs, shoes; optional bag, hat, logo,
  wristband). Colours come from small, skewed palettes (many black/grey/navy tops, jeans...) so that many
  identities share a coarse look and are told apart only by the *combination* of cues, several of which are
  small (a logo on the chest, the shoe colour, a wristband) and blur away at low resolution.
* Several cameras (default 6), each with its own procedural background, illumination gain, colour cast,
  sensor noise, viewpoint mix (front / back / side change what is visible: the logo is only on the front,
  a backpack is a big patch seen from the back but only two straps from the front) and its own person-height
  distribution (near and far cameras). Each image gets its own walking phase and detection misalignment.
* Scale: every capture is rendered at a native person height drawn per image (log-uniform inside the
  camera's range, overall ~24..256 px) on a background crop of the matching native size, then the crop is
  resized to the stored 128 x 64 (H x W) and saved as JPEG (quality 90). Small captures are therefore
  blurry/blocky after up-sampling, as in real data (paper Fig. 1). The native height of every image is in
  the sidecar ``scales.csv`` (columns ``split,name,height_px`` plus ``crop_height_px,view,kind``).
* Exact Market-1501 layout and naming: ``bounding_box_train/``, ``query/``, ``bounding_box_test/``, names
  ``PPPP_cCsS_FFFFFF_NN.jpg`` (camera 1-based). Train and test identities are disjoint. The query holds one
  image per test identity and camera; the gallery holds the other images of the test identities, plus
  distractors (``0000_...``: people who never appear in the query) and junk (``-1_...``: bad crops showing
  part of a body or mostly background). Every query has a gallery match in another camera.
* Deterministic: the same seed and config give the same bytes. Each image has its own RNG derived from
  ``(seed, identity, camera, index)``, so generation can be split over processes without changing a byte.

What it is not
--------------
It is not a substitute for real data: the people are cartoons, poses are a walking cycle, there is no real
occlusion, clutter, motion blur or pose variety, and absolute accuracies on it say nothing about
Market-1501. It exercises the *pipeline* (loaders, protocol corner cases, training, evaluation split by
scale) and gives the scale problem a controlled, reproducible form, so that relative effects (e.g. a method
that helps on small captures) can be seen quickly on a CPU.

Also here: :func:`render_mot_sequence`, a MOTChallenge-format sequence (people walking towards and away from
the camera so their height changes a lot) used to test ``sisnet.data.mot``.

CLI::

    python -m sisnet.data.synthetic --out data/synthetic [--size default] [--seed 0] [--workers 2]

prints the summary table and writes the sample grid ``results/synthetic/samples.png``.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import math
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

__all__ = [
    "SyntheticConfig",
    "SIZES",
    "VIEWS",
    "GENERATOR_VERSION",
    "Identity",
    "make_identity",
    "render_person",
    "render_capture",
    "camera_model",
    "generate",
    "summarize",
    "write_sample_grid",
    "render_mot_sequence",
    "main",
]

#: Bumped whenever the drawing code changes the bytes written for a given config; part of meta.json.
GENERATOR_VERSION = 1
SPLITS = ("bounding_box_train", "query", "bounding_box_test")
SCALE_SIDECAR = "scales.csv"  # same value as sisnet.data.SCALE_SIDECAR (not imported: keeps this module light)
META_FILE = "meta.json"
VIEWS = ("front", "back", "side")
MARKET_NAME_RE = re.compile(r"^(-1|\d{4})_c(\d)s(\d)_(\d{6})_(\d{2})\.jpg$")

# RNG stream ids: every random draw comes from np.random.default_rng([seed, STREAM, ...]).
_S_PLAN, _S_IDENTITY, _S_CAMERA, _S_IMAGE, _S_MOT = 1, 2, 3, 4, 5
# identity keys: real pids are 1..N, distractors and junk live in their own key ranges.
_DISTRACTOR_KEY0, _JUNK_KEY0 = 100_000, 200_000


# ----------------------------------------------------------------------------------------------- config
@dataclass(frozen=True)
class SyntheticConfig:
    """Everything that changes the generated bytes. Ranges are inclusive ``(low, high)``."""

    num_train_ids: int = 150
    num_test_ids: int = 150
    num_cameras: int = 6
    cams_per_id: tuple[int, int] = (2, 4)
    images_per_cam: tuple[int, int] = (2, 5)
    num_distractor_ids: int = 80
    distractor_images: tuple[int, int] = (3, 8)
    num_junk: int = 200
    height_px_range: tuple[int, int] = (24, 256)
    #: each camera draws heights log-uniformly in [centre / spread, centre * spread] (clipped to the range)
    camera_height_spread: float = 2.5
    #: per-camera illumination gain range and colour cast (each RGB channel scaled by 1 +- camera_cast)
    camera_gain: tuple[float, float] = (0.8, 1.2)
    camera_cast: float = 0.08
    image_size: tuple[int, int] = (128, 64)  # (H, W) of the stored crops, Market-1501's size
    jpeg_quality: int = 90
    seed: int = 0

    def validate(self) -> "SyntheticConfig":
        def rng_ok(name: str, lo_min: int) -> None:
            v = getattr(self, name)
            if not (isinstance(v, tuple) and len(v) == 2 and all(isinstance(x, (int, np.integer)) for x in v)
                    and lo_min <= v[0] <= v[1]):
                raise ValueError(f"SyntheticConfig.{name}={v!r} is invalid: give an inclusive (low, high) pair of "
                                 f"integers with {lo_min} <= low <= high.")

        for name, lo in (("num_train_ids", 1), ("num_test_ids", 1), ("num_cameras", 2), ("num_distractor_ids", 0),
                         ("num_junk", 0), ("jpeg_quality", 1), ("seed", 0)):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < lo:
                raise ValueError(f"SyntheticConfig.{name}={v!r} is invalid: it must be an integer >= {lo}.")
        if self.num_train_ids + self.num_test_ids > 9999:
            raise ValueError("num_train_ids + num_test_ids must be <= 9999 (Market names have 4-digit pids).")
        rng_ok("cams_per_id", 2)
        rng_ok("images_per_cam", 2)  # >= 2 so every query camera also keeps a gallery image
        rng_ok("distractor_images", 1)
        rng_ok("height_px_range", 8)
        if not (isinstance(self.image_size, tuple) and len(self.image_size) == 2
                and all(isinstance(x, (int, np.integer)) and x >= 8 for x in self.image_size)):
            raise ValueError(f"SyntheticConfig.image_size={self.image_size!r} is invalid: give (H, W) integers >= 8.")
        if self.cams_per_id[1] > self.num_cameras:
            raise ValueError(f"cams_per_id={self.cams_per_id} asks for more cameras than num_cameras="
                             f"{self.num_cameras}; lower cams_per_id or raise num_cameras.")
        if self.num_cameras > 9:
            raise ValueError("num_cameras must be <= 9 (Market names have a 1-digit camera).")
        if self.height_px_range[1] > 512:
            raise ValueError("height_px_range upper bound must be <= 512 px.")
        if not self.camera_height_spread >= 1.0:
            raise ValueError("camera_height_spread must be >= 1.0 (1 = every camera sees one fixed height).")
        if not (isinstance(self.camera_gain, tuple) and len(self.camera_gain) == 2
                and 0 < self.camera_gain[0] <= self.camera_gain[1] <= 4):
            raise ValueError(f"camera_gain={self.camera_gain!r} must be a (low, high) pair with 0 < low <= high <= 4.")
        if not 0 <= self.camera_cast < 1:
            raise ValueError(f"camera_cast={self.camera_cast!r} must be in [0, 1).")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError("jpeg_quality must be in 1..100.")
        return self

    def to_json(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))


SIZES: dict[str, dict[str, Any]] = {
    # < 3 s: used once per test session by tests/conftest.py
    "tiny": dict(num_train_ids=10, num_test_ids=10, num_cameras=3, cams_per_id=(2, 3), images_per_cam=(2, 3),
                 num_distractor_ids=4, distractor_images=(2, 3), num_junk=6),
    "small": dict(num_train_ids=50, num_test_ids=50, num_cameras=4, cams_per_id=(2, 3), images_per_cam=(2, 4),
                  num_distractor_ids=20, distractor_images=(2, 5), num_junk=40),
    "default": dict(),
}


def make_config(size: str = "default", seed: int = 0, **overrides: Any) -> SyntheticConfig:
    """The :class:`SyntheticConfig` for a named size with ``overrides`` applied (unknown names -> ValueError)."""
    if size not in SIZES:
        raise ValueError(f"Unknown synthetic size {size!r}; choose one of {sorted(SIZES)}.")
    fields = {f.name for f in dataclasses.fields(SyntheticConfig)}
    bad = sorted(set(overrides) - fields)
    if bad:
        raise ValueError(f"Unknown SyntheticConfig field(s) {bad}; valid fields: {sorted(fields)}.")
    kw: dict[str, Any] = {**SIZES[size], **overrides, "seed": int(seed)}
    for k, v in list(kw.items()):
        if isinstance(v, list):
            kw[k] = tuple(v)
    return SyntheticConfig(**kw).validate()


# ---------------------------------------------------------------------------------------------- palettes
def _palette(entries: dict[str, tuple[tuple[int, int, int], float]]) -> tuple[list[str], np.ndarray, np.ndarray]:
    names = list(entries)
    rgb = np.array([entries[n][0] for n in names], dtype=np.int16)
    w = np.array([entries[n][1] for n in names], dtype=float)
    return names, rgb, w / w.sum()


# Skewed like real street clothing, so many identities share the coarse look.
TOPS = _palette({
    "black": ((32, 32, 35), 18), "white": ((222, 222, 216), 13), "grey": ((125, 125, 128), 12),
    "navy": ((34, 42, 92), 10), "blue": ((62, 112, 190), 8), "red": ((178, 34, 38), 7),
    "green": ((44, 108, 62), 6), "beige": ((198, 178, 140), 6), "brown": ((108, 74, 46), 5),
    "yellow": ((218, 188, 52), 4), "pink": ((220, 140, 170), 4), "purple": ((98, 52, 128), 3),
})
BOTTOMS = _palette({
    "black": ((30, 30, 34), 30), "denim": ((52, 72, 120), 28), "grey": ((110, 110, 114), 14),
    "khaki": ((168, 150, 108), 12), "brown": ((90, 64, 44), 9), "white": ((210, 210, 205), 7),
})
SHOES = _palette({
    "white": ((235, 235, 235), 3), "black": ((25, 25, 25), 3), "red": ((200, 30, 30), 1),
    "blue": ((40, 80, 210), 1), "yellow": ((230, 200, 30), 1), "brown": ((120, 70, 30), 1),
})
ACCENTS = _palette({  # logos and wristbands: bright, so they are visible when large enough
    "red": ((230, 30, 40), 1), "yellow": ((250, 220, 20), 1), "cyan": ((20, 200, 230), 1),
    "green": ((40, 210, 60), 1), "magenta": ((230, 40, 200), 1), "orange": ((250, 130, 20), 1),
    "white": ((250, 250, 250), 1),
})
HAIRS = _palette({
    "black": ((20, 18, 18), 40), "dark": ((58, 38, 26), 30), "brown": ((110, 72, 40), 15),
    "blond": ((200, 168, 96), 10), "grey": ((160, 160, 160), 5),
})
SKINS = _palette({
    "s1": ((236, 200, 170), 1), "s2": ((214, 170, 132), 1), "s3": ((180, 130, 92), 1),
    "s4": ((130, 90, 62), 1), "s5": ((92, 62, 44), 1),
})
BAGS = _palette({
    "black": ((28, 28, 30), 4), "brown": ((110, 70, 40), 2), "navy": ((30, 40, 80), 2),
    "red": ((170, 30, 30), 1), "grey": ((120, 120, 125), 2), "green": ((50, 90, 50), 1),
})

RGB = tuple[int, int, int]


def _pick(rng: np.random.Generator, pal: tuple[list[str], np.ndarray, np.ndarray], jitter: int = 6,
          exclude: int | None = None) -> tuple[int, RGB]:
    names, rgb, p = pal
    if exclude is not None:
        p = p.copy()
        p[exclude] = 0
        p /= p.sum()
    i = int(rng.choice(len(names), p=p))
    c = np.clip(rgb[i] + rng.integers(-jitter, jitter + 1, size=3), 0, 255)
    return i, (int(c[0]), int(c[1]), int(c[2]))


# ---------------------------------------------------------------------------------------------- identity
@dataclass(frozen=True)
class Identity:
    """Appearance of one person. Colours are RGB tuples; ``None`` means the item is absent."""

    key: int
    skin: RGB
    hair: RGB
    long_hair: bool
    top: RGB
    top_texture: str  # "plain" | "stripes" | "checks"
    top2: RGB  # secondary colour of the texture
    texture_n: int  # number of stripe bands / check rows
    long_sleeves: bool
    bottom: RGB
    bottom_type: str  # "trousers" | "shorts" | "skirt"
    shoes: RGB
    logo: RGB | None  # small chest logo, visible from the front only
    logo_shape: str  # "circle" | "square" | "triangle"
    wristband: RGB | None  # small band on one wrist
    wrist_side: int  # -1 = left, +1 = right (viewer's side in the front view)
    bag: str  # "none" | "backpack" | "shoulder"
    bag_colour: RGB
    hat: RGB | None
    build: float  # width factor ~0.85..1.15
    coarse: str = field(default="", compare=False)  # palette names, for humans / debugging


def make_identity(seed: int, key: int) -> Identity:
    """The identity drawn for ``key`` (a pid, or a distractor/junk key) under ``seed``; deterministic."""
    return _identity(int(seed), int(key))


@lru_cache(maxsize=4096)
def _identity(seed: int, key: int) -> Identity:
    rng = np.random.default_rng([seed, _S_IDENTITY, key])
    ti, top = _pick(rng, TOPS)
    texture = str(rng.choice(["plain", "stripes", "checks"], p=[0.55, 0.28, 0.17]))
    _, top2 = _pick(rng, TOPS, exclude=ti)
    bi, bottom = _pick(rng, BOTTOMS)
    btype = str(rng.choice(["trousers", "shorts", "skirt"], p=[0.7, 0.17, 0.13]))
    _, shoes = _pick(rng, SHOES, jitter=10)
    logo = _pick(rng, ACCENTS, jitter=4)[1] if rng.random() < 0.7 else None
    wrist = _pick(rng, ACCENTS, jitter=4)[1] if rng.random() < 0.4 else None
    bag = str(rng.choice(["none", "backpack", "shoulder"], p=[0.5, 0.3, 0.2]))
    _, bag_colour = _pick(rng, BAGS)
    hat = _pick(rng, TOPS)[1] if rng.random() < 0.15 else None
    return Identity(
        key=key, skin=_pick(rng, SKINS, jitter=8)[1], hair=_pick(rng, HAIRS)[1], long_hair=bool(rng.random() < 0.3),
        top=top, top_texture=texture, top2=top2, texture_n=int(rng.integers(5, 10)),
        long_sleeves=bool(rng.random() < 0.55), bottom=bottom, bottom_type=btype, shoes=shoes,
        logo=logo, logo_shape=str(rng.choice(["circle", "square", "triangle"])), wristband=wrist,
        wrist_side=int(rng.choice([-1, 1])), bag=bag, bag_colour=bag_colour, hat=hat,
        build=float(rng.uniform(0.87, 1.13)),
        coarse=f"{TOPS[0][ti]} {texture} top / {BOTTOMS[0][bi]} {btype}",
    )


# ------------------------------------------------------------------------------------------------ person
def _shade(c: RGB, f: float) -> tuple[int, int, int, int]:
    return (min(255, int(c[0] * f)), min(255, int(c[1] * f)), min(255, int(c[2] * f)), 255)


def _seg(p0: tuple[float, float], p1: tuple[float, float], w0: float, w1: float) -> list[tuple[float, float]]:
    """Quadrilateral of a tapered limb from p0 (width w0) to p1 (width w1)."""
    dx, dy = p1[0] - p0[0], p1[1] - p0[1]
    n = math.hypot(dx, dy) or 1.0
    nx, ny = -dy / n, dx / n
    return [(p0[0] + nx * w0 / 2, p0[1] + ny * w0 / 2), (p1[0] + nx * w1 / 2, p1[1] + ny * w1 / 2),
            (p1[0] - nx * w1 / 2, p1[1] - ny * w1 / 2), (p0[0] - nx * w0 / 2, p0[1] - ny * w0 / 2)]


def _lerp(a: tuple[float, float], b: tuple[float, float], t: float) -> tuple[float, float]:
    return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)


def render_person(identity: Identity, height_px: int, view: str, rng: np.random.Generator, *,
                  phase: float | None = None, facing: int | None = None) -> Image.Image:
    """Draw ``identity`` as an RGBA image exactly ``height_px`` rows tall (head top to shoe sole).

    The image is ``(height_px, ~0.56 * height_px)`` (H x W), transparent outside the person; the true
    rendered extent is ``img.getchannel("A").getbbox()``. ``view`` is ``"front"``, ``"back"`` or ``"side"``;
    ``phase`` (radians) is the walking phase (random when None); ``facing`` (+1 right / -1 left) only
    matters for side views (random when None). Small people are drawn supersampled and area-reduced, so a
    cue smaller than a pixel blends into its surroundings, as with a real sensor.
    """
    if view not in VIEWS:
        raise ValueError(f"view={view!r} is not one of {VIEWS}.")
    h = int(height_px)
    if h < 8 or h > 2048:
        raise ValueError(f"height_px={height_px!r} must be in 8..2048.")
    if phase is None:
        phase = float(rng.uniform(0, 2 * math.pi))
    if facing is None:
        facing = 1 if rng.random() < 0.5 else -1
    ss = 4 if h < 64 else 2 if h < 160 else 1  # supersampling (anti-aliasing) factor
    H = h * ss
    W = int(math.ceil(0.56 * h)) * ss
    img = Image.new("RGBA", (W, H), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    idn = identity
    b = idn.build
    cx = W / 2.0
    U = float(H)  # unit length: the person's height
    side = view == "side"

    def P(x: float, y: float) -> tuple[float, float]:
        return (cx + x * U, y * U)

    sw, ph = math.sin(phase), math.cos(phase)
    skin, top, bottom = idn.skin, idn.top, idn.bottom
    shoulder_y, hip_y, foot_y = 0.145, 0.50, 0.955
    # ---------------------------------------------------------------- legs
    if side:
        ang = 0.38 * sw
        legs = [(-ang, 0.8), (ang, 1.0)]  # back leg (shaded) first
        hips = [(0.0, hip_y - 0.02)] * 2
    else:
        lift = 0.035
        legs = [(0.0, 1.0), (0.0, 1.0)]
        hips = [(-0.047 * b, hip_y - 0.02), (0.047 * b, hip_y - 0.02)]
    leg_len = foot_y - hip_y + 0.02
    for k, ((a, shade), hp) in enumerate(zip(legs, hips)):
        if side:  # both feet on the ground: the swinging leg is as long as its vertical reach needs
            ln = leg_len / math.cos(a)
            end = (hp[0] + math.sin(a) * ln, hp[1] + math.cos(a) * ln)
        else:
            up = lift * max(0.0, sw if k == 0 else -sw)
            end = (hp[0] * 1.1, hp[1] + leg_len - up)
        p0, p1 = P(*hp), P(*end)
        knee_t = 0.45 if idn.bottom_type == "trousers" else 0.3
        # thigh in bottom colour, lower leg skin for shorts/skirt
        d.polygon(_seg(p0, p1, 0.078 * b * U, 0.056 * b * U), fill=_shade(bottom, shade))
        if idn.bottom_type != "trousers":
            d.polygon(_seg(_lerp(p0, p1, knee_t), p1, 0.07 * b * U, 0.05 * b * U), fill=_shade(skin, shade))
        # shoe: a box at the foot, longer and pointing forward from the side
        fx, fy = end
        if side:
            x0, x1 = (fx - 0.025, fx + 0.07) if facing > 0 else (fx - 0.07, fx + 0.025)
        else:
            x0, x1 = fx - 0.036 * b, fx + 0.036 * b
        d.rectangle([P(x0, fy - 0.01), P(x1, min(1.0, fy + 0.045)) ], fill=_shade(idn.shoes, shade))
    if idn.bottom_type == "skirt":
        tw = 0.11 if side else 0.19 * b
        d.polygon([P(-tw / 2, hip_y - 0.03), P(tw / 2, hip_y - 0.03), P(tw * 0.75, 0.68), P(-tw * 0.75, 0.68)],
                  fill=_shade(bottom, 1.0))
    # ---------------------------------------------------------------- arms (back arm before the torso)
    arm_len, arm_w = 0.33, 0.052 * b
    tw_top = (0.13 if side else 0.22) * b
    tw_bot = (0.115 if side else 0.185) * b

    def draw_arm(sx: float, ang: float, shade: float, shorten: float, wrist: bool) -> None:
        s0 = (sx, shoulder_y + 0.015)
        ln = arm_len - shorten
        e = (sx + math.sin(ang) * ln, s0[1] + math.cos(ang) * ln)
        p0, p1 = P(*s0), P(*e)
        d.polygon(_seg(p0, p1, arm_w * U, 0.042 * b * U), fill=_shade(skin, shade))
        sleeve_t = 0.9 if idn.long_sleeves else 0.38
        d.polygon(_seg(p0, _lerp(p0, p1, sleeve_t), arm_w * 1.12 * U, 0.048 * b * U), fill=_shade(top, shade))
        if wrist and idn.wristband is not None:
            d.polygon(_seg(_lerp(p0, p1, 0.8), _lerp(p0, p1, 0.88), 0.05 * b * U, 0.05 * b * U),
                      fill=_shade(idn.wristband, shade))

    if side:
        arm_ang = -0.42 * sw * facing
        draw_arm(0.0, -arm_ang, 0.8, 0.0, False)
    # ---------------------------------------------------------------- backpack seen from the side sits behind
    if side and idn.bag == "backpack":
        bx = -facing * (tw_top / 2 + 0.035)
        d.rectangle([P(min(bx, bx + facing * 0.05), 0.17), P(max(bx, bx + facing * 0.05), 0.42)],
                    fill=_shade(idn.bag_colour, 1.0))
    # ---------------------------------------------------------------- torso + texture
    def tq(u0: float, v0: float, u1: float, v1: float) -> list[tuple[float, float]]:
        """Torso-local quad (u across, v down, both 0..1) mapped onto the trapezoid."""
        pts = []
        for u, v in ((u0, v0), (u1, v0), (u1, v1), (u0, v1)):
            y = shoulder_y + (hip_y - shoulder_y) * v
            half = (tw_top + (tw_bot - tw_top) * v) / 2
            pts.append(P(-half + 2 * half * u, y))
        return pts

    d.polygon(tq(0, 0, 1, 1), fill=_shade(top, 1.0))
    n = idn.texture_n
    if idn.top_texture == "stripes":
        for i in range(1, n, 2):
            d.polygon(tq(0, i / n, 1, (i + 1) / n), fill=_shade(idn.top2, 1.0))
    elif idn.top_texture == "checks":
        m = 2 if side else 4
        for i in range(n):
            for j in range(m):
                if (i + j) % 2:
                    d.polygon(tq(j / m, i / n, (j + 1) / m, (i + 1) / n), fill=_shade(idn.top2, 1.0))
    # ---------------------------------------------------------------- front-only / back-only details
    if view == "front" and idn.logo is not None:
        lx, ly, r = 0.045 * b, 0.235, 0.021
        box = [P(lx - r, ly - r), P(lx + r, ly + r)]
        if idn.logo_shape == "circle":
            d.ellipse(box, fill=_shade(idn.logo, 1.0))
        elif idn.logo_shape == "square":
            d.rectangle(box, fill=_shade(idn.logo, 1.0))
        else:
            d.polygon([P(lx, ly - r), P(lx + r, ly + r), P(lx - r, ly + r)], fill=_shade(idn.logo, 1.0))
    if idn.bag == "backpack" and not side:
        bc = _shade(idn.bag_colour, 1.0)
        if view == "back":
            d.rectangle([P(-0.085 * b, 0.175), P(0.085 * b, 0.43)], fill=bc)
            d.line([P(-0.085 * b, 0.25), P(0.085 * b, 0.25)], fill=_shade(idn.bag_colour, 0.6),
                   width=max(1, int(0.008 * U)))
        else:  # only the straps are visible from the front
            for sx in (-0.07 * b, 0.07 * b):
                d.polygon(_seg(P(sx, shoulder_y), P(sx * 0.9, 0.33), 0.022 * U, 0.022 * U), fill=bc)
    if idn.bag == "shoulder":
        bc = _shade(idn.bag_colour, 1.0)
        sgn = 1 if view != "back" else -1
        if side:
            d.line([P(0.0, shoulder_y), P(0.0, 0.47)], fill=bc, width=max(1, int(0.015 * U)))
            d.rectangle([P(-0.05, 0.45), P(0.05, 0.56)], fill=bc)
        else:
            d.polygon(_seg(P(-sgn * 0.09 * b, shoulder_y + 0.01), P(sgn * 0.11 * b, 0.47), 0.016 * U, 0.016 * U),
                      fill=bc)
            d.rectangle([P(sgn * 0.09 * b, 0.45) if sgn > 0 else P(sgn * 0.19 * b, 0.45),
                         P(sgn * 0.19 * b, 0.57) if sgn > 0 else P(sgn * 0.09 * b, 0.57)], fill=bc)
    # ---------------------------------------------------------------- arms in front of the torso
    if side:
        draw_arm(0.0, arm_ang, 1.0, 0.0, True)
    else:
        for k, sx in enumerate((-1, 1)):
            swing = 0.03 * (sw if k == 0 else -sw)
            wrist_here = (sx == idn.wrist_side) if view == "front" else (sx == -idn.wrist_side)
            draw_arm(sx * (tw_top / 2 + arm_w / 2 - 0.004), sx * 0.06, 1.0, max(0.0, swing), wrist_here)
    # ---------------------------------------------------------------- neck, head, hair, hat
    d.rectangle([P(-0.018, 0.11), P(0.018, shoulder_y + 0.01)], fill=_shade(skin, 0.92))
    hw = 0.046
    head = [P(-hw, 0.0), P(hw, 0.13)]
    hair = _shade(idn.hair, 1.0)
    if view == "back":
        d.ellipse(head, fill=hair)
        if idn.long_hair:
            d.rectangle([P(-hw, 0.06), P(hw, 0.2)], fill=hair)
    else:
        if idn.long_hair:
            if side:
                # hair falls on the back side of the head (left when facing right)
                d.rectangle([P(0.0, 0.05), P(hw, 0.2)] if facing < 0 else [P(-hw, 0.05), P(0.0, 0.2)], fill=hair)
            else:
                d.rectangle([P(-hw * 1.05, 0.05), P(hw * 1.05, 0.19)], fill=hair)
        d.ellipse(head, fill=_shade(skin, 1.0))
        d.chord([P(-hw, 0.0), P(hw, 0.11)], 180, 360, fill=hair)
        if side:  # hair covers the back half of the head
            d.pieslice(head, 90 if facing > 0 else -90, 270 if facing > 0 else 90, fill=hair)
        else:
            r = 0.0055
            for ex in (-0.018, 0.018):
                d.ellipse([P(ex - r, 0.066 - r), P(ex + r, 0.066 + r)], fill=(30, 25, 25, 255))
    if idn.hat is not None:
        hc = _shade(idn.hat, 1.0)
        d.chord([P(-hw * 1.05, -0.005), P(hw * 1.05, 0.1)], 180, 360, fill=hc)
        if side:
            bx0, bx1 = (0.0, hw * 1.9) if facing > 0 else (-hw * 1.9, 0.0)
            d.rectangle([P(bx0, 0.043), P(bx1, 0.056)], fill=hc)
        elif view == "front":
            d.rectangle([P(-hw * 1.15, 0.043), P(hw * 1.15, 0.056)], fill=hc)
    if ss > 1:
        # area reduction with a triangle filter: a little optical blur, sub-pixel cues blend away
        img = img.resize((W // ss, h), Image.BILINEAR)
    return img


# ------------------------------------------------------------------------------------------------ camera
@dataclass(frozen=True)
class _Camera:
    index: int  # 0-based
    background: np.ndarray  # (Hb, Wb, 3) uint8
    gain: float
    cast: tuple[float, float, float]
    offset: float
    noise_sigma: float
    blur_px: float  # optical blur (Gaussian radius) at native resolution
    view_p: tuple[float, float, float]
    log_h: tuple[float, float]  # log person-height range


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: tuple[int, int]) -> np.ndarray:
    """Low-frequency noise in [0, 1] of ``shape`` (H, W): random grid, bicubic-upsampled by PIL."""
    g = (rng.random(cells) * 255).astype(np.uint8)
    up = Image.fromarray(g).resize((shape[1], shape[0]), Image.BICUBIC)
    return np.asarray(up, dtype=np.float32) / 255.0


def _background(rng: np.random.Generator, kind: int, shape: tuple[int, int] = (384, 768)) -> np.ndarray:
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


@lru_cache(maxsize=64)
def _camera(seed: int, index: int, num_cameras: int, h_lo: int, h_hi: int, spread: float,
            gain: tuple[float, float], cast: float) -> _Camera:
    rng = np.random.default_rng([seed, _S_CAMERA, index])
    kinds = np.random.default_rng([seed, _S_CAMERA, 10_000]).permutation(6)
    bg = _background(rng, int(kinds[index % 6]))
    # camera-dependent height distribution: cameras spread from far to near (random order)
    order = np.random.default_rng([seed, _S_CAMERA, 10_001]).permutation(num_cameras)
    t = order[index] / max(1, num_cameras - 1)
    lo, hi = math.log(h_lo), math.log(h_hi)
    centre = lo + 0.25 * (hi - lo) + t * 0.5 * (hi - lo)
    ls = math.log(spread)
    log_h = (max(lo, centre - ls), min(hi, centre + ls))
    vp = rng.dirichlet([1.2, 1.2, 1.2]) * 0.7 + 0.1
    return _Camera(
        index=index, background=bg, gain=float(rng.uniform(*gain)),
        cast=tuple(float(x) for x in rng.uniform(1 - cast, 1 + cast, size=3)), offset=float(rng.uniform(-8, 8)),
        noise_sigma=float(rng.uniform(2.0, 7.0)), blur_px=float(rng.uniform(0.5, 0.9)), view_p=tuple(float(x) for x in vp / vp.sum()), log_h=log_h,
    )


def camera_model(seed: int, index: int, config: SyntheticConfig | None = None) -> _Camera:
    """The camera ``index`` (0-based) of the dataset generated with ``seed`` and ``config`` (default config)."""
    cfg = config or SyntheticConfig()
    if not 0 <= index < cfg.num_cameras:
        raise ValueError(f"camera index {index} is outside 0..{cfg.num_cameras - 1}.")
    return _camera(int(seed), int(index), cfg.num_cameras, cfg.height_px_range[0], cfg.height_px_range[1],
                   float(cfg.camera_height_spread), tuple(float(g) for g in cfg.camera_gain), float(cfg.camera_cast))


def render_capture(identity: Identity, camera: _Camera, rng: np.random.Generator, *,
                   image_size: tuple[int, int] = (128, 64), junk: bool = False, height_px: int | None = None,
                   view: str | None = None) -> tuple[Image.Image, dict]:
    """One detection crop of ``identity`` seen by ``camera``: an RGB image of ``image_size`` (H, W).

    The person is drawn at a native height (drawn from the camera's distribution unless ``height_px`` is
    given) on a background crop of the matching native size; the crop gets the camera's optical blur,
    illumination, colour cast and noise, and is then resized to ``image_size``.
    Returns ``(image, info)`` with ``info = {height_px, crop_height_px, view}`` (native pixel sizes).
    ``junk=True`` gives a bad crop (part of a body, or mostly background) like Market's ``-1`` images.
    """
    h_draw = int(round(math.exp(rng.uniform(*camera.log_h))))
    view_draw = VIEWS[int(rng.choice(3, p=camera.view_p))]
    h = int(height_px) if height_px is not None else h_draw
    view = view if view is not None else view_draw
    fill = rng.uniform(0.8, 0.92)  # person height / crop height
    ch = max(h + 1, int(round(h / fill)))
    cw = max(4, int(round(ch * image_size[1] / image_size[0])))
    bg = camera.background
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
    crop = crop.filter(ImageFilter.GaussianBlur(camera.blur_px))
    arr = np.asarray(crop, dtype=np.float32)
    arr = arr * (camera.gain * np.asarray(camera.cast, np.float32)) + camera.offset
    arr += rng.standard_normal(arr.shape, dtype=np.float32) * camera.noise_sigma
    out = Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8))
    out = out.resize((image_size[1], image_size[0]), Image.BILINEAR)
    return out, {"height_px": h, "crop_height_px": ch, "view": view}


# ------------------------------------------------------------------------------------------------- plan
@dataclass(frozen=True)
class _Spec:
    split: str
    name: str
    key: int  # identity key (pid, distractor key or junk key)
    cam: int  # 0-based
    index: int  # index of this capture among (key, cam)
    kind: str  # "identity" | "distractor" | "junk"


def _plan(cfg: SyntheticConfig) -> list[_Spec]:
    """All images to write, deterministic in ``cfg``. Names are unique Market-1501 names."""
    rng = np.random.default_rng([cfg.seed, _S_PLAN])
    n_ids = cfg.num_train_ids + cfg.num_test_ids
    pids = rng.permutation(np.arange(1, n_ids + 1))
    train = set(int(p) for p in pids[:cfg.num_train_ids])
    raw: list[tuple[str, str, int, int, int, str]] = []  # (split, pid label, key, cam, index, kind)
    for pid in range(1, n_ids + 1):
        ncam = int(rng.integers(cfg.cams_per_id[0], cfg.cams_per_id[1] + 1))
        cams = sorted(int(c) for c in rng.choice(cfg.num_cameras, size=ncam, replace=False))
        for cam in cams:
            n = int(rng.integers(cfg.images_per_cam[0], cfg.images_per_cam[1] + 1))
            for i in range(n):
                if pid in train:
                    split = "bounding_box_train"
                else:  # first capture per camera is the query; the others (>= 1) stay in the gallery
                    split = "query" if i == 0 else "bounding_box_test"
                raw.append((split, f"{pid:04d}", pid, cam, i, "identity"))
    for j in range(cfg.num_distractor_ids):
        key = _DISTRACTOR_KEY0 + j
        n = int(rng.integers(cfg.distractor_images[0], cfg.distractor_images[1] + 1))
        counts: dict[int, int] = {}
        for _ in range(n):
            cam = int(rng.integers(cfg.num_cameras))
            counts[cam] = counts.get(cam, 0) + 1
            raw.append(("bounding_box_test", "0000", key, cam, counts[cam] - 1, "distractor"))
    for j in range(cfg.num_junk):
        raw.append(("bounding_box_test", "-1", _JUNK_KEY0 + j, int(rng.integers(cfg.num_cameras)), 0, "junk"))
    # frame numbers: captures of a camera in a random temporal order; a new sequence every 250 captures
    order = rng.permutation(len(raw))
    frame = np.zeros(cfg.num_cameras, dtype=np.int64)
    count = np.zeros(cfg.num_cameras, dtype=np.int64)
    specs: list[_Spec | None] = [None] * len(raw)
    for o in order:
        split, label, key, cam, idx, kind = raw[o]
        if count[cam] % 250 == 0:
            frame[cam] = int(rng.integers(0, 500))
        seq = 1 + count[cam] // 250
        frame[cam] += int(rng.integers(3, 90))
        count[cam] += 1
        det = int(rng.integers(1, 5))
        name = f"{label}_c{cam + 1}s{seq}_{frame[cam]:06d}_{det:02d}.jpg"
        specs[o] = _Spec(split, name, key, cam, idx, kind)
    return [s for s in specs if s is not None]


def _render_spec(cfg: SyntheticConfig, spec: _Spec) -> tuple[bytes, dict]:
    cam = camera_model(cfg.seed, spec.cam, cfg)
    rng = np.random.default_rng([cfg.seed, _S_IMAGE, spec.key, spec.cam, spec.index])
    img, info = render_capture(make_identity(cfg.seed, spec.key), cam, rng, image_size=tuple(cfg.image_size),
                               junk=spec.kind == "junk")
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=cfg.jpeg_quality)
    return buf.getvalue(), info


def _render_chunk(args: tuple[SyntheticConfig, list[_Spec], str]) -> list[dict]:
    cfg, specs, tmp = args
    rows = []
    for sp in specs:
        data, info = _render_spec(cfg, sp)
        with open(os.path.join(tmp, sp.split, sp.name), "wb") as fh:
            fh.write(data)
        rows.append({"split": sp.split, "name": sp.name, "height_px": info["height_px"],
                     "crop_height_px": info["crop_height_px"], "view": info["view"], "kind": sp.kind})
    return rows


# --------------------------------------------------------------------------------------------- generate
def _read_meta(out: Path) -> dict | None:
    try:
        return json.loads((out / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _is_complete(out: Path, meta: dict) -> bool:
    counts = meta.get("counts", {})
    for split in SPLITS:
        d = out / split
        if not d.is_dir():
            return False
        n = sum(1 for e in os.scandir(d) if e.name.endswith(".jpg"))
        if n != counts.get(split):
            return False
    return (out / SCALE_SIDECAR).is_file()


def _check_existing(out: Path, want: dict) -> bool:
    """True when ``out`` already holds this exact dataset; False when it is absent/empty; else raise."""
    if not out.exists():
        return False
    if not out.is_dir():
        raise FileExistsError(f"{str(out)!r} exists and is not a folder; pass another out_dir for the synthetic "
                              f"dataset or delete that file.")
    if not any(out.iterdir()):
        return False
    meta = _read_meta(out)
    if meta is None or meta.get("generator") != want["generator"]:
        raise FileExistsError(
            f"{str(out)!r} is not empty and does not hold a synthetic dataset written by sisnet (no valid "
            f"{META_FILE}). Pick another out_dir, or delete that folder if it is yours to delete.")
    if meta.get("generator_version") != want["generator_version"] or meta.get("config") != want["config"]:
        diff = {k: (meta.get("config", {}).get(k), v) for k, v in want["config"].items()
                if meta.get("config", {}).get(k) != v}
        if meta.get("generator_version") != want["generator_version"]:
            diff["generator_version"] = (meta.get("generator_version"), want["generator_version"])
        raise FileExistsError(
            f"{str(out)!r} holds a synthetic dataset with a different configuration (existing, requested): {diff}. "
            f"Pick another out_dir (e.g. data/synthetic_seed{want['config']['seed']}) or delete that folder to "
            f"regenerate it.")
    if not _is_complete(out, meta):
        raise FileExistsError(
            f"{str(out)!r} has a {META_FILE} but its image folders do not match the recorded counts (modified or "
            f"damaged). Delete that folder to regenerate it, or pick another out_dir.")
    return True


def _cleanup_stale_tmp(out: Path) -> None:
    """Remove temporary siblings left by killed generations (their process no longer exists)."""
    for p in out.parent.glob(f".{out.name}.tmp-*"):
        m = re.fullmatch(rf"\.{re.escape(out.name)}\.tmp-(\d+)-\d+", p.name)
        if not m:
            continue
        try:
            os.kill(int(m.group(1)), 0)
        except ProcessLookupError:
            shutil.rmtree(p, ignore_errors=True)
        except OSError:
            pass


def generate(out_dir: str | Path, *, size: str = "default", seed: int = 0, workers: int = 1,
             progress: bool = False, **overrides: Any) -> Path:
    """Write the synthetic dataset (Market-1501 layout) into ``out_dir`` and return its resolved path.

    ``size`` is ``"tiny"``, ``"small"`` or ``"default"``; ``overrides`` set fields of :class:`SyntheticConfig`.
    ``workers`` > 1 renders with that many processes (same bytes as 1). Idempotent: when ``out_dir`` already
    holds a complete dataset with the same config it returns at once; when it holds anything else it raises
    ``FileExistsError`` saying what to do. Images are written to a temporary sibling folder renamed onto
    ``out_dir`` at the end, and ``meta.json`` is written last, so a killed run never looks complete.
    """
    cfg = make_config(size, seed, **overrides)
    out = Path(out_dir).expanduser().absolute()
    want = {"generator": "sisnet.data.synthetic", "generator_version": GENERATOR_VERSION, "size": size,
            "config": cfg.to_json()}
    if _check_existing(out, want):
        return out
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PermissionError(f"Cannot create {str(out.parent)!r} ({exc.strerror or exc}); choose an out_dir "
                              f"in a folder you can write to.") from exc
    if not os.access(out.parent, os.W_OK):
        raise PermissionError(f"{str(out.parent)!r} is not writable; choose an out_dir in a folder you can "
                              f"write to or fix its permissions.")
    _cleanup_stale_tmp(out)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{time.monotonic_ns()}"
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        for split in SPLITS:
            (tmp / split).mkdir(parents=True)
        specs = _plan(cfg)
        workers = max(1, int(workers))
        if workers == 1:
            rows = []
            it: Iterable[_Spec] = specs
            if progress:
                try:
                    from tqdm import tqdm
                    it = tqdm(specs, desc="synthetic", unit="img")
                except ImportError:  # pragma: no cover
                    pass
            for sp in it:
                rows.extend(_render_chunk((cfg, [sp], str(tmp))))
        else:
            import concurrent.futures as cf
            import multiprocessing as mp

            chunks = [specs[i:i + 64] for i in range(0, len(specs), 64)]
            ctx = mp.get_context("fork") if sys.platform.startswith("linux") else None
            with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as ex:
                rows = [r for part in ex.map(_render_chunk, [(cfg, c, str(tmp)) for c in chunks]) for r in part]
        rows.sort(key=lambda r: (SPLITS.index(r["split"]), r["name"]))
        with open(tmp / SCALE_SIDECAR, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=["split", "name", "height_px", "crop_height_px", "view", "kind"])
            w.writeheader()
            w.writerows(rows)
        counts = {s: sum(1 for r in rows if r["split"] == s) for s in SPLITS}
        meta = {**want, "counts": counts,
                "num_ids": {"train": cfg.num_train_ids, "test": cfg.num_test_ids,
                            "distractor": cfg.num_distractor_ids},
                "num_junk": cfg.num_junk}
        with open(tmp / META_FILE, "w", encoding="utf-8") as fh:  # written last, inside the temp folder
            json.dump(meta, fh, indent=2)
        try:
            if out.exists():
                out.rmdir()  # empty (checked above); rename needs it gone on some platforms
            os.replace(tmp, out)
        except OSError:
            # another process may have finished the same dataset meanwhile
            if _check_existing(out, want):
                shutil.rmtree(tmp, ignore_errors=True)
                return out
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if progress:
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        rate = f"{len(rows) / dt:.0f} images/s wall with {workers} worker(s)"
        if workers == 1:  # CPU time of this process = the one-core rate, whatever else runs on the machine
            rate += f", {len(rows) / max(dc, 1e-9):.0f} images/s per CPU-second"
        print(f"generated {len(rows)} images in {dt:.1f} s ({rate})")
    return out


# ------------------------------------------------------------------------------------------ summary/grid
def _read_sidecar(root: Path) -> list[dict]:
    with open(root / SCALE_SIDECAR, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def summarize(root: str | Path):
    """Per-split table (pandas DataFrame): ids, images, cameras, junk/distractor images, native height range."""
    import pandas as pd

    root = Path(root)
    rows = []
    for r in _read_sidecar(root):
        m = MARKET_NAME_RE.match(r["name"])
        if not m:
            raise ValueError(f"{r['name']!r} in {root / SCALE_SIDECAR} is not a Market-1501 name.")
        rows.append({"split": r["split"], "pid": int(m.group(1)), "cam": int(m.group(2)),
                     "height_px": int(r["height_px"])})
    df = pd.DataFrame(rows)
    out = []
    for split in SPLITS:
        s = df[df.split == split]
        real = s[s.pid > 0]
        out.append({"split": {"bounding_box_train": "train", "bounding_box_test": "gallery"}.get(split, split),
                    "ids": real.pid.nunique(), "images": len(s), "cameras": s.cam.nunique(),
                    "distractor_imgs": int((s.pid == 0).sum()), "junk_imgs": int((s.pid == -1).sum()),
                    "height_px_min": int(s.height_px.min()), "height_px_median": int(s.height_px.median()),
                    "height_px_max": int(s.height_px.max())})
    return pd.DataFrame(out).set_index("split")


def write_sample_grid(root: str | Path, path: str | Path, *, num_ids: int = 8) -> Path:
    """PNG grid of samples: one row per identity (test ids seen by most cameras), one column per camera,
    each cell one capture with its native person height. Written atomically."""
    root, path = Path(root), Path(path)
    meta = _read_meta(root) or {}
    ncam = int(meta.get("config", {}).get("num_cameras", 0)) or 6
    by: dict[int, dict[int, tuple[str, str, int]]] = {}
    for r in _read_sidecar(root):
        m = MARKET_NAME_RE.match(r["name"])
        if not m or int(m.group(1)) <= 0 or r["split"] == "bounding_box_train":
            continue
        pid, cam = int(m.group(1)), int(m.group(2))
        cur = by.setdefault(pid, {})
        # show the query image for each camera (one per camera)
        if cam not in cur or r["split"] == "query":
            cur[cam] = (r["split"], r["name"], int(r["height_px"]))
    pids = sorted(by, key=lambda p: (-len(by[p]), p))[:num_ids]
    ch, cw = 128, 64
    left, top, lab = 44, 16, 12
    grid = Image.new("RGB", (left + ncam * (cw + 4), top + len(pids) * (ch + lab + 4)), (255, 255, 255))
    d = ImageDraw.Draw(grid)
    font = ImageFont.load_default()
    for c in range(ncam):
        d.text((left + c * (cw + 4) + 22, 2), f"c{c + 1}", fill=(0, 0, 0), font=font)
    for i, pid in enumerate(pids):
        y = top + i * (ch + lab + 4)
        d.text((2, y + ch // 2 - 6), f"{pid:04d}", fill=(0, 0, 0), font=font)
        for c in range(ncam):
            x = left + c * (cw + 4)
            if c + 1 in by[pid]:
                split, name, hpx = by[pid][c + 1]
                with Image.open(root / split / name) as im:
                    grid.paste(im.convert("RGB").resize((cw, ch)), (x, y))
                d.text((x + 2, y + ch), f"h={hpx}", fill=(60, 60, 60), font=font)
            else:
                d.rectangle([x, y, x + cw - 1, y + ch - 1], fill=(235, 235, 235))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
    grid.save(tmp, format="PNG", optimize=True)
    os.replace(tmp, path)
    return path


# ---------------------------------------------------------------------------------------------- MOT
def _scene(rng: np.random.Generator, frame_size: tuple[int, int], horizon: int) -> np.ndarray:
    """(H, W, 3) float32 street scene: textured wall above the horizon, pavement below."""
    H, W = frame_size
    wall = _background(rng, int(rng.choice([0, 3, 5])), (max(horizon, 8), W)).astype(np.float32)
    yy, xx = np.mgrid[0:H - horizon, 0:W]
    depth = (yy + 20.0) / (H - horizon + 20.0)
    tile = ((xx - W / 2) / (depth * 60 + 1e-3)).astype(np.int64) + (np.log(depth + 1e-3) * 12).astype(np.int64)
    ground = np.array([140, 135, 128], np.float32) * (0.85 + 0.1 * (tile % 2))[..., None]
    ground *= (0.8 + 0.25 * depth)[..., None]
    return np.concatenate([wall[:horizon], ground], axis=0)


def render_mot_sequence(out_dir: str | Path, *, num_frames: int = 60, num_people: int = 5,
                        frame_size: tuple[int, int] = (480, 640), seed: int = 0, fps: int = 10) -> Path:
    """Write a MOTChallenge (MOT16/17 format) sequence of synthetic people and return its folder.

    Layout: ``img1/000001.jpg ...``, ``gt/gt.txt`` and ``seqinfo.ini``. gt rows are
    ``frame,id,x,y,w,h,conf,class,visibility`` with frames 1-based, ``conf=1``, ``class=1`` (pedestrian),
    ``(x, y)`` the box's top-left corner in MOTChallenge's 1-based pixel convention (pixel column 0 of the
    image is x=1), ``w, h`` in pixels: the box is the true rendered extent of the person (alpha > 0), which
    may reach outside the image. ``visibility`` is the fraction of the person's pixels that are inside the
    image and not hidden by a nearer person. People walk across a street while moving towards or away from
    the camera, so their height changes by 2-5x over a track; some enter or leave the frame.
    ``frame_size`` is ``(H, W)``. ``out_dir`` must not exist or be empty (written via a temp folder).
    """
    H, W = (int(frame_size[0]), int(frame_size[1]))
    if num_frames < 1 or num_people < 1 or H < 64 or W < 64 or fps < 1:
        raise ValueError("render_mot_sequence needs num_frames >= 1, num_people >= 1, fps >= 1 and a frame_size "
                         f"(H, W) of at least 64x64; got num_frames={num_frames}, num_people={num_people}, "
                         f"frame_size={frame_size}, fps={fps}.")
    out = Path(out_dir).expanduser().absolute()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{str(out)!r} exists and is not an empty folder; pass a new out_dir for the MOT "
                              f"sequence or delete that one.")
    rng = np.random.default_rng([seed, _S_MOT])
    horizon = int(H * 0.22)
    k_foot = (H - horizon - 6) / (H * 0.62)  # foot row = horizon + k_foot * height
    h_max = int(H * 0.6)
    h_min = max(16, int(H * 0.08))
    scene = _scene(rng, (H, W), horizon)
    people = []
    for i in range(num_people):
        ident = make_identity(seed, _S_MOT * 1_000_000 + i)
        towards = (i % 2 == 0)
        lo, hi = h_min * rng.uniform(1.0, 1.4), h_max * rng.uniform(0.75, 1.0)
        h0, h1 = (lo, hi) if towards else (hi, lo)
        t0 = 0 if i < 2 else int(rng.integers(0, max(1, num_frames // 2)))
        dur = int(num_frames * rng.uniform(0.7, 1.3))
        x0 = rng.uniform(0.15, 0.85) * W
        vx = rng.uniform(0.3, 1.2) * W / max(num_frames, 1) * (1 if rng.random() < 0.5 else -1)
        people.append(dict(id=i + 1, ident=ident, h0=h0, h1=h1, t0=t0, dur=max(2, dur), x0=x0, vx=vx,
                           view="front" if towards else "back", phase=float(rng.uniform(0, 2 * math.pi))))
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{time.monotonic_ns()}"
    rows: list[tuple] = []
    try:
        (tmp / "img1").mkdir(parents=True)
        (tmp / "gt").mkdir()
        for f in range(num_frames):
            frame = Image.fromarray(np.clip(scene, 0, 255).astype(np.uint8))
            owner = np.zeros((H, W), dtype=np.int16)
            placed = []
            for p in people:
                t = f - p["t0"]
                if t < 0 or t >= p["dur"]:
                    continue
                a = t / (p["dur"] - 1)
                h = int(round(p["h0"] * (p["h1"] / p["h0"]) ** a))
                x = p["x0"] + p["vx"] * t
                foot = horizon + k_foot * h
                prng = np.random.default_rng([seed, _S_MOT, p["id"], f])
                img = render_person(p["ident"], h, p["view"], prng, phase=p["phase"] + 0.9 * t)
                left, topp = int(round(x - img.width / 2)), int(round(foot - h))
                alpha = np.asarray(img.getchannel("A"))
                bb = img.getchannel("A").getbbox()
                if bb is None:
                    continue
                bx0, by0, bx1, by1 = left + bb[0], topp + bb[1], left + bb[2], topp + bb[3]
                if bx1 <= 0 or by1 <= 0 or bx0 >= W or by0 >= H:
                    continue  # entirely outside the image
                placed.append((h, p, img, left, topp, alpha, (bx0, by0, bx1, by1)))
            placed.sort(key=lambda q: q[0])  # far (small) people first, near ones drawn on top
            for j, (h, p, img, left, topp, alpha, _) in enumerate(placed, start=1):
                frame.paste(img, (left, topp), img)
                ys0, xs0 = max(0, topp), max(0, left)
                ys1, xs1 = min(H, topp + img.height), min(W, left + img.width)
                if ys1 > ys0 and xs1 > xs0:
                    m = alpha[ys0 - topp:ys1 - topp, xs0 - left:xs1 - left] > 0
                    owner[ys0:ys1, xs0:xs1][m] = j
            for j, (h, p, img, left, topp, alpha, (bx0, by0, bx1, by1)) in enumerate(placed, start=1):
                total = int((alpha > 0).sum())
                vis = float((owner == j).sum()) / max(1, total)
                rows.append((f + 1, p["id"], bx0 + 1, by0 + 1, bx1 - bx0, by1 - by0, 1, 1, round(vis, 4)))
            arr = np.asarray(frame, dtype=np.float32)
            arr += np.random.default_rng([seed, _S_MOT, 0, f]).standard_normal(arr.shape, dtype=np.float32) * 3
            Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8)).save(
                tmp / "img1" / f"{f + 1:06d}.jpg", format="JPEG", quality=90)
        rows.sort(key=lambda r: (r[0], r[1]))
        with open(tmp / "gt" / "gt.txt", "w", encoding="utf-8") as fh:
            for r in rows:
                fh.write(",".join(str(v) for v in r) + "\n")
        with open(tmp / "seqinfo.ini", "w", encoding="utf-8") as fh:
            fh.write(f"[Sequence]\nname={out.name}\nimDir=img1\nframeRate={fps}\nseqLength={num_frames}\n"
                     f"imWidth={W}\nimHeight={H}\nimExt=.jpg\n")
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


# ---------------------------------------------------------------------------------------------- CLI
def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sisnet.data.synthetic",
                                 description="Generate the synthetic multi-scale ReID dataset (Market-1501 layout).")
    ap.add_argument("--out", default="data/synthetic", help="output folder (default: data/synthetic)")
    ap.add_argument("--size", default="default", choices=sorted(SIZES))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=1, help="processes used for rendering (same bytes for any value)")
    ap.add_argument("--grid", default="results/synthetic/samples.png",
                    help="where to write the sample grid PNG ('' to skip)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    try:
        root = generate(args.out, size=args.size, seed=args.seed, workers=args.workers, progress=True)
    except (FileExistsError, ValueError, PermissionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"synthetic dataset ({args.size}, seed {args.seed}) at {root}  [{time.perf_counter() - t0:.1f} s]")
    import pandas as pd

    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(summarize(root).to_string())
    if args.grid:
        print(f"sample grid: {write_sample_grid(root, args.grid)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
