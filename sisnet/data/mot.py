"""Build a ReID dataset (Market-1501 layout) from MOTChallenge tracking annotations.

>>> from sisnet.data.mot import convert_mot
>>> root = convert_mot(["data/MOT17/train/MOT17-02-FRCNN"], "data/mot_reid")
>>> from sisnet.data import load_dataset
>>> ds = load_dataset("synthetic", root)        # Market-1501 layout, any number of cameras

CLI: ``python -m sisnet.data.mot SEQ [SEQ ...] --out DIR [--min-height-px 40] [--frame-stride 5] ...``; its
summary gives the crops per split and how many gallery crops :mod:`sisnet.footage`'s near-duplicate rule (same
track within 2 s of the query) excludes on the result.

Input: each *sequence* is either a MOTChallenge sequence folder or a video file.

* A folder holds ``gt/gt.txt`` and its frames, either in ``img1/`` (or the ``imDir`` named in ``seqinfo.ini``;
  file stems are the 1-based frame numbers, e.g. ``000001.jpg``) or as one video file
  (:data:`VIDEO_EXTENSIONS`). Frames take precedence over a video in the same folder.
* A video file (``.mp4``, ``.avi``, ``.mkv``, ``.webm``, ``.mov``, ...) whose folder holds ``gt/gt.txt`` (and
  optionally ``seqinfo.ini``): use it when the folder holds several videos, or both frames and a video.
* The frame folder itself (``MOT17-02-FRCNN/img1``): the same as its sequence folder.

Videos are decoded sequentially with PyAV (``av``, a dependency; FFmpeg's decoders); frame ``k`` is the k-th
decoded frame, 1-based, exactly as ``ffmpeg -i video -start_number 1 img1/%06d.jpg`` numbers the frames that
MOTChallenge's ``gt.txt`` rows refer to. Only the annotated frames that are kept are converted to images, and
decoding stops after the last one. A file that cannot be opened or decoded raises :class:`MotFormatError` naming
it and FFmpeg's reason. The frame rate (``frameRate`` in ``seqinfo.ini``, else the video's average rate) is
recorded in ``meta.json`` and ``mot_index.csv`` for the near-duplicate window of :mod:`sisnet.footage`.

Annotation formats (``fmt="auto"`` detects them from the column count, or pass ``fmt``):

* ``mot15``: ``frame,id,bb_left,bb_top,width,height,flag,x,y,z`` (10 columns; the world coordinates
  ``x,y,z`` are ignored, often ``-1``). ``flag`` 0 = ignore. No class, no visibility. Also 6 or 7 columns.
* ``mot16`` / ``mot17`` / ``mot20``: ``frame,id,bb_left,bb_top,width,height,conf,class,visibility`` (9 columns).
  ``conf`` 0 = ignore; only ``classes`` (default ``(1,)`` = pedestrian) are kept; ``visibility`` (0..1) must
  be >= ``min_visibility``.

Parsing is lenient where real files vary: trailing commas, blank lines, spaces after commas, floats for
every column (frame and id must still be integral), ``-1`` placeholders. Boxes are in MOT's 1-based pixel
coordinates (the top-left pixel of an image is ``(1, 1)``); the crop is
``[round(bb_left) - 1, round(bb_left + width) - 1)`` x ``[round(bb_top) - 1, round(bb_top + height) - 1)``,
clipped to the image. Rows with id < 0 (detections, not tracks) are ignored.

Rules, in order: drop ignored rows (flag/conf 0, other classes, visibility too low); keep frames with
``(frame - first_frame) % frame_stride == 0``; clip the box; drop crops narrower than ``min_width_px`` or
lower than ``min_height_px`` after clipping; drop identities with fewer than ``min_crops_per_id`` crops.

Output (written to a temporary folder beside ``out_dir`` and renamed into place, so a crash leaves no half
dataset): ``bounding_box_train/``, ``query/``, ``bounding_box_test/`` with Market names
``{pid:04d}_c{cam}s{seq}_{frame:06d}_01.jpg``; ``scales.csv`` (``split,name,height_px`` where ``height_px`` is
the clipped crop's native height in pixels, before resizing to ``crop_size``); ``mot_index.csv`` (one row per
crop: sequence, track id, frame, box, visibility, pid, camera, split, fps); ``meta.json`` (parameters, counts).

* Identities: every (sequence, track id) is one identity with a globally unique pid ``1..N`` (pid 0 and -1
  mean distractor / junk in Market naming, so they are never used), numbered by sequence then track id.
* Train / test: identities are shuffled with ``seed`` and ``round(test_fraction * N)`` of them (at least one,
  and at least one left for training) form the test set; an identity is in one split only.
* Cameras: a MOT sequence is one camera, but Market-style evaluation only counts gallery matches from
  *another* camera. So each track's crops (in frame order) are cut into ``pseudo_cameras`` consecutive time
  segments of equal size (``numpy.array_split``), segment k -> camera k+1. With ``sequence_as_camera=True``
  each sequence also gets its own block of cameras (camera = seq_index * pseudo_cameras + k + 1).
* Query / gallery: for each test identity, one crop per pseudo-camera (chosen with ``seed``) goes to query,
  provided the identity appears in at least two cameras; all other crops go to the gallery.

The pseudo-cameras let Market-style tools run on the result, but the Market protocol then counts a query's
neighbouring frames in the next segment as cross-camera matches, which inflates rank-1. Evaluate footage with
:func:`sisnet.footage.evaluate_footage`, which ignores same-track crops closer in time than a window instead.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from PIL import Image

from sisnet.data.formats import MARKET_SPLIT_DIRS
from sisnet.data.frames import (  # noqa: F401  (FRAME_EXTENSIONS, VIDEO_EXTENSIONS importable from here too)
    FRAME_EXTENSIONS,
    VIDEO_EXTENSIONS,
    FrameSource,
    MotFormatError,
)
from sisnet.utils import atomic_write_json, ensure_writable_dir

__all__ = [
    "convert_mot",
    "read_mot_annotations",
    "filter_annotations",
    "detect_format",
    "MotFormatError",
    "MOT_FORMATS",
    "FRAME_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "FrameSource",
]

MOT_FORMATS = ("mot15", "mot16", "mot17", "mot20")
_COLS_16 = ["frame", "id", "bb_left", "bb_top", "width", "height", "conf", "cls", "visibility"]
_COLS_15 = ["frame", "id", "bb_left", "bb_top", "width", "height", "conf", "x", "y", "z"]


@dataclass
class _Params:
    min_height_px: int
    min_width_px: int
    frame_stride: int
    min_visibility: float
    classes: tuple[int, ...]
    test_fraction: float
    pseudo_cameras: int
    sequence_as_camera: bool
    min_crops_per_id: int
    crop_size: tuple[int, int] | None
    fmt: str
    seed: int
    jpeg_quality: int


# ------------------------------------------------------------------------------------- annotations
def _read_table(gt_path: Path) -> pd.DataFrame:
    """Read a MOT text file into a float frame with columns 0..K-1.

    Hand-written rather than ``pd.read_csv`` because real MOT files are ragged in harmless ways that the CSV
    reader turns into spurious columns: trailing commas, leading spaces, ``, `` separators, blank lines.
    """
    rows: list[list[str]] = []
    line_numbers: list[int] = []
    with open(gt_path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            fields = [f for f in line.replace(",", " ").split()]
            if fields:
                rows.append(fields)
                line_numbers.append(lineno)
    if not rows:
        return pd.DataFrame()
    ncol = len(rows[0])
    for fields, lineno in zip(rows, line_numbers):
        if len(fields) != ncol:
            raise MotFormatError(
                f"{gt_path}: line {lineno} has {len(fields)} values but line {line_numbers[0]} has {ncol}; every "
                f"row must have the same number of comma-separated values."
            )
    try:
        values = np.asarray(rows, dtype=np.float64)
    except ValueError:
        for fields, lineno in zip(rows, line_numbers):
            for col, f in enumerate(fields, start=1):
                try:
                    float(f)
                except ValueError:
                    raise MotFormatError(
                        f"{gt_path}: line {lineno}, column {col} is {f!r}, not a number. MOT files are "
                        f"comma-separated numbers `frame,id,bb_left,bb_top,width,height,...`; remove header or "
                        f"comment lines."
                    ) from None
        raise
    return pd.DataFrame(values)


def detect_format(num_columns: int, gt_path: str | os.PathLike = "gt.txt") -> str:
    """MOT format from the column count: 9 -> ``mot16`` (MOT16/17/20 layout), 6, 7 or 10 -> ``mot15``."""
    if num_columns == 9:
        return "mot16"
    if num_columns in (6, 7, 10):
        return "mot15"
    raise MotFormatError(
        f"{gt_path}: {num_columns} columns per row, which matches no MOTChallenge layout (MOT15: 10 "
        f"`frame,id,x,y,w,h,flag,wx,wy,wz`; MOT16/17/20: 9 `frame,id,x,y,w,h,conf,class,visibility`). "
        f"Pass fmt='mot15' or fmt='mot17' to convert_mot to force one."
    )


def read_mot_annotations(gt_path: str | os.PathLike, fmt: str = "auto") -> tuple[pd.DataFrame, str]:
    """Parse a MOT ``gt.txt`` into a DataFrame with columns frame, id, bb_left, bb_top, width, height, conf,
    cls, visibility (``cls``/``visibility`` are NaN for MOT15). Returns ``(frame, detected_or_given_fmt)``."""
    gt_path = Path(gt_path)
    if not gt_path.is_file():
        raise FileNotFoundError(
            f"MOT annotation file {str(gt_path)!r} not found. A MOTChallenge sequence folder holds gt/gt.txt "
            f"(test sequences have no public ground truth and cannot be converted)."
        )
    num = _read_table(gt_path)
    if num.empty:
        raise MotFormatError(f"{gt_path} holds no annotation rows.")
    fmt = str(fmt).lower()
    if fmt == "auto":
        fmt = detect_format(num.shape[1], gt_path)
    if fmt not in MOT_FORMATS:
        raise ValueError(f"fmt={fmt!r} is not one of 'auto', {', '.join(map(repr, MOT_FORMATS))}.")
    ncol = num.shape[1]
    if fmt == "mot15":
        if ncol < 6:
            raise MotFormatError(f"{gt_path}: MOT15 rows need at least 6 columns, found {ncol}.")
        df = num.iloc[:, : min(ncol, 7)].copy()
        df.columns = _COLS_15[: df.shape[1]]
        if "conf" not in df:
            df["conf"] = 1.0
        df["cls"] = np.nan
        df["visibility"] = np.nan
    else:
        if ncol != 9:
            raise MotFormatError(
                f"{gt_path}: {fmt} ground truth has 9 columns `frame,id,x,y,w,h,conf,class,visibility`, this file "
                f"has {ncol}. If it is a MOT15 file (10 columns `...,flag,x,y,z`) pass fmt='mot15' (or 'auto'); "
                f"detection files (det.txt) are not ground truth."
            )
        df = num.iloc[:, :9].copy()
        df.columns = _COLS_16
    for col in ("frame", "id"):
        if not np.all(np.isclose(df[col], np.round(df[col]))):
            raise MotFormatError(f"{gt_path}: column {col!r} must hold whole numbers (found e.g. {df[col].iloc[0]}).")
        df[col] = np.round(df[col]).astype(np.int64)
    if (df["frame"] < 1).any():
        raise MotFormatError(f"{gt_path}: frame numbers are 1-based in MOTChallenge files; found {df['frame'].min()}.")
    return df.reset_index(drop=True), fmt


def filter_annotations(df: pd.DataFrame, fmt: str, params: _Params) -> pd.DataFrame:
    """Apply the ignore rules (id < 0, flag/conf 0, class filter, visibility) and the frame stride."""
    keep = (df["id"] >= 0) & (df["conf"] != 0) & (df["width"] > 0) & (df["height"] > 0)
    if fmt != "mot15":
        keep &= df["cls"].isin(params.classes)
        keep &= df["visibility"] >= params.min_visibility
    df = df[keep]
    if not df.empty and params.frame_stride > 1:
        first = int(df["frame"].min())
        df = df[(df["frame"] - first) % params.frame_stride == 0]
    return df


# ----------------------------------------------------------------------------------------- convert
def convert_mot(
    sequences: Sequence[str | os.PathLike] | str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    min_height_px: int = 40,
    min_width_px: int = 8,
    frame_stride: int = 5,
    min_visibility: float = 0.25,
    classes: Sequence[int] = (1,),
    test_fraction: float = 0.5,
    pseudo_cameras: int = 2,
    sequence_as_camera: bool = False,
    min_crops_per_id: int = 2,
    crop_size: tuple[int, int] | None = (128, 64),
    fmt: str = "auto",
    seed: int = 0,
    overwrite: bool = False,
    jpeg_quality: int = 95,
    progress: bool = False,
) -> Path:
    """Convert MOTChallenge sequences into one Market-1501-layout ReID dataset; returns ``out_dir``.

    Args:
        sequences: sequence folders (each with ``gt/gt.txt`` and ``img1/`` or one video file), or video files in
            folders that hold ``gt/gt.txt``.
        out_dir: output dataset folder; load it with ``load_dataset("synthetic", out_dir)`` (Market layout,
            any camera count). Must not exist or be empty unless ``overwrite=True``.
        min_height_px / min_width_px: minimum crop size after clipping to the image.
        frame_stride: keep every ``frame_stride``-th annotated frame (consecutive frames are near-duplicates).
        min_visibility: minimum MOT16/17/20 visibility (0..1); MOT15 has no visibility column.
        classes: MOT16/17/20 classes to keep (1 = pedestrian).
        test_fraction: fraction of identities in the test split (query + gallery).
        pseudo_cameras: time segments per track, each a camera (>= 2; see module docstring).
        sequence_as_camera: give every sequence its own block of camera numbers.
        min_crops_per_id: identities with fewer crops (after all rules) are dropped.
        crop_size: ``(H, W)`` of the stored crops (Market: ``(128, 64)``); ``None`` keeps native size.
        fmt: ``"auto"`` or one of :data:`MOT_FORMATS` (applies to every sequence).
        seed: seeds the identity split and the query choice.
    """
    if isinstance(sequences, (str, os.PathLike)):
        sequences = [sequences]
    seq_dirs = [Path(s).expanduser() for s in sequences]
    if not seq_dirs:
        raise ValueError("convert_mot needs at least one MOT sequence folder.")
    params = _check_params(
        min_height_px=min_height_px, min_width_px=min_width_px, frame_stride=frame_stride,
        min_visibility=min_visibility, classes=tuple(int(c) for c in classes), test_fraction=test_fraction,
        pseudo_cameras=pseudo_cameras, sequence_as_camera=sequence_as_camera, min_crops_per_id=min_crops_per_id,
        crop_size=None if crop_size is None else (int(crop_size[0]), int(crop_size[1])), fmt=fmt, seed=seed,
        jpeg_quality=jpeg_quality,
    )  # fmt: skip
    out_dir = Path(out_dir).expanduser()
    _check_paths(seq_dirs, out_dir, overwrite)
    # 1. annotations -> kept boxes per sequence
    tables, sources = _read_sequences(seq_dirs, params)
    boxes = pd.concat(tables, ignore_index=True)
    # 2. clip to the image and apply the size rules (the frame size comes from one frame header)
    crops = _clip_and_filter(boxes, sources, params)
    if crops.empty:
        raise MotFormatError(
            f"No crop survives the rules (min_height_px={min_height_px}, min_width_px={min_width_px}, "
            f"min_visibility={min_visibility}, classes={tuple(classes)}, frame_stride={frame_stride}) in "
            f"{[str(s) for s in seq_dirs]}. Relax them."
        )
    # 3. identities, pseudo-cameras, splits, names
    crops = _assign_ids_cameras_splits(crops, params)
    # 4. write into a temporary sibling folder, then rename it into place
    parent = out_dir.absolute().parent
    ensure_writable_dir(parent, "output parent folder")
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=parent))
    try:
        _write_market(crops, sources, work, params, progress)
        atomic_write_json(work / "meta.json", _conversion_meta(params, seq_dirs, sources, tables, crops))
        if out_dir.exists():
            shutil.rmtree(out_dir) if out_dir.is_dir() else out_dir.unlink()
        os.replace(work, out_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return out_dir


def _check_paths(seq_dirs: list[Path], out_dir: Path, overwrite: bool) -> None:
    """Raise when ``out_dir`` holds something (unless ``overwrite``) or a sequence does not exist."""
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        if not overwrite:
            raise FileExistsError(
                f"Output folder {str(out_dir)!r} already exists and is not empty. Choose a new folder or pass "
                f"overwrite=True (--overwrite) to replace it."
            )
    for seq in seq_dirs:
        if not seq.exists():
            raise FileNotFoundError(
                f"MOT sequence {str(seq)!r} does not exist (expected a folder such as MOT17/train/MOT17-02-FRCNN with "
                f"gt/gt.txt and img1/, or a video file in a folder with gt/gt.txt)."
            )


def _read_sequences(seq_dirs: list[Path], params: _Params) -> tuple[list[pd.DataFrame], list["FrameSource"]]:
    """Each sequence's kept annotation rows (tagged with its index, name, format and fps) and its frame source."""
    tables, sources = [], []
    for seq_idx, seq in enumerate(seq_dirs, start=1):
        src = FrameSource(seq)
        df, seq_fmt = read_mot_annotations(src.seq_dir / "gt" / "gt.txt", params.fmt)
        df = filter_annotations(df, seq_fmt, params)
        df = df.assign(seq_index=seq_idx, sequence=src.name, fmt=seq_fmt, fps=src.fps if src.fps else np.nan)
        tables.append(df)
        sources.append(src)
    return tables, sources


