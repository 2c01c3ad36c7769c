"""ReID datasets: loading the standard on-disk formats into train / query / gallery records.

>>> ds = load_dataset("market1501", "data/market1501")       # or the Market-1501-v15.09.15 folder itself
>>> ds.train[0]                                             # Record(path='/abs/.../0002_c1s1_000451_03.jpg', pid=0, camid=0)
>>> ds.summary()                                            # ids / images / cameras per split

Supported names: :data:`DATASET_NAMES`. The format rules (junk and distractor handling, camera ranges, the
MSMT17 lists) are documented in :mod:`sisnet.data.formats`; the sets split by a protocol (CUHK03, CUHK01,
VIPeR, PRID, GRID, i-LIDS: ``load_dataset(name, root, split_id=k)``) in :mod:`sisnet.data.cuhk` and
:mod:`sisnet.data.targets`. Training pids are relabelled to ``0..N-1`` in sorted order of the original pid;
query and gallery keep their original pids; camids are 0-based.

This module stays light to import (no torch, no pandas at import time, and it does not import
``sisnet.data.synthetic``); the sampler, transforms and generator live in their own submodules.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sisnet.data.formats import (
    FORMATS,
    MARKET_SPLIT_DIRS,
    DatasetFormatError,
    Record,
    check_published_counts,
    get_format,
    resolve_root,
)
from sisnet.data.cuhk import CUHK_FORMATS
from sisnet.data.real import native_heights
from sisnet.data.targets import TARGET_FORMATS

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

__all__ = [
    "Record",
    "ReIDDataset",
    "load_dataset",
    "relabel",
    "DATASET_NAMES",
    "SCALE_SIDECAR",
    "PERSON_MASK_DIR",
    "SPLITS",
    "DatasetFormatError",
    "native_heights",
]

# the protocol sets' entries (their modules import sisnet.data.formats, so formats cannot import them)
FORMATS.update((fmt.name, fmt) for fmt in (*CUHK_FORMATS, *TARGET_FORMATS))
DATASET_NAMES: tuple[str, ...] = tuple(FORMATS)
SCALE_SIDECAR = "scales.csv"
#: Folder of per-image person masks (``<folder>/<split>/<image stem>.png``, white = person), when a dataset has them.
PERSON_MASK_DIR = "person_masks"
SPLITS = ("train", "query", "gallery")
_SIDECAR_COLUMNS = ("split", "name", "height_px")


def relabel(records: list[Record]) -> list[Record]:
    """Map pids to ``0..N-1`` in sorted order of the original pid (torchreid's ``relabel=True``)."""
    pid2label = {pid: label for label, pid in enumerate(sorted({r.pid for r in records}))}
    return [Record(r.path, pid2label[r.pid], r.camid) for r in records]


@dataclass
class ReIDDataset:
    """A loaded ReID dataset.

    ``root`` is the resolved absolute dataset folder (e.g. ``.../Market-1501-v15.09.15``). ``train`` holds
    relabelled pids ``0..num_train_pids-1``; ``query`` and ``gallery`` hold the original pids. Every record
    is ``(absolute path, pid, 0-based camid)``.
    """

    name: str
    root: Path
    train: list[Record] = field(repr=False)
    query: list[Record] = field(repr=False)
    gallery: list[Record] = field(repr=False)
    #: "" for the dataset as published; "split<k>" for split k of a protocol set (``load_dataset(split_id=k)``);
    #: "val<N>" for :meth:`validation_split` (part of the fingerprint)
    variant: str = ""
    _fingerprint: str | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def num_train_pids(self) -> int:
        """Number of training identities (= number of classes of the ID classifier)."""
        return len({r.pid for r in self.train})

    @property
    def num_train_cams(self) -> int:
        """Number of distinct cameras in the training split."""
        return len({r.camid for r in self.train})

    def split(self, name: str) -> list[Record]:
        """The records of split ``name`` (one of ``train``, ``query``, ``gallery``)."""
        if name not in SPLITS:
            raise ValueError(f"Unknown split {name!r}; valid splits: {', '.join(SPLITS)}.")
        return getattr(self, name)

    def fingerprint(self) -> str:
        """16 hex digits that change when the data changes: part of a run's key (:func:`sisnet.runs.run_key`).

        sha256 over the dataset name and every record of the three splits: the path relative to ``root``, pid,
        camid, file size and modification time (ns), so the same config on replaced data never answers from the
        runs cache. A synthetic set written by :mod:`sisnet.data.synthetic` is identified by its ``meta.json``
        (generator version and configuration, seed included) instead of the times: its bytes are a pure function
        of those, so regenerating the same set keeps its runs. One ``stat`` per image, memoised on the dataset.
        """
        if self._fingerprint is None:
            import hashlib
            import json

            h = hashlib.sha256(f"{self.name}\n".encode() + (f"{self.variant}\n".encode() if self.variant else b""))
            generator = _synthetic_generator(Path(self.root))
            h.update(json.dumps(generator, sort_keys=True).encode() + b"\n")
            for split in SPLITS:
                for r in self.split(split):
                    st = os.stat(r.path)
                    try:
                        rel = os.path.relpath(r.path, self.root)
                    except ValueError:  # another drive (Windows)
                        rel = str(r.path)
                    mtime = "" if generator else st.st_mtime_ns
                    h.update(f"{split}\t{rel}\t{r.pid}\t{r.camid}\t{st.st_size}\t{mtime}\n".encode())
            self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint

    def validation_split(self, num_ids: int) -> "ReIDDataset":
        """Train / validation split of the TRAINING identities, for choosing hyper-parameters without the test set.

        ``num_ids`` training identities seen by at least two cameras are held out (drawn with a fixed seed, so
        every configuration and training seed sees the same split). Their images form the validation query
        (one image per identity and camera, for each camera with at least two images of that identity) and
        gallery (all the others); the remaining identities, relabelled ``0..N-1``, are the training split. The
        test query and gallery are never read. The result's ``variant`` is ``"val<num_ids>"``, so its runs have
        their own cache keys. ``ValueError`` when fewer than ``num_ids`` identities qualify or none would be left
        to train on.
        """
        import random
        from collections import defaultdict

        by_pid: dict[int, dict[int, list[Record]]] = defaultdict(lambda: defaultdict(list))
        for r in self.train:
            by_pid[r.pid][r.camid].append(r)
        eligible = sorted(p for p, cams in by_pid.items() if len(cams) >= 2)
        if isinstance(num_ids, bool) or not isinstance(num_ids, int) or not 0 < num_ids < len(by_pid):
            raise ValueError(f"validation_split(num_ids={num_ids!r}): give an integer in 1..{len(by_pid) - 1} "
                             f"(the training split has {len(by_pid)} identities).")
        if len(eligible) < num_ids:
            raise ValueError(f"validation_split(num_ids={num_ids}): only {len(eligible)} training identities are "
                             f"seen by two or more cameras; hold out at most that many.")
        rng = random.Random(f"sisnet-validation-{self.name}-{num_ids}")  # fixed: the same split for every run
        held = set(rng.sample(eligible, num_ids))
        query: list[Record] = []
        gallery: list[Record] = []
        for pid in sorted(held):
            for camid in sorted(by_pid[pid]):
                images = sorted(by_pid[pid][camid])
                q = rng.randrange(len(images)) if len(images) >= 2 else -1
                for i, r in enumerate(images):
                    (query if i == q else gallery).append(r)
        train = relabel([r for r in self.train if r.pid not in held])
        return ReIDDataset(name=self.name, root=self.root, train=train, query=query, gallery=gallery,
                           variant=f"val{num_ids}")

    def __repr__(self) -> str:
        return (
            f"ReIDDataset(name={self.name!r}, root={str(self.root)!r}, train={len(self.train)} images/"
            f"{self.num_train_pids} ids, query={len(self.query)}, gallery={len(self.gallery)})"
        )

    def summary(self) -> "pd.DataFrame":
        """Per-split table: index ``train``/``query``/``gallery``; columns ``ids``, ``images``, ``cameras``.

        When the dataset folder has a ``scales.csv`` sidecar, two more columns give the scale range:
        ``min_height_px`` and ``max_height_px`` (native person height in pixels before resizing).
        """
        import pandas as pd

        rows = {
            split: {
                "ids": len({r.pid for r in recs}),
                "images": len(recs),
                "cameras": len({r.camid for r in recs}),
            }
            for split, recs in ((s, self.split(s)) for s in SPLITS)
        }
        table = pd.DataFrame.from_dict(rows, orient="index")
        table.index.name = "split"
        scales = self.scales()
        if scales is not None:
            grouped = scales.groupby("subset", sort=False)["height_px"]
            table["min_height_px"] = grouped.min().reindex(table.index)
            table["max_height_px"] = grouped.max().reindex(table.index)
        return table

    def person_masks(self, records: list[Record], size_hw: tuple[int, int] | None = None) -> "np.ndarray | None":
        """Person masks of ``records`` as a bool array ``(N, H, W)`` (resized to ``size_hw`` when given), or
        ``None`` when the dataset has no ``person_masks/`` folder (the public datasets have none; the synthetic
        generator writes one)."""
        import numpy as np
        from PIL import Image

        folder = Path(self.root) / PERSON_MASK_DIR
        if not folder.is_dir():
            return None
        out = []
        for r in records:
            path = folder / Path(r.path).parent.name / (Path(r.path).stem + ".png")
            if not path.is_file():
                raise DatasetFormatError(
                    f"{path} is missing: the person masks and the images of {self.root} are out of sync. Fix: "
                    f"regenerate the dataset, or delete {folder} to use it without masks."
                )
            with Image.open(path) as im:
                im = im.convert("L")
                if size_hw is not None and (im.height, im.width) != tuple(size_hw):
                    im = im.resize((size_hw[1], size_hw[0]), Image.NEAREST)
                out.append(np.asarray(im) >= 128)
        return np.stack(out) if out else np.zeros((0, *(size_hw or (0, 0))), dtype=bool)

    def scales(self) -> "pd.DataFrame | None":
        """The ``scales.csv`` sidecar joined to the records, or ``None`` when the folder has no sidecar.

        One row per record, in the order train, query, gallery; columns ``subset`` (train/query/gallery),
        ``split`` (the Market folder name used as key in the sidecar: bounding_box_train/query/
        bounding_box_test), ``name`` (file name), ``path``, ``pid`` (as in the record, so relabelled for
        train), ``camid`` and ``height_px``. Sidecar rows without a record (junk images) are left out;
        a record without a sidecar row raises an error.
        """
        import pandas as pd

        sidecar_path = Path(self.root) / SCALE_SIDECAR
        if not sidecar_path.is_file():
            return None
        sidecar = pd.read_csv(sidecar_path)
        missing = [c for c in _SIDECAR_COLUMNS if c not in sidecar.columns]
        if missing:
            raise DatasetFormatError(
                f"{sidecar_path} lacks column(s) {', '.join(missing)}; it must have columns "
                f"{', '.join(_SIDECAR_COLUMNS)} (found {', '.join(map(str, sidecar.columns))}). "
                f"Fix: regenerate the dataset (sisnet.data.synthetic.generate / the MOT converter) or delete it."
            )
        bad_split = sorted(set(sidecar["split"].astype(str)) - set(MARKET_SPLIT_DIRS.values()))
        if bad_split:
            raise DatasetFormatError(
                f"{sidecar_path}: unknown split value(s) {', '.join(bad_split)}; valid: "
                f"{', '.join(MARKET_SPLIT_DIRS.values())}. Fix: regenerate the sidecar or delete it."
            )
        height = pd.to_numeric(sidecar["height_px"], errors="coerce")
        if height.isna().any() or (height <= 0).any():
            row = int((height.isna() | (height <= 0)).to_numpy().argmax())
            raise DatasetFormatError(
                f"{sidecar_path}: height_px must be a positive number on every row (data row {row + 1} has "
                f"{sidecar['height_px'].iloc[row]!r}). Fix: regenerate the sidecar or delete it."
            )
        sidecar = sidecar.assign(height_px=height, split=sidecar["split"].astype(str))
        dup = sidecar.duplicated(["split", "name"])
        if dup.any():
            first = sidecar.loc[dup, ["split", "name"]].iloc[0]
            raise DatasetFormatError(
                f"{sidecar_path}: {int(dup.sum())} duplicated (split, name) rows, e.g. "
                f"{first['split']}/{first['name']}. Fix: regenerate the sidecar or delete it."
            )
        recs = pd.DataFrame(
            [
                (subset, MARKET_SPLIT_DIRS[subset], os.path.basename(r.path), r.path, r.pid, r.camid)
                for subset in SPLITS
                for r in self.split(subset)
            ],
            columns=["subset", "split", "name", "path", "pid", "camid"],
        )
        joined = recs.merge(sidecar[list(_SIDECAR_COLUMNS)], on=["split", "name"], how="left", validate="m:1")
        lacking = joined["height_px"].isna()
        if lacking.any():
            examples = ", ".join((joined.loc[lacking, "split"] + "/" + joined.loc[lacking, "name"]).head(3))
            raise DatasetFormatError(
                f"{sidecar_path} has no row for {int(lacking.sum())} of {len(joined)} images (e.g. {examples}). "
                f"The sidecar and the image folders are out of sync. Fix: regenerate the dataset, or delete "
                f"{SCALE_SIDECAR} to load it without scale information."
            )
        return joined


def _synthetic_generator(root: Path) -> dict | None:
    """The generator record of a synthetic set written by :mod:`sisnet.data.synthetic` at ``root``, else None."""
    import json

    meta_path = root / "meta.json"  # sisnet.data.synthetic.META_FILE (not imported: this module stays light)
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("generator") != "sisnet.data.synthetic":
        return None
    return {k: meta.get(k) for k in ("generator", "generator_version", "size", "config")}


def load_dataset(name: str, root: str | os.PathLike, *, combine_val: bool = False, split_id: int = 0) -> ReIDDataset:
    """Load dataset ``name`` (one of :data:`DATASET_NAMES`) from ``root``.

    ``root`` may be the dataset folder itself (e.g. ``data/market1501/Market-1501-v15.09.15``) or its parent
    (``data/market1501``). ``combine_val=True`` (MSMT17 only) adds ``list_val.txt`` to the training split.
    ``split_id``: the split of a set with several (``get_format(name).num_splits``: 10 for CUHK01, VIPeR, PRID,
    GRID, i-LIDS), ``0..num_splits-1``; the others have one, ``split_id=0``. The result's ``variant`` is
    ``"split<k>"`` for the sets with several splits. CUHK03 from ``cuhk-03.mat`` writes its images once to
    ``images_labeled/`` (``images_detected/``) beside it, like torchreid.
    OS metadata in the image folders (``Thumbs.db``, ``.DS_Store``, ...) is skipped with one warning naming it.
    A Market-1501, DukeMTMC-reID, MSMT17 or protocol-set folder that looks like the full set is compared with the
    published split sizes (:func:`sisnet.data.formats.check_published_counts`): a difference is a warning with
    both numbers and its likely cause, and the data still loads.

    Raises ``ValueError`` for an unknown name or a ``split_id`` out of range, ``FileNotFoundError`` for a
    missing root, and
    :class:`DatasetFormatError` (a ``ValueError``) for a wrong layout, a file in an image folder that is not an
    image, an unparsable file name, a camera out of range or an empty split; each message says how to fix it.
    """
    fmt = get_format(name)
    if combine_val and not fmt.supports_combine_val:
        supported = [f.name for f in FORMATS.values() if f.supports_combine_val]
        raise ValueError(
            f"combine_val=True only applies to {', '.join(supported)} (it has a separate validation list); "
            f"{fmt.name} has none. Fix: call load_dataset({fmt.name!r}, ..., combine_val=False)."
        )
    if isinstance(split_id, bool) or not isinstance(split_id, int) or not 0 <= split_id < fmt.num_splits:
        valid = f"0..{fmt.num_splits - 1}" if fmt.num_splits > 1 else "0 (it has one fixed split)"
        raise ValueError(f"split_id={split_id!r} is out of range for {fmt.name}: give {valid}.")
    folder, layout = resolve_root(fmt, root)
    parsed = fmt.parse(fmt, folder, layout, combine_val, split_id)
    for split in SPLITS:
        if not getattr(parsed, split):
            if fmt.name == "msmt17":
                source = {"train": "list_train.txt", "query": "list_query.txt", "gallery": "list_gallery.txt"}
                where = f"{folder / source[split]} lists no images"
            elif any(required != tuple(MARKET_SPLIT_DIRS.values()) for required in fmt.layouts.values()):
                where = f"its protocol leaves no image in it (split {split_id}, {layout} layout)"
            else:
                where = (
                    f"{folder / MARKET_SPLIT_DIRS[split]} has no usable image (junk pid -1 is dropped "
                    f"everywhere and distractor pid 0 outside the gallery)"
                )
            raise DatasetFormatError(
                f"The {split} split of {fmt.title} at {folder} is empty: {where}. Fix: restore the images of "
                f"that split (re-extract the archive or regenerate the synthetic set)."
            )
    check_published_counts(fmt, parsed, combine_val)
    return ReIDDataset(
        name=fmt.name,
        root=parsed.root,
        train=relabel(parsed.train),
        query=list(parsed.query),
        gallery=list(parsed.gallery),
        variant=f"split{split_id}" if fmt.num_splits > 1 else "",
    )
