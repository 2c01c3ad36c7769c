"""Parsers for the on-disk ReID dataset formats: Market-1501, DukeMTMC-reID, MSMT17 and the synthetic set.

Each format is one :class:`DatasetFormat` entry in :data:`FORMATS` (a registry, not an if-chain). A parser
returns the three splits as lists of :class:`Record` with *original* pids; relabelling of the training pids
and the :class:`~sisnet.data.ReIDDataset` wrapper live in :mod:`sisnet.data`.

Protocol (the one torchreid / fast-reid use):

* ``market1501`` / ``dukemtmcreid`` / ``synthetic``: folders ``bounding_box_train/``, ``query/``,
  ``bounding_box_test/``. Names ``0002_c1s1_000451_03.jpg`` (Market, synthetic) or ``0001_c2_f0046182.jpg``
  (Duke); the leading number is the pid, ``cN`` the 1-based camera.
  Junk rules, the only images ever dropped: pid ``-1`` (junk) is dropped from every split; pid ``0``
  (distractors) is kept in the gallery and dropped from train and query.
* ``msmt17``: ``MSMT17_V1/{train,test}`` or ``MSMT17_V2/{mask_train_v2,mask_test_v2}`` plus
  ``list_train.txt``, ``list_val.txt``, ``list_query.txt``, ``list_gallery.txt`` whose lines are
  ``relative/path.jpg pid``. The pid comes from the list (pid 0 is a real identity here, nothing is dropped);
  the camera is the third ``_`` field of the file name (``0000_000_01_0303morning_0015_0.jpg`` -> camera 1,
  camid 0). Train = list_train (+ list_val when ``combine_val=True``).

Image folders hold images (:data:`IMAGE_EXTENSIONS`, any case) and nothing else. OS metadata that file
browsers and archivers leave behind (:func:`is_os_metadata`: ``Thumbs.db``, ``desktop.ini``, ``.DS_Store``,
AppleDouble ``._*`` files, ``__MACOSX/``, ...) is skipped, with ONE warning per load that names it --
redistributed copies of Market-1501 and DukeMTMC-reID often carry it. Any other entry (a ``.txt`` note, a
sub-folder, an unknown hidden file) raises :class:`DatasetFormatError` naming every such entry: the official
archives hold none, so it means the folder was changed by hand, and nothing is skipped silently. For MSMT17 the
lists are the protocol: only the listed files are read (each must exist), and the image folders are not scanned.

Published sizes: when a dataset looks like the full set -- some split holds at least
:data:`FULL_SET_FRACTION` (half) of its published images -- the images and identities of every split are
compared with :data:`PUBLISHED_COUNTS` (the numbers torchreid prints), and each difference is reported in ONE
warning with both numbers and the likely cause (``bounding_box_test has 15,000 images, the official set 15,913:
an incomplete extraction?``). The data still loads. Smaller trees (test fixtures, samples, a subset made on
purpose) are not compared. ``synthetic`` (and any custom Market-layout set) has no published size.

Camera ids are validated: 6 cameras for Market-1501, 8 for DukeMTMC-reID, 15 for MSMT17, any count for
``synthetic``. All stored paths are absolute.

The registry also holds the real-pedestrian sets whose splits come from a protocol rather than from folders:
``cuhk03`` / ``cuhk03_detected`` and ``cuhk01`` (:mod:`sisnet.data.cuhk`), ``viper``, ``prid``, ``grid`` and
``ilids`` (:mod:`sisnet.data.targets`, the usual domain-generalisation targets, 10 splits each; rules shared by
both in :mod:`sisnet.data.real`). Their parsers take the split index (``num_splits`` of the format). Those
modules build on this one, so :mod:`sisnet.data` adds their entries to :data:`FORMATS` (no import cycle).
"""
from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple

