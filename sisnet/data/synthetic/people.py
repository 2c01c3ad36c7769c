"""Drawing one person: the clothing palettes, the :class:`Identity` of a person and :func:`render_person`."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from .streams import GROUP_KEY0, S_CODE, S_IDENTITY

VIEWS = ("front", "back", "side")


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
    #: the fine chest code (generator version 4): CODE_ROWS x CODE_COLS cells, each an index into CODE_COLOURS, every
    #: colour used equally often, so every code has the same mean colour and a capture too small to resolve the cells
    #: shows the same patch
    code: tuple[int, ...] | None = None


CODE_ROWS, CODE_COLS = 4, 3
#: where the code sits on the torso (torso-local u across, v down, 0..1) and its colours (saturated, so that a resolved
#: code is easy to see and to learn)
CODE_BOX = (0.1, 0.05, 0.9, 0.65)
CODE_COLOURS = ((230, 40, 40), (245, 215, 30), (40, 90, 230), (40, 190, 80))


def make_identity(seed: int, key: int, group: int | None = None, fine_code: bool = False) -> Identity:
    """The identity drawn for ``key`` (a pid, or a distractor/junk key) under ``seed``; deterministic.

    ``group`` (generator version 4): identities of one group share every coarse attribute (drawn for the group) and
    carry no logo or wristband; ``fine_code`` gives the identity its own chest code (:data:`CODE_ROWS` x
    :data:`CODE_COLS`). Without either, the classic version-3 identity."""
    return _grouped(int(seed), int(key), None if group is None else int(group), bool(fine_code))


@lru_cache(maxsize=4096)
def _grouped(seed: int, key: int, group: int | None, fine_code: bool) -> Identity:
    base = _identity(seed, key) if group is None else _identity(seed, GROUP_KEY0 + group)
    changes: dict = {"key": key}
    if group is not None:  # the group's coarse look; the view-dependent small cues would tell members apart
        changes.update(logo=None, wristband=None)
    if fine_code:
        rng = np.random.default_rng([seed, S_CODE, key])
        cells = np.arange(CODE_ROWS * CODE_COLS) % len(CODE_COLOURS)  # every colour equally often
        changes["code"] = tuple(int(c) for c in rng.permutation(cells))
    return dataclasses.replace(base, **changes)


@lru_cache(maxsize=4096)
def _identity(seed: int, key: int) -> Identity:
    rng = np.random.default_rng([seed, S_IDENTITY, key])
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
_SHOULDER_Y, _HIP_Y, _FOOT_Y = 0.145, 0.50, 0.955  # rows of the body, as fractions of its height


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


@dataclass(frozen=True)
class _Figure:
    """One person being drawn: the canvas, the identity, how it is seen, and the body-relative coordinates.

    Coordinates are in units of the person's height ``U``: ``x`` across from the centre line, ``y`` down from the
    head top; :meth:`P` maps them to canvas pixels."""

    d: ImageDraw.ImageDraw
    idn: Identity
    view: str
    facing: int
    sw: float  # sin(walking phase)
    cx: float  # the centre line, canvas pixels
    U: float  # unit length: the person's height, canvas pixels

    @property
    def side(self) -> bool:
        return self.view == "side"

    @property
    def b(self) -> float:
        return self.idn.build

    @property
    def arm_w(self) -> float:
        return 0.052 * self.b

    @property
    def tw_top(self) -> float:
        return (0.13 if self.side else 0.22) * self.b

    @property
    def tw_bot(self) -> float:
        return (0.115 if self.side else 0.185) * self.b

    def P(self, x: float, y: float) -> tuple[float, float]:
        return (self.cx + x * self.U, y * self.U)

    def tq(self, u0: float, v0: float, u1: float, v1: float) -> list[tuple[float, float]]:
        """Torso-local quad (u across, v down, both 0..1) mapped onto the torso's trapezoid."""
        pts = []
        for u, v in ((u0, v0), (u1, v0), (u1, v1), (u0, v1)):
            y = _SHOULDER_Y + (_HIP_Y - _SHOULDER_Y) * v
            half = (self.tw_top + (self.tw_bot - self.tw_top) * v) / 2
            pts.append(self.P(-half + 2 * half * u, y))
        return pts


