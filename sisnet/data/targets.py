"""Parsers of the domain-generalisation targets VIPeR, PRID 2011, GRID and i-LIDS, official and PETA layouts.

Each set has 10 single-shot splits (:func:`sisnet.data.load_dataset` ``split_id=0..9``), drawn with a fixed seed
per dataset and split (:mod:`sisnet.data.real`), so the official archive and the PETA copy of a set give the
same split. A DG evaluation uses each split's query / gallery and averages over the splits; the train part is
the rest. Every layout is read in its official form or as PETA ships it (``PETA dataset/<subset>/archive/``:
one flat folder of images plus ``Label.txt``, an attribute file that is tolerated and not read).

* ``viper`` (Gray et al. 2007; 632 people x 2 views): ``VIPeR/cam_a/NNN_<angle>.bmp`` and ``cam_b/``, paired by
  sorted order like torchreid (paired names must have the same ``NNN``, checked); PETA: ``NNN_<angle>_<1|2>.bmp``
  (camera 1 = cam_a). pid = ``NNN`` (000..873, with gaps). Split: 316 / 316 ids; query = cam_a of the test
  ids (camid 0), gallery = cam_b (camid 1). torchreid's 10 swapped-view splits are left out.
* ``prid`` (PRID 2011 single shot, Hirzer et al. 2011): ``prid_2011/single_shot/cam_a/person_NNNN.png`` (385)
  and ``cam_b/`` (749); persons 1-200 are in both views (checked), the other numbers are different people in
  each view. PETA: ``NNNN_a.png`` / ``NNNN_b.png``, where the camera-B-only persons 201-385 are renamed
  1201-1385 (so they do not share a number with camera A's 201-385); they are mapped back to the official
  numbers. Split (torchreid): 100 / 100 of the 200 shared ids; query = cam_a of the test ids, gallery = their
  cam_b images + all 549 camera-B-only people (649). The 185 camera-A-only people are in no split.
* ``grid`` (Loy et al. 2009; 8 cameras): ``underground_reid/probe/PPPP_C_<frame>_....jpeg`` (250),
  ``gallery/`` (1,025: the 250 matches + 775 distractors with PPPP = 0000), camera ``C`` 1-8 (camid C-1).
  PETA: one folder of 1,275 images where the 250 paired ids 0001-0250 have 2 images and the distractors are
  renamed 0251-1025 (1 image each; in the official sorted order); here every id with one image is a distractor
  and gets pid 0, as in the official archive. Of a PETA pair the probe is the EARLIER frame: a path listed from
  torchreid's official download (``underground_reid/probe/0005_2_25100_...``) has the earlier of the two
  frames of person 5 but the higher camera, so "lower camera = probe" (the rule TFusion's re-split GRID lists
  follow) does not reproduce the official folders; the frame rule is inferred from that one file and may
  differ from the official folders for other people -- check with the official archive where it matters.
  Pairs never share a camera and never a frame number. Split: the official ``features_and_partitions.mat``
  (``trainIdxAll``, 10 entries; torchreid reads the third field of each entry's struct: the 125 training
  ids) when it is in the dataset folder (PETA: put it in ``archive/``); else 125 / 125 with the fixed seed.
  query = the test ids' probes (125), gallery = their gallery images + the 775 distractors (900).
* ``ilids`` (QMUL i-LIDS / MCTS, Zheng et al. 2009; 119 people, 476 images): ``i-LIDS_Pedestrian/Persons/
  PPPPNNN.jpg``; PETA ``PPPP_NNN.jpg`` (its copy has 120 ids / 477 images: id 0120 with one image; loaded with
  the published-size warning). Split: ``len // 2`` training ids (59, torchreid's ``int(0.5 * 119)``) drawn from
  the ids with at least 2 images; every test id (60) gives one query and one other gallery image, drawn with
  the split's RNG. i-LIDS has no camera labels: query camid 0, gallery camid 1, training images camid 0
  (torchreid uses the image index as the camid). An id with a single image is in every split's train part.

Published sizes: :data:`sisnet.data.formats.PUBLISHED_COUNTS` (torchreid's numbers; ``all`` = the whole set).
"""
from __future__ import annotations

import re
from pathlib import Path

from sisnet.data.formats import DatasetFormat, DatasetFormatError, ParsedSplits, Record
from sisnet.data.real import (
    PETA_LABELS,
    PETA_LAYOUT,
    add_record,
    choose_train_ids,
    list_images,
    name_error,
    require_two_views,
    two_view_split,
)