__all__ = [
    "Record",
    "DatasetFormat",
    "ParsedSplits",
    "DatasetFormatError",
    "FORMATS",
    "IMAGE_EXTENSIONS",
    "MARKET_SPLIT_DIRS",
    "PUBLISHED_COUNTS",
    "FULL_SET_FRACTION",
    "check_published_counts",
    "is_os_metadata",
    "get_format",
    "resolve_root",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
# Market-layout folder of each split; also the `split` values used in the scales.csv sidecar.
MARKET_SPLIT_DIRS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
_MSMT_LISTS = ("list_train.txt", "list_val.txt", "list_query.txt", "list_gallery.txt")
# File-browser and archiver metadata, lower-case names (Windows Explorer, macOS Finder/Spotlight/archiver, KDE
# Dolphin); AppleDouble resource forks ``._<name>`` are matched by their prefix.
_OS_METADATA = frozenset({
    "thumbs.db", "ehthumbs.db", "ehthumbs_vista.db", "desktop.ini", "icon\r", ".ds_store", ".localized",
    "__macosx", ".spotlight-v100", ".trashes", ".fseventsd", ".temporaryitems", ".apdisk", ".directory",
})
_APPLEDOUBLE_PREFIX = "._"
#: A dataset is compared with :data:`PUBLISHED_COUNTS` when one of its splits holds at least this fraction of
#: that split's published images (it then looks like the full set, not a sample or a test fixture).
FULL_SET_FRACTION = 0.5

#: Published split sizes ``{dataset: {split: (identities, images)}}`` after the junk rules above: the numbers
#: torchreid prints for these datasets (Market-1501: Zheng et al. 2015, the gallery's 751 ids include the
#: distractor id 0 and its 15,913 images exclude the 3,819 junk images; DukeMTMC-reID: Zheng et al. 2017, the
#: gallery's 1,110 ids include 408 distractor ids; MSMT17: Wei et al. 2018, V1 and V2 have the same lists).
#: ``train+val`` is MSMT17's training split with ``combine_val=True`` (list_train + list_val).
#: The protocol sets (:mod:`sisnet.data.cuhk`, :mod:`sisnet.data.targets`) give the sizes of every one of their
#: splits (the same for each split index) and ``all``: the whole set on disk, for the sets whose splits leave
#: images out or vary in size (a PRID split leaves the 185 camera-A-only people out; an i-LIDS training split's
#: image count depends on its identities, so i-LIDS has no ``train`` entry). CUHK03: torchreid's 767/700 split
#: (Zhong et al. 2017); ``cuhk03:CUHK03_dataset`` is the extracted-image release's own split (743 training ids,
#: the 100 ``val`` ids as query / gallery), counted on that release. GRID's gallery ids include the distractor
#: id 0; ``all`` counts its 250 paired people only. i-LIDS: 59 training / 60 test ids (torchreid's half).
PUBLISHED_COUNTS: dict[str, dict[str, tuple[int, int]]] = {
    "market1501": {"train": (751, 12_936), "query": (750, 3_368), "gallery": (751, 15_913)},
    "dukemtmcreid": {"train": (702, 16_522), "query": (702, 2_228), "gallery": (1_110, 17_661)},
    "msmt17": {"train": (1_041, 30_248), "train+val": (1_041, 32_621), "query": (3_060, 11_659),
               "gallery": (3_060, 82_161)},
    "cuhk03": {"train": (767, 7_368), "query": (700, 1_400), "gallery": (700, 5_328)},
    "cuhk03_detected": {"train": (767, 7_365), "query": (700, 1_400), "gallery": (700, 5_332)},
    "cuhk03:CUHK03_dataset": {"train": (743, 7_239), "query": (100, 200), "gallery": (100, 738)},
    "cuhk03_detected:CUHK03_dataset": {"train": (743, 7_239), "query": (100, 200), "gallery": (100, 738)},
    "cuhk01": {"train": (485, 1_940), "query": (486, 972), "gallery": (486, 972), "all": (971, 3_884)},
    "viper": {"train": (316, 632), "query": (316, 316), "gallery": (316, 316), "all": (632, 1_264)},
    "prid": {"train": (100, 200), "query": (100, 100), "gallery": (649, 649), "all": (934, 1_134)},
    "grid": {"train": (125, 250), "query": (125, 125), "gallery": (126, 900), "all": (250, 1_275)},
    "ilids": {"query": (60, 60), "gallery": (60, 60), "all": (119, 476)},
}


class Record(NamedTuple):
    """One image of a ReID split: absolute ``path``, person id ``pid``, 0-based camera id ``camid``."""

    path: str
    pid: int
    camid: int


class ParsedSplits(NamedTuple):
    """What a parser returns: the resolved dataset folder and the three splits with original pids.

    ``published_as``: the :data:`PUBLISHED_COUNTS` key to compare with ("" = the format's name); ``whole``:
    ``(identities, images)`` of the whole set on disk, compared with the ``all`` entry (None: not compared).
    """

    root: Path
    train: list[Record]
    query: list[Record]
    gallery: list[Record]
    published_as: str = ""
    whole: tuple[int, int] | None = None


class DatasetFormatError(ValueError):
    """The data on disk does not follow the named dataset's format (the message says how to fix it)."""


@dataclass(frozen=True)
class DatasetFormat:
    """One supported dataset format (an entry of :data:`FORMATS`).

    ``layouts`` maps a conventional folder name (the one the archive extracts to) to the entries that folder
    must contain; the user's root may be that folder itself or its parent. ``num_cams`` is the camera count
    used to validate camids (``None``: any count). ``parse(fmt, folder, layout_name, combine_val, split_id)``
    reads the splits; ``num_splits`` is the number of splits of its protocol (``split_id`` in 0..num_splits-1).
    """

    name: str
    title: str
    layouts: dict[str, tuple[str, ...]]
    num_cams: int | None
    default_location: str
    parse: Callable[["DatasetFormat", Path, str, bool, int], ParsedSplits]
    supports_combine_val: bool = False
    how_to_get: str = "place it there yourself; it cannot be downloaded by this project"
    num_splits: int = 1


# --------------------------------------------------------------------------------------------------------
# root resolution


def _describe_entries(folder: Path, limit: int = 12) -> str:
    try:
        names = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir())
    except OSError as exc:  # pragma: no cover - permission problems
        return f"<unreadable: {exc}>"
    if not names:
        return "nothing (the folder is empty)"
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _matches(folder: Path, required: tuple[str, ...]) -> bool:
    return folder.is_dir() and all((folder / entry).exists() for entry in required)


