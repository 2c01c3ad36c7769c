"""Rules shared by the real-pedestrian sets split by a protocol (CUHK03, CUHK01, VIPeR, PRID, GRID, i-LIDS).

The parsers live in :mod:`sisnet.data.cuhk` (CUHK03, CUHK01) and :mod:`sisnet.data.targets` (VIPeR, PRID,
GRID, i-LIDS); this module holds what they share:

* :func:`list_images`: the strict listing of image folders, as for Market-1501 (:mod:`sisnet.data.formats`):
  images (:data:`REAL_IMAGE_EXTENSIONS`, ``.bmp`` included for VIPeR) and nothing else; OS metadata is skipped
  with ONE warning per load naming it; any other entry raises :class:`DatasetFormatError` naming every one,
  except the files a layout documents (PETA's ``Label.txt`` attribute file).
* :func:`split_rng` / :func:`choose_train_ids`: the splits. torchreid draws its 10 random splits once with an
  unseeded RNG and keeps them in a ``splits.json`` beside the data, so two torchreid installs split differently.
  Here split ``k`` of dataset ``name`` is drawn by ``random.Random(f"sisnet-split-{name}-{k}")`` from the sorted
  identities (the same seeding as :meth:`sisnet.data.ReIDDataset.validation_split`): the same split on every
  machine and for every layout (official archive or the PETA copy) of the same identities; nothing is written
  next to the data. Like torchreid, a split takes ``len(ids) // 2`` training identities (``int(0.5 * n)``).
* :func:`two_view_split`: train = every image of the training identities; query = the test identities'
  view-0 images (camera A), gallery = their view-1 images (camera B). torchreid's VIPeR and CUHK01 also add
  each split with the views swapped (20 splits); those are left out: 10 splits, camera A always the query.
* Pids: the number in the file name (torchreid relabels its query / gallery per split or subtracts 1: the
  matching is the same). :func:`sisnet.data.load_dataset` relabels the training split to ``0..N-1``.
* :func:`native_heights`: the native height in pixels of each record's image (read from the header, no decode).
"""
from __future__ import annotations

import inspect
import os
import random
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

from sisnet.data.formats import IMAGE_EXTENSIONS, DatasetFormat, DatasetFormatError, Record, is_os_metadata

__all__ = [
    "REAL_IMAGE_EXTENSIONS",
    "PETA_LAYOUT",
    "PETA_LABELS",
    "list_images",
    "name_error",
    "split_rng",
    "choose_train_ids",
    "add_record",
    "require_two_views",
    "two_view_split",
    "native_heights",
    "NATIVE_HEIGHTS_FILE",
]

REAL_IMAGE_EXTENSIONS = (*IMAGE_EXTENSIONS, ".bmp")
#: The PETA attribute set (Deng et al. 2014; github snake719/ML_data) ships each subset as
#: ``PETA dataset/<subset>/archive/``: one flat folder of images plus the attribute file ``Label.txt``.
PETA_LAYOUT = "archive"
PETA_LABELS = "Label.txt"
#: Sidecar of a packed copy (:mod:`sisnet.experiments.pack`, images re-encoded at the input size): ``path,height_px``
#: of every image relative to the folder holding it, so that the native heights survive the packing.
NATIVE_HEIGHTS_FILE = "native_heights.csv"


def _shown(items: Sequence[str], limit: int = 10) -> str:
    return ", ".join(items[:limit]) + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


def _caller_stacklevel() -> int:
    """The ``stacklevel`` (for a ``warnings.warn`` in this module's caller) of the first frame outside sisnet.data."""
    here = os.path.dirname(os.path.abspath(__file__))
    frame, level = inspect.currentframe(), 0
    while frame is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == here:
        frame, level = frame.f_back, level + 1
    return max(level, 1)


def list_images(fmt: DatasetFormat, root: Path, folders: Iterable[Path],
                tolerated: Iterable[str] = ()) -> dict[Path, list[str]]:
    """Sorted image names of each folder; refuses other entries, warns ONCE for OS metadata across all folders.

    ``tolerated``: file names a layout documents (e.g. PETA's ``Label.txt``); they are not images and not read.
    The warning names the line that called :func:`sisnet.data.load_dataset`.
    """
    tolerated = set(tolerated)
    listing: dict[Path, list[str]] = {}
    metadata: list[str] = []
    other: list[str] = []
    for folder in folders:
        names = []
        with os.scandir(folder) as it:
            for entry in it:
                rel = f"{os.path.relpath(entry.path, root)}{'/' if entry.is_dir() else ''}"
                if is_os_metadata(entry.name):
                    metadata.append(rel)
                elif entry.is_file() and os.path.splitext(entry.name)[1].lower() in REAL_IMAGE_EXTENSIONS:
                    names.append(entry.name)
                elif not (entry.is_file() and entry.name in tolerated):
                    other.append(rel)
        listing[folder] = sorted(names)
    if other:
        other.sort()
        raise DatasetFormatError(
            f"{fmt.title} at {root}: the image folders hold {len(other)} entr{'y' if len(other) == 1 else 'ies'} "
            f"that {'is' if len(other) == 1 else 'are'} not images ({'/'.join(REAL_IMAGE_EXTENSIONS)}) nor OS "
            f"metadata: {_shown(other)}. The archives hold only images there (PETA: plus {PETA_LABELS}), so "
            f"nothing else is skipped silently. Fix: move {'it' if len(other) == 1 else 'them'} out of the image "
            f"folders, e.g. mv {root / other[0].rstrip('/')} {root.parent}/"
        )
    if metadata:
        warnings.warn(
            f"{fmt.title} at {root}: skipped {len(metadata)} OS metadata file{'s' * (len(metadata) != 1)} "
            f"(not images): {_shown(sorted(metadata))}.", UserWarning, stacklevel=_caller_stacklevel())
    return listing