__all__ = ["TARGET_FORMATS", "GRID_PARTITIONS", "PRID_SHARED_IDS", "PRID_PETA_B_OFFSET"]

_VIPER = re.compile(r"^(?P<pid>\d{3})_(?P<angle>\d+)\.bmp$", re.IGNORECASE)
_VIPER_PETA = re.compile(r"^(?P<pid>\d{3})_(?P<angle>\d+)_(?P<cam>[12])\.bmp$", re.IGNORECASE)
_PRID = re.compile(r"^person_(?P<pid>\d{4})\.png$", re.IGNORECASE)
_PRID_PETA = re.compile(r"^(?P<pid>\d{4})_(?P<cam>[ab])\.png$", re.IGNORECASE)
_GRID = re.compile(r"^(?P<pid>\d{4})_(?P<cam>\d)_(?P<frame>\d+)(?:_\d+)*\.jpe?g$", re.IGNORECASE)
_ILIDS = re.compile(r"^(?P<pid>\d{4})(?P<index>\d{3})\.jpg$", re.IGNORECASE)
_ILIDS_PETA = re.compile(r"^(?P<pid>\d{4})_(?P<index>\d{3})\.jpg$", re.IGNORECASE)
_PETA_NAMES = {"viper": _VIPER_PETA, "prid": _PRID_PETA, "grid": _GRID, "ilids": _ILIDS_PETA}
#: GRID's official split file (``trainIdxAll``), in ``underground_reid/`` (or PETA's ``archive/``).
GRID_PARTITIONS = "features_and_partitions.mat"
#: PRID 2011: persons 1..200 appear in both views.
PRID_SHARED_IDS = 200
#: PETA's PRID renames the camera-B-only persons 201-385 to 1201-1385.
PRID_PETA_B_OFFSET = 1000


def _match(fmt: DatasetFormat, path: Path, regex: re.Pattern, expected: str) -> re.Match:
    match = regex.match(path.name)
    if match is None:
        others = [n for n, rx in _PETA_NAMES.items() if n != fmt.name and rx.match(path.name)]
        hint = f" The name looks like the PETA {others[0]} naming; load it with {others[0]!r}." if others else ""
        raise name_error(fmt, path, expected, hint)
    return match


def _peta_names(fmt: DatasetFormat, folder: Path, extra: tuple[str, ...] = ()) -> list[str]:
    return list_images(fmt, folder, [folder], tolerated=(PETA_LABELS, *extra))[folder]


# --------------------------------------------------------------------------------------------------------
# VIPeR


def _parse_viper(fmt: DatasetFormat, folder: Path, layout: str, combine_val: bool, split_id: int) -> ParsedSplits:
    views: dict[int, dict[int, list[Record]]] = {}
    if layout == PETA_LAYOUT:
        for name in _peta_names(fmt, folder):
            match = _match(fmt, folder / name, _VIPER_PETA, "NNN_<angle>_<camera 1|2>.bmp, e.g. 000_45_1.bmp")
            add_record(views, folder / name, int(match["pid"]), int(match["cam"]) - 1)
    else:
        cam_a, cam_b = folder / "cam_a", folder / "cam_b"
        listing = list_images(fmt, folder, [cam_a, cam_b])
        if len(listing[cam_a]) != len(listing[cam_b]):
            raise DatasetFormatError(
                f"{fmt.title} at {folder}: cam_a has {len(listing[cam_a])} images and cam_b {len(listing[cam_b])}; "
                f"the views are paired by sorted order, one image of each person per view. Fix: restore the "
                f"missing images (re-extract VIPeR.v1.0.zip)."
            )
        for name_a, name_b in zip(listing[cam_a], listing[cam_b]):
            match_a = _match(fmt, cam_a / name_a, _VIPER, "NNN_<angle>.bmp, e.g. 000_45.bmp")
            match_b = _match(fmt, cam_b / name_b, _VIPER, "NNN_<angle>.bmp, e.g. 000_90.bmp")
            if match_a["pid"] != match_b["pid"]:
                raise DatasetFormatError(
                    f"{fmt.title} at {folder}: paired by sorted order, cam_a/{name_a} meets cam_b/{name_b}, whose "
                    f"person numbers differ: a file is missing or renamed in one view. Fix: re-extract the archive."
                )
            add_record(views, cam_a / name_a, int(match_a["pid"]), 0)
            add_record(views, cam_b / name_b, int(match_b["pid"]), 1)
    require_two_views(fmt, folder, views, per_view=1)
    _, train_ids, test_ids = choose_train_ids(fmt, folder, views, split_id)
    train, query, gallery = two_view_split(views, train_ids, test_ids)
    return ParsedSplits(folder, train, query, gallery, whole=(len(views), 2 * len(views)))