def _format_hint(folder: Path, exclude: str) -> str:
    """Name the other dataset formats whose layout ``folder`` (or a child of it) has, if any."""
    hits = []
    for fmt in FORMATS.values():
        if fmt.name == exclude:
            continue
        for layout, required in fmt.layouts.items():
            if _matches(folder, required) or _matches(folder / layout, required):
                hits.append(fmt.name)
                break
    if not hits:
        return ""
    return f" It does look like the layout of: {', '.join(hits)}; pass that name to load_dataset instead."


def resolve_root(fmt: DatasetFormat, root: str | os.PathLike) -> tuple[Path, str]:
    """Find the dataset folder: ``root`` itself or its child named like the archive (e.g. Market-1501-v15.09.15).

    Returns ``(absolute dataset folder, layout name)``. Raises ``FileNotFoundError`` for a missing root and
    :class:`DatasetFormatError` when the folder does not have the format's layout (listing expected vs found).
    """
    given = Path(root).expanduser()
    path = given.absolute()
    if not path.exists():
        raise FileNotFoundError(
            f"{fmt.title} root {str(given)!r} does not exist. Put the data at {fmt.default_location} "
            f"({fmt.how_to_get}) and pass that folder or its parent as root, "
            f"e.g. load_dataset({fmt.name!r}, {str(Path(fmt.default_location).parent)!r})."
        )
    if not path.is_dir():
        raise NotADirectoryError(
            f"{fmt.title} root {str(given)!r} is a file, not a folder. Pass the dataset folder "
            f"(e.g. {fmt.default_location}) or its parent."
        )
    path = path.resolve()
    for layout, required in fmt.layouts.items():
        if _matches(path, required):
            return path, layout
    found = [(layout, path / layout) for layout, req in fmt.layouts.items() if _matches(path / layout, req)]
    if len(found) > 1:
        names = " and ".join(f"{layout}/" for layout, _ in found)
        raise DatasetFormatError(
            f"{str(path)!r} holds several {fmt.title} versions ({names}); pass the one you want as root, "
            f"e.g. {str(found[0][1])!r}."
        )
    if found:
        return found[0][1], found[0][0]
    expected = "; or ".join(
        f"{layout}/ containing {', '.join(req)}" for layout, req in fmt.layouts.items()
    )
    details = [f"{str(path)!r} contains {_describe_entries(path)}"]
    for layout, required in fmt.layouts.items():
        child = path / layout
        if child.is_dir():
            missing = [entry for entry in required if not (child / entry).exists()]
            details.append(f"{layout}/ is missing {', '.join(missing)}")
    raise DatasetFormatError(
        f"{str(given)!r} is not {'an' if fmt.title[0] in 'AEIMNO' else 'a'} {fmt.title} folder. Expected either the folder itself or its child "
        f"{expected}. Found: {'; '.join(details)}.{_format_hint(path, fmt.name)} "
        f"Fix: point root at the extracted {fmt.title} folder (e.g. {fmt.default_location}) or its parent."
    )