def name_error(fmt: DatasetFormat, path: Path, expected: str, hint: str = "") -> DatasetFormatError:
    """The error for an image name that does not follow ``expected`` (e.g. ``NNN_<angle>.bmp``)."""
    return DatasetFormatError(
        f"Cannot parse {fmt.title} image name {path.name!r} ({path}). Expected {expected}.{hint} Fix: rename or "
        f"remove the file, or load the folder with the matching dataset name."
    )


def split_rng(seed_name: str, split_id: int) -> random.Random:
    """The fixed RNG of split ``split_id`` of dataset ``seed_name``: the same draws on every machine."""
    return random.Random(f"sisnet-split-{seed_name}-{split_id}")


def choose_train_ids(fmt: DatasetFormat, folder: Path, ids: Iterable[int], split_id: int,
                     seed_name: str | None = None) -> tuple[random.Random, set[int], list[int]]:
    """``(rng, training ids, sorted test ids)`` of a split: ``len(ids) // 2`` ids drawn from the sorted ``ids``.

    The RNG is returned so a protocol can keep drawing from it (i-LIDS's query / gallery images).
    """
    ids = sorted(set(ids))
    if len(ids) < 2:
        raise DatasetFormatError(
            f"{fmt.title} at {folder}: {len(ids)} usable identit{'y' if len(ids) == 1 else 'ies'}; a split needs "
            f"at least 2 (one to train on, one to test). Fix: restore the images (re-extract the archive)."
        )
    rng = split_rng(seed_name or fmt.name, split_id)
    train = set(rng.sample(ids, len(ids) // 2))
    return rng, train, [pid for pid in ids if pid not in train]


def add_record(views: dict[int, dict[int, list[Record]]], path: Path, pid: int, camid: int) -> None:
    """Add one image to ``views`` (``{pid: {camid: [Record, ...]}}``)."""
    views.setdefault(pid, {}).setdefault(camid, []).append(Record(str(path), pid, camid))


def require_two_views(fmt: DatasetFormat, folder: Path, views: dict[int, dict[int, list[Record]]],
                      per_view: int | None = None) -> None:
    """Raise naming the files of the first identity without an image in both views (or not ``per_view`` each)."""
    for pid in sorted(views):
        counts = [len(views[pid].get(camid, [])) for camid in (0, 1)]
        if min(counts) == 0 or (per_view is not None and counts != [per_view, per_view]):
            files = [Path(r.path).name for camid in sorted(views[pid]) for r in views[pid][camid]]
            want = f"exactly {per_view} image{'s' * (per_view != 1)} in each" if per_view else "images in both"
            raise DatasetFormatError(
                f"{fmt.title} at {folder}: identity {pid} has {counts[0]} image(s) in view A and {counts[1]} in view "
                f"B ({', '.join(files)}); every {fmt.title} identity has {want} of the two views. Fix: restore the "
                f"missing file(s) or remove the extra one(s) (re-extract the archive)."
            )


def two_view_split(views: dict[int, dict[int, list[Record]]], train_ids: set[int],
                   test_ids: Iterable[int]) -> tuple[list[Record], list[Record], list[Record]]:
    """``(train, query, gallery)``: every image of ``train_ids``; view 0 / view 1 of ``test_ids``."""
    train = [r for pid in sorted(train_ids) for camid in sorted(views[pid]) for r in views[pid][camid]]
    query: list[Record] = []
    gallery: list[Record] = []
    for pid in test_ids:
        query += views[pid].get(0, [])
        gallery += views[pid].get(1, [])
    return train, query, gallery


def _packed_heights(path: str, sidecars: dict[Path, dict[str, int] | None]) -> int | None:
    """The height recorded for ``path`` by a :data:`NATIVE_HEIGHTS_FILE` in one of its parent folders, if any."""
    for folder in list(Path(path).parents)[:4]:
        if folder not in sidecars:
            table = folder / NATIVE_HEIGHTS_FILE
            sidecars[folder] = None
            if table.is_file():
                rows = (line.rsplit(",", 1) for line in table.read_text(encoding="utf-8").splitlines()[1:] if line)
                sidecars[folder] = {rel: int(h) for rel, h in rows}
        known = sidecars[folder]
        if known is not None:
            return known.get(Path(path).relative_to(folder).as_posix())
    return None


def native_heights(records: Sequence[Record]) -> list[int]:
    """Native height in pixels of each record's image: from a packed copy's :data:`NATIVE_HEIGHTS_FILE` when the
    set has one, else from the image header (nothing is decoded).

    For sets without a ``scales.csv`` sidecar (the real ones): the person's height is the crop's height.
    Raises :class:`sisnet.data.transforms.BadImageError` listing every file that is not a readable image.
    """
    sidecars: dict[Path, dict[str, int] | None] = {}
    from PIL import Image, UnidentifiedImageError

    heights: list[int] = []
    bad: list[tuple[str, str]] = []
    for r in records:
        packed = _packed_heights(r.path, sidecars)
        if packed is not None:
            heights.append(packed)
            continue
        try:
            with Image.open(r.path) as im:
                heights.append(int(im.height))
        except (OSError, ValueError, UnidentifiedImageError) as exc:
            bad.append((str(r.path), f"{type(exc).__name__}: {exc}"))
    if bad:
        from sisnet.data.transforms import BadImageError

        raise BadImageError(bad, len(records))
    return heights