def _conversion_meta(params: _Params, seq_dirs: list[Path], sources: list["FrameSource"],
                     tables: list[pd.DataFrame], crops: pd.DataFrame) -> dict:
    """``meta.json`` of a conversion: the parameters, every sequence read, and the images and ids per split."""
    return {
        "generator": "sisnet.data.mot.convert_mot",
        "params": asdict(params),
        "sequences": [
            {"path": str(s.absolute()), "name": src.name, "seq_index": i, "fmt": t["fmt"].iloc[0] if len(t) else None,
             "frames": src.describe(), "image_size_wh": list(src.size) if src.size else None, "fps": src.fps}
            for i, (s, src, t) in enumerate(zip(seq_dirs, sources, tables), start=1)
        ],  # fmt: skip
        "counts": {
            subset: {"images": int((crops["split"] == folder).sum()),
                     "ids": int(crops.loc[crops["split"] == folder, "pid"].nunique())}
            for subset, folder in MARKET_SPLIT_DIRS.items()
        },  # fmt: skip
        "num_cameras": int(crops["cam"].nunique()),
    }


def _check_params(**kw) -> _Params:
    p = _Params(**kw)
    errors = []
    if p.min_height_px < 1 or p.min_width_px < 1:
        errors.append("min_height_px and min_width_px must be >= 1")
    if p.frame_stride < 1:
        errors.append("frame_stride must be >= 1")
    if not 0.0 <= p.min_visibility <= 1.0:
        errors.append("min_visibility must be in [0, 1]")
    if not 0.0 < p.test_fraction < 1.0:
        errors.append("test_fraction must be in (0, 1)")
    if p.pseudo_cameras < 2:
        errors.append(
            "pseudo_cameras must be >= 2: a MOT track is seen by one camera, and Market-style evaluation ignores "
            "gallery matches from the query's own camera, so with one camera no query could ever be matched"
        )
    if p.min_crops_per_id < 1:
        errors.append("min_crops_per_id must be >= 1")
    if p.crop_size is not None and min(p.crop_size) < 1:
        errors.append("crop_size must be (H, W) with positive sizes, or None")
    if str(p.fmt).lower() not in ("auto", *MOT_FORMATS):
        errors.append(f"fmt must be 'auto' or one of {MOT_FORMATS}")
    if errors:
        raise ValueError("convert_mot: " + "; ".join(errors) + ".")
    p.fmt = str(p.fmt).lower()
    return p