# --------------------------------------------------------------------------------------------------------
# PRID 2011


def _prid_views(fmt: DatasetFormat, folder: Path, layout: str) -> tuple[dict[int, Path], dict[int, Path]]:
    """``({pid: camera-A image}, {pid: camera-B image})`` with the official numbers."""
    cams: tuple[dict[int, Path], dict[int, Path]] = ({}, {})
    if layout == PETA_LAYOUT:
        for name in _peta_names(fmt, folder):
            match = _match(fmt, folder / name, _PRID_PETA, "NNNN_<a|b>.png, e.g. 0001_a.png")
            cams["ab".index(match["cam"].lower())][int(match["pid"])] = folder / name
        shared = cams[0].keys() & cams[1].keys()
        renamed = {pid: path for pid, path in cams[1].items() if pid not in shared and pid > PRID_PETA_B_OFFSET}
        for pid, path in renamed.items():
            official = pid - PRID_PETA_B_OFFSET
            if official in cams[1]:
                raise DatasetFormatError(
                    f"{fmt.title} at {folder}: {path.name} and {cams[1][official].name} are both camera-B person "
                    f"{official} (PETA renames camera-B-only persons 201-385 to 1201-1385). Fix: remove the copy."
                )
            cams[1][official] = cams[1].pop(pid)
    else:
        dirs = (folder / "single_shot" / "cam_a", folder / "single_shot" / "cam_b")
        listing = list_images(fmt, folder, dirs)
        for camid, cam_dir in enumerate(dirs):
            for name in listing[cam_dir]:
                match = _match(fmt, cam_dir / name, _PRID, "person_NNNN.png, e.g. person_0001.png")
                cams[camid][int(match["pid"])] = cam_dir / name
    return cams


def _parse_prid(fmt: DatasetFormat, folder: Path, layout: str, combine_val: bool, split_id: int) -> ParsedSplits:
    cam_a, cam_b = _prid_views(fmt, folder, layout)
    low_a = {pid for pid in cam_a if pid <= PRID_SHARED_IDS}
    low_b = {pid for pid in cam_b if pid <= PRID_SHARED_IDS}
    if low_a != low_b:
        pid = min(low_a ^ low_b)
        have, lack = ("A", "B") if pid in low_a else ("B", "A")
        raise DatasetFormatError(
            f"{fmt.title} at {folder}: person {pid} has a camera-{have} image "
            f"({(cam_a if pid in low_a else cam_b)[pid].name}) but none in camera {lack}; persons 1-"
            f"{PRID_SHARED_IDS} appear in both views. Fix: restore the missing image (re-extract the archive)."
        )
    views: dict[int, dict[int, list[Record]]] = {}
    for pid in sorted(low_a):
        add_record(views, cam_a[pid], pid, 0)
        add_record(views, cam_b[pid], pid, 1)
    _, train_ids, test_ids = choose_train_ids(fmt, folder, views, split_id)
    train, query, gallery = two_view_split(views, train_ids, test_ids)
    b_only = sorted(pid for pid in cam_b if pid > PRID_SHARED_IDS)
    gallery += [Record(str(cam_b[pid]), pid, 1) for pid in b_only]
    a_only = len(cam_a) - len(low_a)
    return ParsedSplits(folder, train, query, gallery,
                        whole=(len(low_a) + a_only + len(b_only), len(cam_a) + len(cam_b)))


# --------------------------------------------------------------------------------------------------------
# GRID


def _grid_record(fmt: DatasetFormat, path: Path) -> tuple[Record, int]:
    """``(record, frame)`` of a GRID image."""
    match = _match(fmt, path, _GRID, "PPPP_<camera 1-8>_<frame>_<x>_<y>_<w>_<h>.jpeg, e.g. "
                                     "0001_1_25004_107_32_106_221.jpeg")
    cam = int(match["cam"])
    if not 1 <= cam <= 8:
        raise DatasetFormatError(f"{path}: camera {cam} is out of range for {fmt.title} (cameras 1..8). This file "
                                 f"is not from {fmt.title}; remove it or load the data with the right dataset name.")
    return Record(str(path), int(match["pid"]), cam - 1), int(match["frame"])


