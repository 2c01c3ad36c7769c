"""Parsers of CUHK03 (extracted images, or the official cuhk-03.mat with the 767/700 split) and CUHK01 (10 splits).

* ``cuhk03`` (labeled boxes) and ``cuhk03_detected`` (detected boxes), Li et al. 2014; one split each, two
  layouts:

  - ``CUHK03_dataset`` (the extracted-image release, github manideep2510/CUHK03_dataset): ``<boxes>/train/`` and
    ``<boxes>/val/`` with ``PPPP_NN.jpg``: pid PPPP, image NN 00-04 camera 0, 05-09 camera 1 (the two views of
    the person's camera pair). Other entries of ``<boxes>/`` (``*_resized/`` copies, ``resize.py``) are not
    read. Train = ``train/`` (743 ids, 7,239 images). Query / gallery come from ``val/`` (100 ids, 938 images),
    whose numbers restart at 0000 for other people: their pid is ``VAL_PID_OFFSET + PPPP`` (10000 + PPPP) so
    that no test pid equals a training pid. Like the CUHK03 new protocol (Zhong et al. 2017): query = one image
    per (identity, camera), drawn with the fixed ``random.Random("sisnet-cuhk03-query")`` (the same draws for
    labeled and detected boxes), gallery = the rest; an identity seen by one camera only would have no
    cross-camera match and is all gallery (the release has none). This is the release's own split, not the
    767/700 one; its sizes are checked against ``cuhk03:CUHK03_dataset`` in PUBLISHED_COUNTS.
  - ``cuhk03`` (torchreid's): ``cuhk03_release/cuhk-03.mat`` (MATLAB v7.3 = HDF5, read with h5py) with
    ``cuhk03_new_protocol_config_labeled.mat`` / ``_detected.mat`` beside ``cuhk03_release/`` (Zhong et al.'s
    767/700 split: ``train_idx``, ``query_idx``, ``gallery_idx`` (1-based), ``labels``, ``filelist``); without
    the config file the load fails naming it. The ``labeled`` / ``detected`` cell holds one (persons x 10) cell
    per camera pair; its non-empty images are written once, like torchreid, to ``images_labeled/`` /
    ``images_detected/`` as ``{pair}_{person:03d}_{view}_{image:02d}.png`` (1-based; view 1 = images 1-5);
    a folder torchreid extracted is reused as is. pid = the config's label; camid = view - 1 (0/1), as in
    torchreid (so the 5 camera pairs share the two camids; every query's matches are in its pair's other view).
    Every file the config names must exist, or the load fails naming the missing ones.

* ``cuhk01`` (Li et al. 2012): ``campus/PPPPNNN.png`` (971 ids x 4): images 001-002 are camera (view) 0,
  003-004 view 1. 10 splits (torchreid: 485 train / 486 test ids); query = the test ids' view-0 images (972),
  gallery = their view-1 images (972). torchreid subtracts 1 from PPPP and adds the view-swapped splits (20).
"""
from __future__ import annotations

import os
import random
import re
import shutil
from pathlib import Path

from sisnet.data.formats import DatasetFormat, DatasetFormatError, ParsedSplits, Record
from sisnet.data.real import add_record, choose_train_ids, list_images, name_error, require_two_views, two_view_split

__all__ = ["CUHK_FORMATS", "VAL_PID_OFFSET", "CUHK03_MAT", "CUHK03_EXTRACTED"]

#: Added to the pids of the extracted release's ``val/`` folder (its numbers restart at 0000).
VAL_PID_OFFSET = 10_000
CUHK03_MAT = "cuhk03_release/cuhk-03.mat"
CUHK03_EXTRACTED = "CUHK03_dataset"
_BOXES = {"cuhk03": "labeled", "cuhk03_detected": "detected"}
_EXTRACTED_NAME = re.compile(r"^(?P<pid>\d{4})_(?P<index>\d{2})\.(?:jpg|jpeg|png)$", re.IGNORECASE)
_MAT_NAME = re.compile(r"^(?P<pair>\d)_(?P<person>\d{3})_(?P<view>[12])_(?P<index>\d{2})\.png$")
_CUHK01_NAME = re.compile(r"^(?P<pid>\d{4})(?P<index>\d{3})\.png$", re.IGNORECASE)
_CONFIG_KEYS = ("train_idx", "query_idx", "gallery_idx", "labels", "filelist")


# --------------------------------------------------------------------------------------------------------
# CUHK03, extracted images


def _extracted_record(fmt: DatasetFormat, path: Path, pid_offset: int) -> Record:
    match = _EXTRACTED_NAME.match(path.name)
    if match is None or int(match["index"]) > 9:
        raise name_error(fmt, path, "PPPP_NN.jpg with NN 00-09, e.g. 0000_05.jpg (00-04 camera 0, 05-09 camera 1)")
    return Record(str(path), pid_offset + int(match["pid"]), int(int(match["index"]) >= 5))