# --------------------------------------------------------------------------------------------------------
# Market-layout formats (market1501, dukemtmcreid, synthetic)

# Named groups: pid (may be -1 for junk) and cam (1-based). Lenient in digit counts on purpose so that
# generated data with more cameras/frames still parses; strict in structure so Duke names fail on Market.
_MARKET_RE = re.compile(r"^(?P<pid>-1|\d+)_c(?P<cam>\d+)s\d+_\d+_\d+\.(?:jpg|jpeg|png)$", re.IGNORECASE)
_DUKE_RE = re.compile(r"^(?P<pid>-1|\d+)_c(?P<cam>\d+)_f\d+\.(?:jpg|jpeg|png)$", re.IGNORECASE)
_MSMT_RE = re.compile(r"^(?P<pid>\d+)_\d+_(?P<cam>\d+)_\w+\.(?:jpg|jpeg|png)$", re.IGNORECASE)
_NAME_PATTERNS = {
    "market1501": (_MARKET_RE, "<pid>_c<cam>s<seq>_<frame>_<box>.jpg, e.g. 0002_c1s1_000451_03.jpg"),
    "synthetic": (_MARKET_RE, "<pid>_c<cam>s<seq>_<frame>_<box>.jpg, e.g. 0002_c1s1_000451_03.jpg"),
    "dukemtmcreid": (_DUKE_RE, "<pid>_c<cam>_f<frame>.jpg, e.g. 0001_c2_f0046182.jpg"),
    "msmt17": (_MSMT_RE, "<pid>_<index>_<cam>_<date><time>_<frame>_<k>.jpg, e.g. 0000_000_01_0303morning_0015_0.jpg"),
}


def _name_error(fmt: DatasetFormat, file_path: Path, where: str = "") -> DatasetFormatError:
    pattern = _NAME_PATTERNS[fmt.name][1]
    others = sorted(
        {n for n, (rx, _) in _NAME_PATTERNS.items() if n not in (fmt.name, "synthetic") and rx.match(file_path.name)}
    )
    hint = f" The name looks like {', '.join(others)} naming; load it with that name." if others else ""
    return DatasetFormatError(
        f"Cannot parse {fmt.title} image name {file_path.name!r} ({where or str(file_path)}). Expected "
        f"{pattern}.{hint} Fix: rename or remove the file, or load the folder with the matching dataset name."
    )