def _grid_images(fmt: DatasetFormat, folder: Path,
                 layout: str) -> tuple[dict[int, Record], dict[int, Record], list[Record]]:
    """``({pid: probe}, {pid: gallery match}, distractors with pid 0)``."""
    probe: dict[int, Record] = {}
    match: dict[int, Record] = {}
    if layout == PETA_LAYOUT:
        by_pid: dict[int, list[tuple[int, int, Record]]] = {}
        for name in _peta_names(fmt, folder, extra=(GRID_PARTITIONS,)):
            record, frame = _grid_record(fmt, folder / name)
            by_pid.setdefault(record.pid, []).append((frame, record.camid, record))
        distractors = []
        for pid, images in sorted(by_pid.items()):
            if len(images) > 2:
                names = ", ".join(Path(r.path).name for _, _, r in images)
                raise DatasetFormatError(f"{fmt.title} at {folder}: id {pid} has {len(images)} images ({names}); "
                                         f"a GRID person has a probe and a gallery image (2), a distractor 1. Fix: "
                                         f"remove the extra files.")
            if len(images) == 1:
                distractors.append(Record(images[0][2].path, 0, images[0][2].camid))
            else:
                (_, _, first), (_, _, second) = sorted(images, key=lambda image: image[:2])  # earlier frame = probe
                probe[pid], match[pid] = first, second
        return probe, match, distractors
    dirs = (folder / "probe", folder / "gallery")
    listing = list_images(fmt, folder, dirs)
    distractors = []
    for side, cam_dir in zip((probe, match), dirs):
        for name in listing[cam_dir]:
            record, _ = _grid_record(fmt, cam_dir / name)
            if record.pid == 0 and side is match:
                distractors.append(record)
            elif record.pid == 0 or record.pid in side:
                what = f"a second image of person {record.pid}" if record.pid else "a distractor (0000)"
                raise DatasetFormatError(f"{cam_dir / name}: {what} in {cam_dir.name}/; the probe folder holds one "
                                         f"image of each person, the gallery one match each plus the 0000 "
                                         f"distractors. Fix: remove the file.")
            else:
                side[record.pid] = record
    unmatched = sorted(probe.keys() ^ match.keys())
    if unmatched:
        raise DatasetFormatError(f"{fmt.title} at {folder}: person {unmatched[0]} is only in "
                                 f"{'probe' if unmatched[0] in probe else 'gallery'}/ ({len(unmatched)} such); each "
                                 f"person has one probe and one gallery image. Fix: re-extract underground_reid.zip.")
    return probe, match, distractors


def _grid_partition(fmt: DatasetFormat, path: Path, split_id: int, paired: set[int]) -> set[int]:
    """The training ids of split ``split_id`` in GRID's ``features_and_partitions.mat`` (torchreid's reading)."""
    import numpy as np
    from scipy.io import loadmat

    try:
        entries = np.asarray(loadmat(path)["trainIdxAll"]).reshape(-1)
    except (OSError, ValueError, NotImplementedError, KeyError) as exc:
        raise DatasetFormatError(f"{path}: cannot read trainIdxAll ({type(exc).__name__}: {exc}); it must be GRID's "
                                 f"official partition file. Fix: restore it from underground_reid.zip, or delete it "
                                 f"to use the seeded random splits.") from exc
    if len(entries) != fmt.num_splits:
        raise DatasetFormatError(f"{path}: trainIdxAll has {len(entries)} entries; the GRID protocol has "
                                 f"{fmt.num_splits}. Fix: restore the official file, or delete it to use the seeded "
                                 f"splits.")
    try:
        record = np.asarray(entries[split_id]).reshape(-1)[0]
        ids = [int(v) for v in np.asarray(record[2]).reshape(-1)]  # third field of the struct: training ids
    except (IndexError, KeyError, TypeError, ValueError) as exc:
        raise DatasetFormatError(f"{path}: entry {split_id} of trainIdxAll is not a struct whose third field holds "
                                 f"the training ids ({type(exc).__name__}: {exc}). Fix: restore the official file."
                                 ) from exc
    missing = sorted(set(ids) - paired)
    if missing or len(set(ids)) != len(ids) or len(ids) >= len(paired):
        raise DatasetFormatError(
            f"{path}: split {split_id} names {len(ids)} training ids"
            + (f", of which {len(missing)} have no probe/gallery images here (e.g. {missing[:5]})" if missing else
               " (repeated, or leaving no test id)")
            + f". The partitions and the images ({len(paired)} paired people) do not belong together. Fix: restore "
            f"the missing images, or delete {path.name} to use the seeded random splits.")
    return set(ids)


