"""MOT-style footage: :func:`render_mot_sequence` writes a MOTChallenge sequence of synthetic people walking."""
from __future__ import annotations

import math
import os
import shutil
import time
from pathlib import Path

import numpy as np
from PIL import Image

from .cameras import background_texture
from .people import make_identity, render_person
from .streams import S_MOT


# ---------------------------------------------------------------------------------------------- MOT
def _scene(rng: np.random.Generator, frame_size: tuple[int, int], horizon: int) -> np.ndarray:
    """(H, W, 3) float32 street scene: textured wall above the horizon, pavement below."""
    H, W = frame_size
    wall = background_texture(rng, int(rng.choice([0, 3, 5])), (max(horizon, 8), W)).astype(np.float32)
    yy, xx = np.mgrid[0:H - horizon, 0:W]
    depth = (yy + 20.0) / (H - horizon + 20.0)
    tile = ((xx - W / 2) / (depth * 60 + 1e-3)).astype(np.int64) + (np.log(depth + 1e-3) * 12).astype(np.int64)
    ground = np.array([140, 135, 128], np.float32) * (0.85 + 0.1 * (tile % 2))[..., None]
    ground *= (0.8 + 0.25 * depth)[..., None]
    return np.concatenate([wall[:horizon], ground], axis=0)


def _checked_out_dir(num_frames: int, num_people: int, frame_size: tuple[int, int], fps: int,
                     out_dir: str | Path) -> Path:
    """The absolute ``out_dir``; raises for sizes :func:`render_mot_sequence` cannot draw, or a folder that holds
    something."""
    H, W = (int(frame_size[0]), int(frame_size[1]))
    if num_frames < 1 or num_people < 1 or H < 64 or W < 64 or fps < 1:
        raise ValueError("render_mot_sequence needs num_frames >= 1, num_people >= 1, fps >= 1 and a frame_size "
                         f"(H, W) of at least 64x64; got num_frames={num_frames}, num_people={num_people}, "
                         f"frame_size={frame_size}, fps={fps}.")
    out = Path(out_dir).expanduser().absolute()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{str(out)!r} exists and is not an empty folder; pass a new out_dir for the MOT "
                              f"sequence or delete that one.")
    return out


def _plan_walkers(rng: np.random.Generator, seed: int, num_people: int, num_frames: int, H: int, W: int) -> list[dict]:
    """Each person's track: identity, height at its start and end, first frame, duration, start x, speed, view."""
    h_max = int(H * 0.6)
    h_min = max(16, int(H * 0.08))
    people = []
    for i in range(num_people):
        ident = make_identity(seed, S_MOT * 1_000_000 + i)
        towards = (i % 2 == 0)
        lo, hi = h_min * rng.uniform(1.0, 1.4), h_max * rng.uniform(0.75, 1.0)
        h0, h1 = (lo, hi) if towards else (hi, lo)
        t0 = 0 if i < 2 else int(rng.integers(0, max(1, num_frames // 2)))
        dur = int(num_frames * rng.uniform(0.7, 1.3))
        x0 = rng.uniform(0.15, 0.85) * W
        vx = rng.uniform(0.3, 1.2) * W / max(num_frames, 1) * (1 if rng.random() < 0.5 else -1)
        people.append(dict(id=i + 1, ident=ident, h0=h0, h1=h1, t0=t0, dur=max(2, dur), x0=x0, vx=vx,
                           view="front" if towards else "back", phase=float(rng.uniform(0, 2 * math.pi))))
    return people


def _place_people(people: list[dict], f: int, seed: int, horizon: int, k_foot: float, H: int, W: int) -> list[tuple]:
    """The people on screen in frame ``f`` (0-based), far (small) ones first: ``(h, person, image, left, top,
    alpha, box)`` with ``box`` the rendered extent ``(x0, y0, x1, y1)`` in 0-based image pixels."""
    placed = []
    for p in people:
        t = f - p["t0"]
        if t < 0 or t >= p["dur"]:
            continue
        a = t / (p["dur"] - 1)
        h = int(round(p["h0"] * (p["h1"] / p["h0"]) ** a))
        x = p["x0"] + p["vx"] * t
        foot = horizon + k_foot * h
        prng = np.random.default_rng([seed, S_MOT, p["id"], f])
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
    return placed


def _draw_frame(scene: np.ndarray, placed: list[tuple], f: int, seed: int, path: Path) -> list[tuple]:
    """Paste the ``placed`` people on the scene, add sensor noise, save frame ``f`` to ``path`` and return its gt
    rows (each person's visibility: the share of its pixels inside the image that no nearer person hides)."""
    H, W = scene.shape[:2]
    frame = Image.fromarray(np.clip(scene, 0, 255).astype(np.uint8))
    owner = np.zeros((H, W), dtype=np.int16)
    for j, (h, p, img, left, topp, alpha, _) in enumerate(placed, start=1):
        frame.paste(img, (left, topp), img)
        ys0, xs0 = max(0, topp), max(0, left)
        ys1, xs1 = min(H, topp + img.height), min(W, left + img.width)
        if ys1 > ys0 and xs1 > xs0:
            m = alpha[ys0 - topp:ys1 - topp, xs0 - left:xs1 - left] > 0
            owner[ys0:ys1, xs0:xs1][m] = j
    rows = []
    for j, (h, p, img, left, topp, alpha, (bx0, by0, bx1, by1)) in enumerate(placed, start=1):
        total = int((alpha > 0).sum())
        vis = float((owner == j).sum()) / max(1, total)
        rows.append((f + 1, p["id"], bx0 + 1, by0 + 1, bx1 - bx0, by1 - by0, 1, 1, round(vis, 4)))
    arr = np.asarray(frame, dtype=np.float32)
    arr += np.random.default_rng([seed, S_MOT, 0, f]).standard_normal(arr.shape, dtype=np.float32) * 3
    Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8)).save(path, format="JPEG", quality=90)
    return rows


def _write_gt_and_seqinfo(folder: Path, rows: list[tuple], name: str, fps: int, num_frames: int, H: int,
                          W: int) -> None:
    """``gt/gt.txt`` (rows sorted by frame, then id) and ``seqinfo.ini`` of the sequence in ``folder``."""
    rows = sorted(rows, key=lambda r: (r[0], r[1]))
    with open(folder / "gt" / "gt.txt", "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(",".join(str(v) for v in r) + "\n")
    with open(folder / "seqinfo.ini", "w", encoding="utf-8") as fh:
        fh.write(f"[Sequence]\nname={name}\nimDir=img1\nframeRate={fps}\nseqLength={num_frames}\n"
                 f"imWidth={W}\nimHeight={H}\nimExt=.jpg\n")


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
    out = _checked_out_dir(num_frames, num_people, frame_size, fps, out_dir)
    H, W = (int(frame_size[0]), int(frame_size[1]))
    rng = np.random.default_rng([seed, S_MOT])
    horizon = int(H * 0.22)
    k_foot = (H - horizon - 6) / (H * 0.62)  # foot row = horizon + k_foot * height
    scene = _scene(rng, (H, W), horizon)
    people = _plan_walkers(rng, seed, num_people, num_frames, H, W)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{time.monotonic_ns()}"
    rows: list[tuple] = []
    try:
        (tmp / "img1").mkdir(parents=True)
        (tmp / "gt").mkdir()
        for f in range(num_frames):
            placed = _place_people(people, f, seed, horizon, k_foot, H, W)
            rows += _draw_frame(scene, placed, f, seed, tmp / "img1" / f"{f + 1:06d}.jpg")
        _write_gt_and_seqinfo(tmp, rows, out.name, fps, num_frames, H, W)
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