def _draw_legs(f: _Figure) -> None:
    """Both legs with their shoes (back leg first from the side), then a skirt over them."""
    d, idn, b, U, P, side = f.d, f.idn, f.b, f.U, f.P, f.side
    sw, hip_y = f.sw, _HIP_Y
    if side:
        ang = 0.38 * sw
        legs = [(-ang, 0.8), (ang, 1.0)]  # back leg (shaded) first
        hips = [(0.0, hip_y - 0.02)] * 2
    else:
        lift = 0.035
        legs = [(0.0, 1.0), (0.0, 1.0)]
        hips = [(-0.047 * b, hip_y - 0.02), (0.047 * b, hip_y - 0.02)]
    leg_len = _FOOT_Y - hip_y + 0.02
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
        d.polygon(_seg(p0, p1, 0.078 * b * U, 0.056 * b * U), fill=_shade(idn.bottom, shade))
        if idn.bottom_type != "trousers":
            d.polygon(_seg(_lerp(p0, p1, knee_t), p1, 0.07 * b * U, 0.05 * b * U), fill=_shade(idn.skin, shade))
        # shoe: a box at the foot, longer and pointing forward from the side
        fx, fy = end
        if side:
            x0, x1 = (fx - 0.025, fx + 0.07) if f.facing > 0 else (fx - 0.07, fx + 0.025)
        else:
            x0, x1 = fx - 0.036 * b, fx + 0.036 * b
        d.rectangle([P(x0, fy - 0.01), P(x1, min(1.0, fy + 0.045))], fill=_shade(idn.shoes, shade))
    if idn.bottom_type == "skirt":
        tw = 0.11 if side else 0.19 * b
        d.polygon([P(-tw / 2, hip_y - 0.03), P(tw / 2, hip_y - 0.03), P(tw * 0.75, 0.68), P(-tw * 0.75, 0.68)],
                  fill=_shade(idn.bottom, 1.0))


def _draw_arm(f: _Figure, sx: float, ang: float, shade: float, shorten: float, wrist: bool) -> None:
    """One arm from the shoulder at ``sx``, swung by ``ang`` (radians): skin, then the sleeve, then a wristband."""
    d, idn, b, U = f.d, f.idn, f.b, f.U
    s0 = (sx, _SHOULDER_Y + 0.015)
    ln = 0.33 - shorten  # the arm's length
    e = (sx + math.sin(ang) * ln, s0[1] + math.cos(ang) * ln)
    p0, p1 = f.P(*s0), f.P(*e)
    d.polygon(_seg(p0, p1, f.arm_w * U, 0.042 * b * U), fill=_shade(idn.skin, shade))
    sleeve_t = 0.9 if idn.long_sleeves else 0.38
    d.polygon(_seg(p0, _lerp(p0, p1, sleeve_t), f.arm_w * 1.12 * U, 0.048 * b * U), fill=_shade(idn.top, shade))
    if wrist and idn.wristband is not None:
        d.polygon(_seg(_lerp(p0, p1, 0.8), _lerp(p0, p1, 0.88), 0.05 * b * U, 0.05 * b * U),
                  fill=_shade(idn.wristband, shade))


def _draw_side_backpack(f: _Figure) -> None:
    """A backpack seen from the side: it sits behind the torso, so it is drawn before it."""
    if f.side and f.idn.bag == "backpack":
        bx = -f.facing * (f.tw_top / 2 + 0.035)
        f.d.rectangle([f.P(min(bx, bx + f.facing * 0.05), 0.17), f.P(max(bx, bx + f.facing * 0.05), 0.42)],
                      fill=_shade(f.idn.bag_colour, 1.0))


def _draw_torso(f: _Figure) -> None:
    """The torso in the top's colour and its texture (stripes or checks in the second colour)."""
    d, idn, tq = f.d, f.idn, f.tq
    d.polygon(tq(0, 0, 1, 1), fill=_shade(idn.top, 1.0))
    n = idn.texture_n
    if idn.top_texture == "stripes":
        for i in range(1, n, 2):
            d.polygon(tq(0, i / n, 1, (i + 1) / n), fill=_shade(idn.top2, 1.0))
    elif idn.top_texture == "checks":
        m = 2 if f.side else 4
        for i in range(n):
            for j in range(m):
                if (i + j) % 2:
                    d.polygon(tq(j / m, i / n, (j + 1) / m, (i + 1) / n), fill=_shade(idn.top2, 1.0))