def _camid(fmt: DatasetFormat, cam_1based: int, file_path: Path) -> int:
    """Validate a 1-based camera number from a file name and return the 0-based camid."""
    if cam_1based < 1 or (fmt.num_cams is not None and cam_1based > fmt.num_cams):
        valid = f"1..{fmt.num_cams}" if fmt.num_cams is not None else ">= 1"
        raise DatasetFormatError(
            f"{file_path}: camera {cam_1based} is out of range for {fmt.title} (cameras are numbered "
            f"{valid}). This file is not from {fmt.title}; remove it or load the data with the right "
            f"dataset name."
        )
    return cam_1based - 1


def is_os_metadata(name: str) -> bool:
    """Whether a file or folder name is OS / archiver metadata (``Thumbs.db``, ``desktop.ini``, ``.DS_Store``,
    AppleDouble ``._*``, ``__MACOSX``, ...), never an image of a dataset."""
    return name.startswith(_APPLEDOUBLE_PREFIX) or name.lower() in _OS_METADATA


def _list_image_folder(folder: Path) -> tuple[list[str], list[str], list[str]]:
    """``(sorted image file names, OS metadata names, other entries)`` of ``folder``; folders end in ``/``."""
    names, metadata, other = [], [], []
    with os.scandir(folder) as it:
        for entry in it:
            shown = entry.name + ("/" if entry.is_dir() else "")
            if is_os_metadata(entry.name):
                metadata.append(shown)
            elif entry.is_file() and os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS:
                names.append(entry.name)
            else:
                other.append(shown)
    names.sort()
    return names, metadata, other


def _shown(items: list[str], limit: int) -> str:
    return ", ".join(items[:limit]) + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


def _warn_metadata(fmt: DatasetFormat, folder: Path, metadata: list[str]) -> None:
    """ONE warning for all OS metadata files of a dataset's image folders, naming them (by kind, with counts)."""
    if not metadata:
        return
    kinds: dict[str, int] = {}
    for path in metadata:
        name = path.rsplit("/", 2)[-2] + "/" if path.endswith("/") else path.rsplit("/", 1)[-1]
        kind = "._* (AppleDouble)" if name.startswith(_APPLEDOUBLE_PREFIX) else name
        kinds[kind] = kinds.get(kind, 0) + 1
    where = sorted({path.split("/", 1)[0] + "/" for path in metadata})
    named = ", ".join(f"{n} x {kind}" if n > 1 else kind for kind, n in sorted(kinds.items()))
    warnings.warn(
        f"{fmt.title} at {folder}: skipped {len(metadata)} OS metadata file{'s' if len(metadata) != 1 else ''} in "
        f"{', '.join(where)} (not images): {named}.",
        UserWarning,
        stacklevel=4,
    )


def _refuse_other_entries(fmt: DatasetFormat, folder: Path, other: list[str]) -> None:
    """Raise naming every entry of the image folders that is neither an image nor OS metadata."""
    if not other:
        return
    other = sorted(other)
    raise DatasetFormatError(
        f"{fmt.title} at {folder}: the image folders hold {len(other)} entr{'y that is' if len(other) == 1 else 'ies that are'} "
        f"not images ({'/'.join(IMAGE_EXTENSIONS)}) nor OS metadata: {_shown(other, 10)}. The official archives hold "
        f"only images there, so nothing else is skipped silently. Fix: move {'it' if len(other) == 1 else 'them'} out "
        f"of the image folders (or delete {'it' if len(other) == 1 else 'them'}), e.g. "
        f"mv {folder / other[0].rstrip('/')} {folder.parent}/"
    )