def _parse_grid(fmt: DatasetFormat, folder: Path, layout: str, combine_val: bool, split_id: int) -> ParsedSplits:
    probe, match, distractors = _grid_images(fmt, folder, layout)
    if (folder / GRID_PARTITIONS).is_file():
        train_ids = _grid_partition(fmt, folder / GRID_PARTITIONS, split_id, set(probe))
        test_ids = [pid for pid in sorted(probe) if pid not in train_ids]
    else:
        _, train_ids, test_ids = choose_train_ids(fmt, folder, probe, split_id)
    train = [r for pid in sorted(train_ids) for r in (probe[pid], match[pid])]
    query = [probe[pid] for pid in test_ids]
    gallery = [match[pid] for pid in test_ids] + distractors
    return ParsedSplits(folder, train, query, gallery, whole=(len(probe), 2 * len(probe) + len(distractors)))


# --------------------------------------------------------------------------------------------------------
# i-LIDS


def _parse_ilids(fmt: DatasetFormat, folder: Path, layout: str, combine_val: bool, split_id: int) -> ParsedSplits:
    peta = layout == PETA_LAYOUT
    image_dir = folder if peta else folder / "Persons"
    names = _peta_names(fmt, folder) if peta else list_images(fmt, folder, [image_dir])[image_dir]
    by_pid: dict[int, list[tuple[int, Path]]] = {}
    for name in names:
        expected = "PPPP_NNN.jpg, e.g. 0001_001.jpg" if peta else "PPPPNNN.jpg, e.g. 0001001.jpg"
        match = _match(fmt, image_dir / name, _ILIDS_PETA if peta else _ILIDS, expected)
        by_pid.setdefault(int(match["pid"]), []).append((int(match["index"]), image_dir / name))
    eligible = [pid for pid, images in by_pid.items() if len(images) >= 2]
    rng, train_ids, test_ids = choose_train_ids(fmt, folder, eligible, split_id)
    train = [Record(str(path), pid, 0) for pid in sorted(by_pid) if pid in train_ids or len(by_pid[pid]) < 2
             for _, path in sorted(by_pid[pid])]
    query: list[Record] = []
    gallery: list[Record] = []
    for pid in test_ids:
        (_, query_path), (_, gallery_path) = rng.sample(sorted(by_pid[pid]), 2)
        query.append(Record(str(query_path), pid, 0))
        gallery.append(Record(str(gallery_path), pid, 1))
    return ParsedSplits(folder, train, query, gallery, whole=(len(by_pid), len(names)))


# --------------------------------------------------------------------------------------------------------
# registry entries (registered by sisnet.data.formats)

_PETA = {PETA_LAYOUT: (PETA_LABELS,)}
_PETA_HOW = "or the PETA copy (github snake719/ML_data, 'PETA dataset/{}/archive'); place it there yourself"

TARGET_FORMATS: tuple[DatasetFormat, ...] = (
    DatasetFormat(name="viper", title="VIPeR", layouts={"VIPeR": ("cam_a", "cam_b"), **_PETA}, num_cams=2,
                  default_location="data/viper/VIPeR", parse=_parse_viper, num_splits=10,
                  how_to_get="the extracted VIPeR.v1.0.zip " + _PETA_HOW.format("VIPeR")),
    DatasetFormat(name="prid", title="PRID 2011", layouts={"prid_2011": ("single_shot/cam_a", "single_shot/cam_b"),
                  **_PETA}, num_cams=2, default_location="data/prid/prid_2011", parse=_parse_prid, num_splits=10,
                  how_to_get="prid_2011/ with single_shot/cam_a, cam_b " + _PETA_HOW.format("PRID")),
    DatasetFormat(name="grid", title="GRID", layouts={"underground_reid": ("probe", "gallery"), **_PETA}, num_cams=8,
                  default_location="data/grid/underground_reid", parse=_parse_grid, num_splits=10,
                  how_to_get="the extracted underground_reid.zip " + _PETA_HOW.format("GRID")),
    DatasetFormat(name="ilids", title="QMUL i-LIDS", layouts={"i-LIDS_Pedestrian": ("Persons",), **_PETA},
                  num_cams=None, default_location="data/ilids/i-LIDS_Pedestrian", parse=_parse_ilids, num_splits=10,
                  how_to_get="the extracted i-LIDS_Pedestrian.tgz " + _PETA_HOW.format("i-LID")),
)
