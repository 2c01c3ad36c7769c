"""The real-pedestrian test bed: the source training set, its validation and in-domain test, the targets' protocols.

Sources (trained on): CUHK03 (``labeled`` boxes, the extracted-image layout's ``train`` folder) and CUHK01
(``campus``, every identity), relabelled into disjoint ranges: CUHK03 first (``0..N03-1``), CUHK01 after it. Their
cameras are kept apart too (CUHK03 camids 0-1, CUHK01 camids 2-3). CUHK01 and CUHK03 were both filmed on the CUHK
campus and publish no identity mapping between them, so they may share people; both are only trained on, so a
shared person can at most leak between CUHK01 training images and CUHK03 validation or in-domain test images.

- *Validation* (choosing settings): CUHK03's ``val`` identities (100), never trained on; query one image per
  identity and camera, gallery the rest (the loader's split).
- *In-domain test*: :data:`IN_DOMAIN_IDS` CUHK03 ``train`` identities held out of training
  (:meth:`sisnet.data.ReIDDataset.validation_split`: one query per identity and camera).
- *Targets* (never trained on): VIPeR, PRID, GRID and i-LIDS under their 10 fixed single-shot splits
  (:mod:`sisnet.data`), results averaged over the splits. Only each split's test identities are used.

Protocols on every evaluation set: ``standard`` and ``cross-scale`` (:func:`cross_scale_images`: each query
area-down-sampled to :data:`CROSS_SCALE_HEIGHT` of the input height, JPEG-compressed at
:data:`CROSS_SCALE_JPEG`, then resized back to the input; the gallery untouched). That operator is neither the
second branch's view nor the Baseline+LR aug. control's (both anti-aliased bilinear at ``scale_factor``), so no
arm trains on it. Results by native query height (:data:`HEIGHT_EDGES`) where the heights vary.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
from PIL import Image

from sisnet.config import dataset_folder
from sisnet.data import ReIDDataset, Record, load_dataset, native_heights, relabel
from sisnet.data.formats import get_format
from sisnet.data.transforms import BadImageError, decode_images_cached
from sisnet.evaluation import extract_modes, feature_metrics

__all__ = ["SOURCES", "TARGETS", "IN_DOMAIN_IDS", "CROSS_SCALE_HEIGHT", "CROSS_SCALE_JPEG", "HEIGHT_EDGES",
           "DATA_SOURCES", "Sources", "load_sources", "load_targets", "cross_scale_images", "dataset_table", "evaluate_real"]

SOURCES = ("cuhk03", "cuhk01")
TARGETS = ("viper", "prid", "grid", "ilids")
#: CUHK03 training identities held out as the in-domain test (never trained on).
IN_DOMAIN_IDS = 100
#: cross-scale queries: area down-sampling to this fraction of the input height (128 px -> 38 px), then JPEG
CROSS_SCALE_HEIGHT = 0.3
CROSS_SCALE_JPEG = 40
#: native query-height bins (px) for the sets whose heights vary (GRID, i-LIDS, CUHK03)
HEIGHT_EDGES = (0, 128, 192, 10_000)
HEIGHT_BIN_SETS = ("grid", "ilids", "cuhk03")
SOURCE_VARIANT = "real-sources-v1"
#: where the committed real results' data came from (public GitHub snapshots; see README, "Real pedestrians")
DATA_SOURCES = {
    "cuhk03": {"repository": "manideep2510/CUHK03_dataset", "commit": "6fdef3b546c881e3268a684b71d5d12c4192e4fd",
               "folders": "labeled/train, labeled/val"},
    "cuhk01": {"repository": "manideep2510/CUHK03_dataset", "commit": "6fdef3b546c881e3268a684b71d5d12c4192e4fd",
               "folders": "CUHK01/campus"},
    **{name: {"repository": "snake719/ML_data", "commit": "efd90a83c5c1a64ff94a631f121da57248729be1",
              "folders": f"PETA dataset/{sub}/archive"}
       for name, sub in (("viper", "VIPeR"), ("prid", "PRID"), ("grid", "GRID"), ("ilids", "i-LID"))},
}


@dataclass(frozen=True)
class Sources:
    """``train``: the training set (its query / gallery are the validation set); ``in_domain``: the held-out test."""

    train: ReIDDataset
    in_domain: ReIDDataset


def load_sources(data_root: str | Path) -> Sources:
    """CUHK03 + CUHK01 as one training set under ``data_root`` (``<data_root>/cuhk03``, ``<data_root>/cuhk01``)."""
    cuhk03 = load_dataset("cuhk03", dataset_folder("cuhk03", data_root, "cpu"))
    held = cuhk03.validation_split(IN_DOMAIN_IDS)  # train minus the held-out ids; its query/gallery = in-domain test
    cuhk01 = load_dataset("cuhk01", dataset_folder("cuhk01", data_root, "cpu"))
    offset = held.num_train_pids
    campus = relabel(cuhk01.train + cuhk01.query + cuhk01.gallery)  # every CUHK01 identity trains
    train = held.train + [Record(r.path, r.pid + offset, r.camid + 2) for r in campus]
    root = Path(data_root).resolve()
    train_set = ReIDDataset(name="cuhk03+cuhk01", root=root, train=train, query=cuhk03.query,
                            gallery=cuhk03.gallery, variant=SOURCE_VARIANT)
    in_domain = ReIDDataset(name="cuhk03", root=held.root, train=[], query=held.query, gallery=held.gallery,
                            variant=f"in-domain{IN_DOMAIN_IDS}")
    return Sources(train_set, in_domain)


def load_targets(data_root: str | Path, names: Sequence[str] = TARGETS) -> dict[str, list[ReIDDataset]]:
    """Every split of each target: ``{name: [split 0, ..., split 9]}`` (``<data_root>/<name>``)."""
    out = {}
    for name in names:
        folder = dataset_folder(name, data_root, "cpu")
        out[name] = [load_dataset(name, folder, split_id=k) for k in range(get_format(name).num_splits)]
    return out


def cross_scale_images(paths: Sequence[str], size_hw: tuple[int, int], height_fraction: float = CROSS_SCALE_HEIGHT,
                       jpeg_quality: int = CROSS_SCALE_JPEG) -> torch.Tensor:
    """The cross-scale queries: ``uint8 (N, 3, H, W)``, each image area-down-sampled (PIL's box filter) from its
    native size to ``height_fraction * H`` rows, JPEG-encoded at ``jpeg_quality``, decoded, and resized (bilinear)
    to ``size_hw`` like every evaluation image."""
    h, w = size_hw
    small = (max(4, round(w * height_fraction)), max(4, round(h * height_fraction)))
    out = torch.empty((len(paths), 3, h, w), dtype=torch.uint8)
    for i, p in enumerate(paths):
        try:
            with Image.open(p) as im:
                im = im.convert("RGB").resize(small, Image.BOX)
        except OSError as exc:
            raise BadImageError([(str(p), f"{type(exc).__name__}: {exc}")], len(paths)) from exc
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=int(jpeg_quality))
        buf.seek(0)
        with Image.open(buf) as jp:
            arr = np.asarray(jp.convert("RGB").resize((w, h), Image.BILINEAR), dtype=np.uint8)
        out[i] = torch.from_numpy(arr.copy()).permute(2, 0, 1)
    return out


class _FeatureBank:
    """Features of every distinct image of an evaluation set, extracted once (standard and cross-scale)."""

    def __init__(self, model: Any, config: Any, records: Sequence[Record], queries: Sequence[Record]) -> None:
        size = (config.img_height, config.img_width)
        paths = sorted({r.path for r in records})
        self.index = {p: i for i, p in enumerate(paths)}
        images = decode_images_cached(paths, size, "decode eval")
        self.standard = extract_modes(model, [Record(p, 0, 0) for p in paths], config, ("either",), images=images)[0]["either"]
        q_paths = sorted({r.path for r in queries})
        self.q_index = {p: i for i, p in enumerate(q_paths)}
        small = cross_scale_images(q_paths, size)
        self.cross = extract_modes(model, [Record(p, 0, 0) for p in q_paths], config, ("either",), images=small)[0]["either"]

    def query(self, records: Sequence[Record], protocol: str) -> torch.Tensor:
        if protocol == "cross-scale":
            return self.cross[[self.q_index[r.path] for r in records]]
        return self.standard[[self.index[r.path] for r in records]]

    def gallery(self, records: Sequence[Record]) -> torch.Tensor:
        return self.standard[[self.index[r.path] for r in records]]


def _metrics(bank: _FeatureBank, query: Sequence[Record], gallery: Sequence[Record], protocol: str,
             metric: str) -> dict[str, float]:
    ids = lambda recs, k: np.array([getattr(r, k) for r in recs])  # noqa: E731
    res = feature_metrics(bank.query(query, protocol), bank.gallery(gallery), ids(query, "pid"), ids(gallery, "pid"),
                          ids(query, "camid"), ids(gallery, "camid"), metric=metric)
    return {"rank1": 100 * res["rank1"], "mAP": 100 * res["mAP"], "n_query": len(query), "n_gallery": len(gallery)}


def _set_rows(model: Any, config: Any, name: str, splits: Sequence[ReIDDataset]) -> list[dict[str, Any]]:
    """Rows of one evaluation set (every split, both protocols, and the height bins where they apply)."""
    records = [r for s in splits for r in s.query + s.gallery]
    queries = [r for s in splits for r in s.query]
    bank = _FeatureBank(model, config, records, queries)
    heights = dict(zip((r.path for r in queries), native_heights(queries))) if name in HEIGHT_BIN_SETS else {}
    rows = []
    for k, split in enumerate(splits):
        for protocol in ("standard", "cross-scale"):
            rows.append({"set": name, "split": k, "protocol": protocol, "height_bin": "all",
                         **_metrics(bank, split.query, split.gallery, protocol, config.metric)})
            for lo, hi in zip(HEIGHT_EDGES[:-1], HEIGHT_EDGES[1:]) if heights else ():
                q = [r for r in split.query if lo <= heights[r.path] < hi]
                if q:
                    label = f"{lo}-{hi - 1} px" if hi < HEIGHT_EDGES[-1] else f">= {lo} px"
                    rows.append({"set": name, "split": k, "protocol": protocol, "height_bin": label,
                                 **_metrics(bank, q, split.gallery, protocol, config.metric)})
    return rows


def dataset_table(sources: Sources, targets: dict[str, list[ReIDDataset]]) -> pd.DataFrame:
    """What each set holds: role, identities and images of train / query / gallery (split 0 for the targets, with
    the split count), and the native query heights."""
    def row(name: str, role: str, ds: ReIDDataset, splits: int = 1) -> dict[str, Any]:
        h = np.asarray(native_heights(ds.query))
        return {"set": name, "role": role, "train_ids": ds.num_train_pids if ds.train else 0,
                "train_images": len(ds.train), "query_ids": len({r.pid for r in ds.query}), "query_images": len(ds.query),
                "gallery_ids": len({r.pid for r in ds.gallery}), "gallery_images": len(ds.gallery), "splits": splits,
                "query_height_min": int(h.min()), "query_height_max": int(h.max())}

    rows = [row("cuhk03+cuhk01", "training (query/gallery: CUHK03 val = validation)", sources.train),
            row("cuhk03", "in-domain test (held-out CUHK03 train identities)", sources.in_domain)]
    for name, splits in targets.items():
        rows.append(row(name, "target (never trained on)", splits[0], len(splits)))
    return pd.DataFrame(rows)


@torch.no_grad()
def evaluate_real(model: Any, config: Any, sources: Sources, targets: dict[str, list[ReIDDataset]]) -> pd.DataFrame:
    """Every evaluation of one trained model: validation (CUHK03 ``val``), in-domain CUHK03 and each target's
    splits, under both protocols. One row per (set, split, protocol, height bin): rank-1 and mAP in %, n."""
    model.eval()
    rows = _set_rows(model, config, "cuhk03-val", [sources.train])
    rows += _set_rows(model, config, "cuhk03", [sources.in_domain])
    for name, splits in targets.items():
        rows += _set_rows(model, config, name, splits)
    return pd.DataFrame(rows)