def _parse_market_layout(fmt: DatasetFormat, folder: Path, layout: str, combine_val: bool,
                         split_id: int = 0) -> ParsedSplits:
    regex = _NAME_PATTERNS[fmt.name][0]
    splits: dict[str, list[Record]] = {}
    metadata: list[str] = []
    other: list[str] = []
    listings = {}
    for dirname in MARKET_SPLIT_DIRS.values():
        names, split_metadata, split_other = _list_image_folder(folder / dirname)
        listings[dirname] = names
        metadata += [f"{dirname}/{name}" for name in split_metadata]
        other += [f"{dirname}/{name}" for name in split_other]
    _refuse_other_entries(fmt, folder, other)
    for split, dirname in MARKET_SPLIT_DIRS.items():
        split_dir = folder / dirname
        records = []
        for name in listings[dirname]:
            file_path = split_dir / name
            match = regex.match(name)
            if match is None:
                raise _name_error(fmt, file_path)
            pid = int(match["pid"])
            camid = _camid(fmt, int(match["cam"]), file_path)
            if pid == -1:  # junk: dropped everywhere
                continue
            if pid == 0 and split != "gallery":  # distractors: gallery only
                continue
            records.append(Record(str(file_path), pid, camid))
        splits[split] = records
    _warn_metadata(fmt, folder, metadata)
    return ParsedSplits(folder, splits["train"], splits["query"], splits["gallery"])


# --------------------------------------------------------------------------------------------------------
# MSMT17


def _read_msmt_list(fmt: DatasetFormat, list_path: Path, image_dir: Path) -> list[Record]:
    records = []
    text = list_path.read_text(encoding="utf-8")
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2 or not re.fullmatch(r"-?\d+", fields[1]):
            raise DatasetFormatError(
                f"{list_path}:{line_no}: cannot parse {line.strip()!r}. Each line must be "
                f"'<relative/path.jpg> <pid>', e.g. '0000/0000_000_01_0303morning_0015_0.jpg 0'. "
                f"Fix the line or restore the original list file."
            )
        rel, pid = fields[0], int(fields[1])
        file_path = image_dir / rel
        where = f"{list_path.name} line {line_no}"
        if pid < 0:
            raise DatasetFormatError(
                f"{list_path}:{line_no}: negative pid {pid}; MSMT17 lists hold pids >= 0. "
                f"Fix the line or restore the original list file."
            )
        match = _MSMT_RE.match(file_path.name)
        if match is None:
            raise _name_error(fmt, file_path, where)
        camid = _camid(fmt, int(match["cam"]), file_path)
        if not file_path.is_file():
            raise FileNotFoundError(
                f"{list_path}:{line_no} lists {rel!r} but {file_path} does not exist. The list and the image "
                f"folder {image_dir} do not match: re-extract the MSMT17 archive (lists and images of the "
                f"same version, V1 or V2)."
            )
        records.append(Record(str(file_path), pid, camid))
    return records


def _parse_msmt17(fmt: DatasetFormat, folder: Path, layout: str, combine_val: bool, split_id: int = 0) -> ParsedSplits:
    train_dir, test_dir = (folder / d for d in fmt.layouts[layout][:2])
    train = _read_msmt_list(fmt, folder / "list_train.txt", train_dir)
    if combine_val:
        train = train + _read_msmt_list(fmt, folder / "list_val.txt", train_dir)
    query = _read_msmt_list(fmt, folder / "list_query.txt", test_dir)
    gallery = _read_msmt_list(fmt, folder / "list_gallery.txt", test_dir)
    return ParsedSplits(folder, train, query, gallery)


# --------------------------------------------------------------------------------------------------------
# the registry

_MARKET_DIRS = tuple(MARKET_SPLIT_DIRS.values())