def _clip_and_filter(boxes: pd.DataFrame, sources: list["FrameSource"], params: _Params) -> pd.DataFrame:
    """Clip every kept box to its frame (vectorised) and drop crops below the minimum size.

    MOT boxes are 1-based: the crop is ``[round(bb_left) - 1, round(bb_left + width) - 1)`` (same for y),
    clipped to ``[0, W) x [0, H)``.
    """
    parts = []
    for seq_idx, src in enumerate(sources, start=1):
        b = boxes[boxes["seq_index"] == seq_idx]
        if b.empty:
            continue
        width_px, height_px = src.frame_size(int(b["frame"].min()))
        x0 = np.clip(np.round(b["bb_left"].to_numpy()).astype(np.int64) - 1, 0, width_px)
        y0 = np.clip(np.round(b["bb_top"].to_numpy()).astype(np.int64) - 1, 0, height_px)
        x1 = np.clip(np.round((b["bb_left"] + b["width"]).to_numpy()).astype(np.int64) - 1, 0, width_px)
        y1 = np.clip(np.round((b["bb_top"] + b["height"]).to_numpy()).astype(np.int64) - 1, 0, height_px)
        part = pd.DataFrame({
            "sequence": b["sequence"].to_numpy(), "seq_index": seq_idx, "track_id": b["id"].to_numpy(),
            "frame": b["frame"].to_numpy(), "bb_left": b["bb_left"].to_numpy(), "bb_top": b["bb_top"].to_numpy(),
            "bb_width": b["width"].to_numpy(), "bb_height": b["height"].to_numpy(),
            "x0": x0, "y0": y0, "x1": x1, "y1": y1, "width_px": x1 - x0, "height_px": y1 - y0,
            "visibility": b["visibility"].to_numpy(), "image_width_px": width_px, "image_height_px": height_px,
            "fps": b["fps"].to_numpy(),
        })  # fmt: skip
        keep = (part["width_px"] >= params.min_width_px) & (part["height_px"] >= params.min_height_px)
        parts.append(part[keep])
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _assign_ids_cameras_splits(crops: pd.DataFrame, params: _Params) -> pd.DataFrame:
    counts = crops.groupby(["seq_index", "track_id"])["frame"].transform("size")
    dropped = int((counts < params.min_crops_per_id).sum())
    crops = crops[counts >= params.min_crops_per_id].sort_values(["seq_index", "track_id", "frame"])
    crops = crops.reset_index(drop=True)
    tracks = crops[["seq_index", "track_id"]].drop_duplicates().reset_index(drop=True)
    if len(tracks) < 2:
        raise MotFormatError(
            f"Only {len(tracks)} identity survives the rules ({dropped} crops of short tracks dropped); a train/test "
            f"split needs at least 2. Lower min_crops_per_id / min_height_px / frame_stride or add sequences."
        )
    tracks["pid"] = np.arange(1, len(tracks) + 1)  # 0 and -1 are distractor / junk in Market naming
    crops = crops.merge(tracks, on=["seq_index", "track_id"], how="left")

    # time segments of each track -> pseudo-camera
    seg = np.zeros(len(crops), dtype=np.int64)
    for _, idx in crops.groupby("pid").indices.items():
        # rows of one pid are in frame order (sorted above); array_split gives near-equal consecutive chunks
        for k, chunk in enumerate(np.array_split(np.asarray(idx), params.pseudo_cameras)):
            seg[chunk] = k
    crops["segment"] = seg
    offset = (crops["seq_index"] - 1) * params.pseudo_cameras if params.sequence_as_camera else 0
    crops["cam"] = crops["segment"] + 1 + offset

    rng = np.random.default_rng(params.seed)
    pids = tracks["pid"].to_numpy().copy()
    rng.shuffle(pids)
    n_test = min(max(1, int(round(params.test_fraction * len(pids)))), len(pids) - 1)
    test_pids = set(pids[:n_test].tolist())
    split = np.where(crops["pid"].isin(test_pids), MARKET_SPLIT_DIRS["gallery"], MARKET_SPLIT_DIRS["train"])
    crops["split"] = split
    # one query per (test pid, camera) for identities seen by >= 2 cameras
    test = crops[crops["pid"].isin(test_pids)]
    for pid, grp in test.groupby("pid"):
        if grp["cam"].nunique() < 2:
            continue
        for _, cam_grp in grp.groupby("cam"):
            crops.loc[rng.choice(cam_grp.index.to_numpy()), "split"] = MARKET_SPLIT_DIRS["query"]
    crops["name"] = [
        f"{pid:04d}_c{cam}s{seq}_{frame:06d}_01.jpg"
        for pid, cam, seq, frame in zip(crops["pid"], crops["cam"], crops["seq_index"], crops["frame"])
    ]
    if crops.duplicated(["split", "name"]).any():
        dup = crops.loc[crops.duplicated(["split", "name"], keep=False)].iloc[0]
        raise MotFormatError(
            f"Sequence {dup['sequence']}: track {dup['track_id']} has two boxes in frame {dup['frame']}; a MOT "
            f"ground-truth track has at most one box per frame. Fix gt.txt (remove the duplicate row)."
        )
    return crops