def _draw_logo(f: _Figure) -> None:
    """The chest logo, seen from the front only."""
    d, idn, P = f.d, f.idn, f.P
    if f.view == "front" and idn.logo is not None:
        lx, ly, r = 0.045 * f.b, 0.235, 0.021
        box = [P(lx - r, ly - r), P(lx + r, ly + r)]
        if idn.logo_shape == "circle":
            d.ellipse(box, fill=_shade(idn.logo, 1.0))
        elif idn.logo_shape == "square":
            d.rectangle(box, fill=_shade(idn.logo, 1.0))
        else:
            d.polygon([P(lx, ly - r), P(lx + r, ly + r), P(lx - r, ly + r)], fill=_shade(idn.logo, 1.0))


def _draw_bags(f: _Figure) -> None:
    """A backpack seen from the front (its straps) or the back, and a shoulder bag from any view."""
    d, idn, b, U, P, side, view, shoulder_y = f.d, f.idn, f.b, f.U, f.P, f.side, f.view, _SHOULDER_Y
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


def _draw_front_arms(f: _Figure, arm_ang: float) -> None:
    """The arms in front of the torso: the near arm from the side (swung by ``arm_ang``), both arms otherwise."""
    if f.side:
        _draw_arm(f, 0.0, arm_ang, 1.0, 0.0, True)
        return
    for k, sx in enumerate((-1, 1)):
        swing = 0.03 * (f.sw if k == 0 else -f.sw)
        wrist_here = (sx == f.idn.wrist_side) if f.view == "front" else (sx == -f.idn.wrist_side)
        _draw_arm(f, sx * (f.tw_top / 2 + f.arm_w / 2 - 0.004), sx * 0.06, 1.0, max(0.0, swing), wrist_here)


def _draw_code(f: _Figure) -> None:
    """Draw the identity's chest code (generator version 4) on the torso, if it has one."""
    code = f.idn.code
    if code is None:
        return
    u0, v0, u1, v1 = CODE_BOX
    du, dv = (u1 - u0) / CODE_COLS, (v1 - v0) / CODE_ROWS
    for i, colour in enumerate(code):
        r, c = divmod(i, CODE_COLS)
        f.d.polygon(f.tq(u0 + c * du, v0 + r * dv, u0 + (c + 1) * du, v0 + (r + 1) * dv),
                    fill=_shade(CODE_COLOURS[colour], 1.0))


def _draw_head(f: _Figure) -> None:
    """Neck, head, hair (long hair behind or around the head), face from the front, and a hat."""
    d, idn, P, side, view, facing = f.d, f.idn, f.P, f.side, f.view, f.facing
    d.rectangle([P(-0.018, 0.11), P(0.018, _SHOULDER_Y + 0.01)], fill=_shade(idn.skin, 0.92))
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
        d.ellipse(head, fill=_shade(idn.skin, 1.0))
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
    f = _Figure(d=ImageDraw.Draw(img), idn=identity, view=view, facing=facing, sw=math.sin(phase), cx=W / 2.0,
                U=float(H))
    # drawn back to front: the order below is the order of the strokes on the canvas
    _draw_legs(f)
    arm_ang = -0.42 * f.sw * facing
    if f.side:  # the far arm, behind the torso
        _draw_arm(f, 0.0, -arm_ang, 0.8, 0.0, False)
    _draw_side_backpack(f)
    _draw_torso(f)
    _draw_logo(f)
    _draw_bags(f)
    _draw_front_arms(f, arm_ang)
    _draw_code(f)  # the fine code, on top of everything on the torso (every view)
    _draw_head(f)
    if ss > 1:
        # area reduction with a triangle filter: a little optical blur, sub-pixel cues blend away
        img = img.resize((W // ss, h), Image.BILINEAR)
    return img