FORMATS: dict[str, DatasetFormat] = {
    fmt.name: fmt
    for fmt in (
        DatasetFormat(
            name="market1501",
            title="Market-1501",
            layouts={"Market-1501-v15.09.15": _MARKET_DIRS},
            num_cams=6,
            default_location="data/market1501/Market-1501-v15.09.15",
            parse=_parse_market_layout,
        ),
        DatasetFormat(
            name="dukemtmcreid",
            title="DukeMTMC-reID",
            layouts={"DukeMTMC-reID": _MARKET_DIRS},
            num_cams=8,
            default_location="data/dukemtmcreid/DukeMTMC-reID",
            parse=_parse_market_layout,
        ),
        DatasetFormat(
            name="msmt17",
            title="MSMT17",
            layouts={
                "MSMT17_V1": ("train", "test", *_MSMT_LISTS),
                "MSMT17_V2": ("mask_train_v2", "mask_test_v2", *_MSMT_LISTS),
            },
            num_cams=15,
            default_location="data/msmt17/MSMT17_V1",
            parse=_parse_msmt17,
            how_to_get="MSMT17_V1/ or MSMT17_V2/ with its list_*.txt files; place it there yourself",
            supports_combine_val=True,
        ),
        DatasetFormat(
            name="synthetic",
            title="synthetic (Market-1501 layout)",
            layouts={"synthetic": _MARKET_DIRS},
            num_cams=None,
            default_location="data/synthetic",
            parse=_parse_market_layout,
            how_to_get='generate it with `make reproduce` or sisnet.data.synthetic.generate("data/synthetic")',
        ),
    )
}


def get_format(name: str) -> DatasetFormat:
    """The registry entry for ``name`` (case-insensitive); ``ValueError`` listing the valid names otherwise."""
    key = str(name).strip().lower()
    if key not in FORMATS:
        raise ValueError(
            f"Unknown dataset name {name!r}. Valid names: {', '.join(FORMATS)}. "
            f"(Market-1501 layout data of your own can be loaded as 'synthetic'.)"
        )
    return FORMATS[key]


def check_published_counts(fmt: DatasetFormat, parsed: ParsedSplits, combine_val: bool = False) -> list[str]:
    """Warn when a dataset that looks like the full set differs from :data:`PUBLISHED_COUNTS`; returns the problems.

    The dataset looks like the full set when one of its splits holds at least :data:`FULL_SET_FRACTION` of that
    split's published images; smaller trees (fixtures, samples) and formats without published counts
    (``synthetic``) are not compared and give ``[]``. Otherwise images and identities (original pids) are compared
    per split, and every difference goes into ONE ``UserWarning`` with both numbers and the likely cause.
    """
    published = PUBLISHED_COUNTS.get(parsed.published_as or fmt.name)
    if not published:
        return []
    keys = {split: "train+val" if split == "train" and combine_val else split for split in ("train", "query", "gallery")}
    read = {split: (len({r.pid for r in getattr(parsed, split)}), len(getattr(parsed, split))) for split in keys}
    if parsed.whole is not None:
        keys["all"], read["all"] = "all", parsed.whole
    keys = {split: key for split, key in keys.items() if key in published}  # a protocol set may omit a split
    if not any(read[split][1] >= FULL_SET_FRACTION * published[key][1] for split, key in keys.items()):
        return []
    market_layout = all(required == _MARKET_DIRS for required in fmt.layouts.values())
    problems = []
    for split, key in keys.items():
        (ids, images), (ids_expected, images_expected) = read[split], published[key]
        if fmt.name == "msmt17":
            where = "list_train.txt + list_val.txt list" if key == "train+val" else f"list_{split}.txt lists"
        elif market_layout:
            where = f"{MARKET_SPLIT_DIRS[split]} has"
        else:
            where = "the whole set has" if split == "all" else f"the {split} split has"
        if images != images_expected:
            cause = ("an incomplete extraction or copy?" if images < images_expected
                     else "files added, or another release of the dataset?")
            problems.append(f"{where} {images:,} image{'s' * (images != 1)}, the official set {images_expected:,}: {cause}")
        elif ids != ids_expected:
            problems.append(f"{where} {ids:,} identities, the official set {ids_expected:,} (with the same number of "
                            f"images): renamed files, or another release of the dataset?")
    if problems:
        warnings.warn(
            f"{fmt.title} at {parsed.root} differs from the published dataset: {'; '.join(problems)}. Results on it "
            f"are not comparable with published ones; re-extract the original archive into {parsed.root.parent} "
            f"unless the change is on purpose.",
            UserWarning,
            stacklevel=3,
        )
    return problems