def _write_market(crops: pd.DataFrame, sources: list["FrameSource"], root: Path, params: _Params,
                  progress: bool) -> None:
    """Cut, resize and save every crop (each frame is decoded once), then the sidecars."""
    from tqdm.auto import tqdm

    for d in MARKET_SPLIT_DIRS.values():
        (root / d).mkdir()
    bar = tqdm(total=int(crops.groupby(["seq_index", "frame"]).ngroups), desc="MOT frames", unit="frame",
               disable=not progress)  # fmt: skip
    for seq_idx, src in enumerate(sources, start=1):
        seq_crops = crops[crops["seq_index"] == seq_idx]
        if seq_crops.empty:
            continue
        by_frame = dict(tuple(seq_crops.groupby("frame")))
        for frame_no, image in src.iter_frames(list(by_frame)):
            if image.size != src.size:
                raise MotFormatError(
                    f"{src.seq_dir}: frame {frame_no} is {image.size[0]}x{image.size[1]} px but the first annotated "
                    f"frame is {src.size[0]}x{src.size[1]}; all frames of a sequence must have one size."
                )
            for row in by_frame[frame_no].itertuples(index=False):
                crop = image.crop((row.x0, row.y0, row.x1, row.y1))
                if params.crop_size is not None:
                    crop = crop.resize((params.crop_size[1], params.crop_size[0]), Image.BICUBIC)
                crop.save(root / row.split / row.name, quality=params.jpeg_quality)
            bar.update(1)
    bar.close()
    crops[["split", "name", "height_px"]].to_csv(root / "scales.csv", index=False)
    index_cols = ["split", "name", "pid", "cam", "segment", "sequence", "seq_index", "track_id", "frame",
                  "bb_left", "bb_top", "bb_width", "bb_height", "x0", "y0", "x1", "y1", "height_px", "width_px",
                  "visibility", "image_width_px", "image_height_px", "fps"]  # fmt: skip
    crops[index_cols].to_csv(root / "mot_index.csv", index=False)