def _draw_queries(records: list[Record]) -> tuple[list[Record], list[Record]]:
    """``(query, gallery)``: one query per (identity, camera) of the identities seen by both cameras."""
    cells: dict[int, dict[int, list[Record]]] = {}
    for r in records:
        cells.setdefault(r.pid, {}).setdefault(r.camid, []).append(r)
    rng = random.Random("sisnet-cuhk03-query")
    query: list[Record] = []
    gallery: list[Record] = []
    for pid in sorted(cells):
        for camid in sorted(cells[pid]):
            images = sorted(cells[pid][camid])
            q = rng.randrange(len(images)) if len(cells[pid]) >= 2 else -1
            for i, r in enumerate(images):
                (query if i == q else gallery).append(r)
    return query, gallery


def _parse_extracted(fmt: DatasetFormat, folder: Path) -> ParsedSplits:
    train_dir, val_dir = (folder / _BOXES[fmt.name] / sub for sub in ("train", "val"))
    listing = list_images(fmt, folder, [train_dir, val_dir])
    train = [_extracted_record(fmt, train_dir / name, 0) for name in listing[train_dir]]
    val = [_extracted_record(fmt, val_dir / name, VAL_PID_OFFSET) for name in listing[val_dir]]
    query, gallery = _draw_queries(val)
    for records, where in ((train, train_dir), (query, val_dir)):
        if not records:
            raise DatasetFormatError(
                f"The {'train' if records is train else 'query'} split of {fmt.title} at {folder} is empty: {where} "
                f"has no image{'' if records is train else ' of an identity seen by both cameras'}. Fix: restore "
                f"the images of that folder (re-clone the extracted release)."
            )
    return ParsedSplits(folder, train, query, gallery, published_as=f"{fmt.name}:{CUHK03_EXTRACTED}")


# --------------------------------------------------------------------------------------------------------
# CUHK03, the official cuhk-03.mat + the new-protocol config