# --------------------------------------------------------------------------------------------- CLI
def _main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m sisnet.data.mot",
        description="Convert MOTChallenge sequences (gt/gt.txt + img1/ frames or a video file) into a Market-1501-layout "
        "ReID dataset (load it with sisnet.data.load_dataset('synthetic', OUT)).",
    )
    ap.add_argument("sequences", nargs="+",
                    help="MOT sequence folders (gt/gt.txt + img1/ or one video), or video files beside gt/gt.txt")
    ap.add_argument("--out", required=True, help="output dataset folder")
    ap.add_argument("--min-height-px", type=int, default=40)
    ap.add_argument("--min-width-px", type=int, default=8)
    ap.add_argument("--frame-stride", type=int, default=5)
    ap.add_argument("--min-visibility", type=float, default=0.25)
    ap.add_argument("--classes", type=int, nargs="+", default=[1], help="MOT16/17/20 classes to keep (1=pedestrian)")
    ap.add_argument("--test-fraction", type=float, default=0.5)
    ap.add_argument("--pseudo-cameras", type=int, default=2)
    ap.add_argument("--sequence-as-camera", action="store_true")
    ap.add_argument("--min-crops-per-id", type=int, default=2)
    ap.add_argument("--crop-size", type=int, nargs=2, default=[128, 64], metavar=("H", "W"),
                    help="stored crop size; 0 0 keeps native size")
    ap.add_argument("--fmt", default="auto", choices=("auto", *MOT_FORMATS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--overwrite", action="store_true")
    args = ap.parse_args(argv)
    try:
        out = convert_mot(
            args.sequences, args.out, min_height_px=args.min_height_px, min_width_px=args.min_width_px,
            frame_stride=args.frame_stride, min_visibility=args.min_visibility, classes=args.classes,
            test_fraction=args.test_fraction, pseudo_cameras=args.pseudo_cameras,
            sequence_as_camera=args.sequence_as_camera, min_crops_per_id=args.min_crops_per_id,
            crop_size=None if args.crop_size == [0, 0] else tuple(args.crop_size), fmt=args.fmt, seed=args.seed,
            overwrite=args.overwrite, progress=True,
        )  # fmt: skip
    except (MotFormatError, ValueError, FileNotFoundError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    meta = json.loads((out / "meta.json").read_text())
    print(f"wrote {out}: " + ", ".join(f"{k} {v['images']} images / {v['ids']} ids" for k, v in meta["counts"].items())
          + f", {meta['num_cameras']} cameras")
    print(_exclusion_summary(out))
    return 0


def _exclusion_summary(out: Path) -> str:
    """The CLI's line on what sisnet.footage's near-duplicate rule (default window) excludes on the converted set."""
    from sisnet import footage
    from sisnet.data import load_dataset

    q_index, g_index = footage.footage_index(load_dataset("synthetic", out))
    try:
        counts = footage.exclusion_counts(q_index, g_index)
    except ValueError as exc:  # no frame rate: the window in seconds cannot be converted
        return f"footage evaluation (sisnet.footage): {exc}"
    return (f"footage evaluation (sisnet.footage.evaluate_footage, window_s={footage.DEFAULT_WINDOW_S:g}): "
            + footage.describe_exclusion(counts, footage.window_label()))


if __name__ == "__main__":
    raise SystemExit(_main())