def _extract_images(fmt: DatasetFormat, mat_path: Path, boxes: str, images_dir: Path) -> None:
    """Write the ``boxes`` images of ``cuhk-03.mat`` to ``images_dir`` (via ``<images_dir>.partial``, renamed last)."""
    import h5py
    import numpy as np
    from PIL import Image

    partial = images_dir.with_name(images_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    try:
        mat = h5py.File(mat_path, "r")
    except OSError as exc:
        raise DatasetFormatError(f"{mat_path} is not a MATLAB v7.3 (HDF5) file ({exc}); the official cuhk-03.mat "
                                 f"is. Fix: restore it from cuhk03_release.zip.") from exc
    with mat:
        if boxes not in mat:
            raise DatasetFormatError(f"{mat_path} has no {boxes!r} cell (it has {', '.join(mat)}); the official "
                                     f"cuhk-03.mat has 'labeled' and 'detected'. Fix: restore it from "
                                     f"cuhk03_release.zip.")
        for pair, pair_ref in enumerate(np.asarray(mat[boxes][()]).reshape(-1), start=1):
            cells = np.asarray(mat[pair_ref][()]).T  # MATLAB is column-major: (persons, 10) once transposed
            for person in range(1, cells.shape[0] + 1):
                written = 0
                for index, ref in enumerate(cells[person - 1], start=1):
                    image = np.asarray(mat[ref][()]).T  # (H, W, 3); an empty cell is a 1-D [0, 0]
                    if image.size == 0 or image.ndim < 3:
                        continue
                    name = f"{pair}_{person:03d}_{1 if index <= 5 else 2}_{index:02d}.png"
                    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(partial / name)
                    written += 1
                if not written:
                    raise DatasetFormatError(f"{mat_path}: {boxes} camera pair {pair}, person {person} has no "
                                             f"image; every person has at least one. Fix: restore it from "
                                             f"cuhk03_release.zip.")
    os.replace(partial, images_dir)


def _read_config(fmt: DatasetFormat, path: Path) -> tuple[list[str], list[int], dict[str, list[int]]]:
    """``(filelist, labels, {split: 0-based indices})`` of a CUHK03 new-protocol config file."""
    import numpy as np
    from scipy.io import loadmat

    try:
        config = loadmat(path)
        missing = [key for key in _CONFIG_KEYS if key not in config]
        if missing:
            raise KeyError(", ".join(missing))
        filelist = [str(np.asarray(item).reshape(-1)[0]) for item in np.asarray(config["filelist"]).reshape(-1)]
        labels = [int(v) for v in np.asarray(config["labels"]).reshape(-1)]
        indices = {split: [int(v) - 1 for v in np.asarray(config[f"{split}_idx"]).reshape(-1)]
                   for split in ("train", "query", "gallery")}
    except (OSError, ValueError, NotImplementedError, KeyError, IndexError, TypeError) as exc:
        raise DatasetFormatError(f"{path}: cannot read the CUHK03 new-protocol split ({type(exc).__name__}: {exc}); "
                                 f"it must hold {', '.join(_CONFIG_KEYS)}. Fix: restore it (Zhong et al.'s "
                                 f"person-re-ranking repository, evaluation/data/CUHK03).") from exc
    bad = [i + 1 for idx in indices.values() for i in idx if not 0 <= i < len(filelist)]
    if len(labels) != len(filelist) or bad:
        raise DatasetFormatError(f"{path}: {len(filelist)} files, {len(labels)} labels"
                                 + (f", and indices out of 1..{len(filelist)} (e.g. {bad[0]})" if bad else "")
                                 + ". Fix: restore the original config file.")
    return filelist, labels, indices


def _parse_mat(fmt: DatasetFormat, folder: Path) -> ParsedSplits:
    boxes = _BOXES[fmt.name]
    config_path = folder / f"cuhk03_new_protocol_config_{boxes}.mat"
    if not config_path.is_file():
        raise DatasetFormatError(
            f"{config_path} is missing: the 767/700 split of CUHK03 ({boxes} boxes) is read from it (torchreid's "
            f"protocol). Fix: download cuhk03_new_protocol_config_{boxes}.mat (Zhong et al., github "
            f"zhunzhong07/person-re-ranking, evaluation/data/CUHK03) into {folder}."
        )
    filelist, labels, indices = _read_config(fmt, config_path)
    images_dir = folder / f"images_{boxes}"
    if not images_dir.is_dir():
        _extract_images(fmt, folder / CUHK03_MAT, boxes, images_dir)
    splits: dict[str, list[Record]] = {}
    missing: list[str] = []
    for split, idx in indices.items():
        splits[split] = []
        for i in idx:
            match = _MAT_NAME.match(filelist[i])
            if match is None:
                raise name_error(fmt, images_dir / filelist[i], "{pair}_{person:03d}_{view 1|2}_{image:02d}.png, "
                                 f"e.g. 1_001_1_01.png (named by {config_path.name}, entry {i + 1})")
            path = images_dir / filelist[i]
            if not path.is_file():
                missing.append(filelist[i])
            splits[split].append(Record(str(path), labels[i], int(match["view"]) - 1))
    if missing:
        raise DatasetFormatError(
            f"{config_path} names {len(missing)} image(s) that {images_dir} lacks (e.g. {', '.join(missing[:3])}). "
            f"The split file and the images do not match. Fix: delete {images_dir} to extract it again from "
            f"{CUHK03_MAT}, or use the config file of the same release."
        )
    return ParsedSplits(folder, splits["train"], splits["query"], splits["gallery"])


def _parse_cuhk03(fmt: DatasetFormat, folder: Path, layout: str, combine_val: bool, split_id: int) -> ParsedSplits:
    return _parse_extracted(fmt, folder) if layout == CUHK03_EXTRACTED else _parse_mat(fmt, folder)


# --------------------------------------------------------------------------------------------------------
# CUHK01


def _parse_cuhk01(fmt: DatasetFormat, folder: Path, layout: str, combine_val: bool, split_id: int) -> ParsedSplits:
    campus = folder / "campus"
    names = list_images(fmt, folder, [campus])[campus]
    views: dict[int, dict[int, list[Record]]] = {}
    for name in names:
        match = _CUHK01_NAME.match(name)
        if match is None or not 1 <= int(match["index"]) <= 4:
            raise name_error(fmt, campus / name, "PPPPNNN.png with NNN 001-004, e.g. 0001001.png")
        add_record(views, campus / name, int(match["pid"]), (int(match["index"]) - 1) // 2)
    require_two_views(fmt, folder, views)
    _, train_ids, test_ids = choose_train_ids(fmt, folder, views, split_id)
    train, query, gallery = two_view_split(views, train_ids, test_ids)
    return ParsedSplits(folder, train, query, gallery, whole=(len(views), len(names)))


# --------------------------------------------------------------------------------------------------------
# registry entries (registered by sisnet.data.formats)


def _cuhk03(name: str) -> DatasetFormat:
    boxes = _BOXES[name]
    return DatasetFormat(
        name=name, title=f"CUHK03 ({boxes} boxes)", num_cams=2, default_location="data/cuhk03",
        layouts={"cuhk03": (CUHK03_MAT,), CUHK03_EXTRACTED: (f"{boxes}/train", f"{boxes}/val")},
        parse=_parse_cuhk03,
        how_to_get=f"the extracted-image release ({boxes}/train, {boxes}/val; github manideep2510/CUHK03_dataset) "
                   f"or torchreid's layout ({CUHK03_MAT} + cuhk03_new_protocol_config_{boxes}.mat); place it there "
                   f"yourself",
    )


CUHK_FORMATS: tuple[DatasetFormat, ...] = (
    _cuhk03("cuhk03"),
    _cuhk03("cuhk03_detected"),
    DatasetFormat(name="cuhk01", title="CUHK01", layouts={"cuhk01": ("campus",)}, num_cams=2,
                  default_location="data/cuhk01", parse=_parse_cuhk01, num_splits=10,
                  how_to_get="the extracted CUHK01.zip (campus/); place it there yourself"),
)
