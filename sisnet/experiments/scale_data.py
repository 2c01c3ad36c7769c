"""The controlled scale study's test bed: the generated sets (generator version 4), its protocols and evaluation.

Three sets of the ``scale`` size (:data:`sisnet.data.synthetic.SIZES`), each generated with its own seed, so their
identities are distinct people:

- *training*: seed :data:`TRAIN_SEED`'s ``bounding_box_train`` (200 identities);
- *validation* (choosing settings): seed :data:`VAL_SEED`'s test split, with the test's structure (152 identities,
  distractors, junk, the same cameras); its training split is a token 4 identities and never used;
- *test*: seed :data:`TRAIN_SEED`'s test split (152 identities, 80 distractor identities, 200 junk crops).

Cameras 1-3 are far (people 24-48 px tall), cameras 4-6 near (96-256 px); every identity is seen by at least one
of each, and within its coarse group of four an identity differs only by a chest code that a far capture cannot
resolve. Protocols, on the validation and on the test set (:func:`protocol_sets`):

- ``standard``: the Market-1501 query / gallery split as written (one query per identity and camera);
- ``far -> near``: every far-camera image of a test identity is a query, the gallery every near-camera image
  (test identities, distractors and junk): native small captures against large ones;
- ``near -> near``: every near-camera image as a query against the same near gallery (the within-scale reference
  of ``far -> near``; only queries with a match in another near camera count);
- ``cross-scale``: the ``near -> near`` queries area-down-sampled to 0.3 of the input height and JPEG-compressed
  (:func:`sisnet.experiments.real_data.cross_scale_images`); no arm trains on that operator.

Every protocol excludes, as Market-1501 does, gallery images of the query's identity from the query's camera, and
counts only queries with at least one match left.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from sisnet.data import ReIDDataset, Record, load_dataset
from sisnet.data.synthetic import generate, make_config
from sisnet.data.transforms import decode_images_cached
from sisnet.evaluation import extract_modes, feature_metrics
from sisnet.experiments.real_data import cross_scale_images

__all__ = ["SIZE", "TRAIN_SEED", "VAL_SEED", "PROTOCOLS", "ScaleSets", "generate_sets", "load_sets", "protocol_sets",
           "evaluate_scale", "is_far", "ids", "group_mates", "code_difference"]

SIZE = "scale"
TRAIN_SEED, VAL_SEED = 0, 1
PROTOCOLS = ("standard", "far -> near", "near -> near", "cross-scale")


def group_mates(seed: int = TRAIN_SEED) -> tuple[Any, Any]:
    """Two identities of coarse group 0 with different chest codes (generator version 4)."""
    from sisnet.data.synthetic import make_identity

    a = make_identity(seed, 1, group=0, fine_code=True)
    b = next(m for m in (make_identity(seed, k, group=0, fine_code=True) for k in range(2, 50)) if m.code != a.code)
    return a, b


def code_difference(heights: Sequence[int], draws: int = 4) -> pd.DataFrame:
    """How much of the chest code a capture keeps, by native person height: two members of one coarse group
    (different codes) rendered by the generator on the same camera, background, pose and noise; the mean absolute
    difference of the stored 128 x 64 images over the code's area (grey levels, mean over ``draws`` renderings)."""
    from sisnet.data.synthetic import camera_model, render_capture
    from sisnet.data.synthetic.people import CODE_BOX

    a, b = group_mates()
    cam = camera_model(TRAIN_SEED, 0, make_config(SIZE))
    rows = []
    for height in heights:
        diffs = []
        for draw in range(draws):
            shots = [render_capture(m, cam, np.random.default_rng(draw), height_px=int(height), view="front")
                     for m in (a, b)]
            ys, xs = np.nonzero(shots[0][1]["mask"])
            ph, cx = ys.max() - ys.min(), (xs.min() + xs.max()) / 2
            top = ys.min() + (0.145 + 0.355 * CODE_BOX[1]) * ph  # the torso runs from 0.145 to 0.50 of the height
            bottom = ys.min() + (0.145 + 0.355 * CODE_BOX[3]) * ph
            rows_, cols = slice(int(top), int(np.ceil(bottom))), slice(int(cx - 0.08 * ph), int(np.ceil(cx + 0.08 * ph)))
            img = [np.asarray(shot[0], dtype=np.float32)[rows_, cols] for shot in shots]
            diffs.append(float(np.abs(img[0] - img[1]).mean()))
        rows.append({"height_px": int(height), "code_difference": float(np.mean(diffs))})
    out = pd.DataFrame(rows)
    out["share_of_nearest"] = out["code_difference"] / out.loc[out["height_px"].idxmax(), "code_difference"]
    return out


def _folders(data_root: str | Path) -> tuple[Path, Path]:
    root = Path(data_root)
    return root / f"synthetic_{SIZE}_seed{TRAIN_SEED}", root / f"synthetic_{SIZE}_seed{VAL_SEED}"


def generate_sets(data_root: str | Path, workers: int = 1, size: str = SIZE) -> tuple[Path, Path]:
    """Generate (or find) the training/test set and the validation set under ``data_root``; their folders."""
    train_dir, val_dir = _folders(data_root)
    if size != SIZE:
        train_dir, val_dir = (p.with_name(p.name.replace(SIZE, size)) for p in (train_dir, val_dir))
    generate(train_dir, size=size, seed=TRAIN_SEED, workers=workers)
    n_val_train = make_config(size).coarse_group_size  # the validation set's training split is never used
    generate(val_dir, size=size, seed=VAL_SEED, workers=workers, num_train_ids=n_val_train)
    return train_dir, val_dir


class ScaleSets:
    """``train``: the training set, whose query / gallery are the VALIDATION set (what :func:`sisnet.engine.fit`
    evaluates on during training); ``test``: the test set; ``far_cameras``: how many cameras are far (camids ``0 .. far_cameras - 1``)."""

    def __init__(self, train: ReIDDataset, test: ReIDDataset, far_cameras: int) -> None:
        self.train, self.test, self.far_cameras = train, test, far_cameras


def load_sets(train_dir: str | Path, val_dir: str | Path) -> ScaleSets:
    """The study's sets from the two generated folders (see the module docstring)."""
    data = load_dataset("synthetic", train_dir)
    val = load_dataset("synthetic", val_dir)
    train = ReIDDataset(name="synthetic-scale", root=data.root, train=data.train, query=val.query,
                        gallery=val.gallery, variant=f"scale-train-val-seed{VAL_SEED}")
    test = ReIDDataset(name="synthetic-scale", root=data.root, train=[], query=data.query, gallery=data.gallery,
                       variant="scale-test")
    return ScaleSets(train, test, _far_cameras(Path(train_dir)))


def _far_cameras(root: Path) -> int:
    """How many cameras of the generated set in ``root`` are far, from its ``meta.json``."""
    import json

    meta = root / "meta.json"
    try:
        return int(json.loads(meta.read_text(encoding="utf-8"))["config"]["far_cameras"])
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{meta} does not record far_cameras ({type(exc).__name__}): the scale study needs a set "
                         f"generated with far and near cameras (size {SIZE!r}); delete the folder to regenerate it."
                         ) from exc


def is_far(records: Sequence[Record], far_cameras: int) -> np.ndarray:
    """Whether each record comes from a far camera (camids ``0 .. far_cameras - 1``)."""
    return np.array([r.camid < far_cameras for r in records], dtype=bool)


def _with_match(query: Sequence[Record], gallery: Sequence[Record]) -> list[Record]:
    """The queries that keep a match once same-identity, same-camera gallery images are excluded."""
    cams: dict[int, set[int]] = {}
    for g in gallery:
        cams.setdefault(g.pid, set()).add(g.camid)
    return [q for q in query if cams.get(q.pid, set()) - {q.camid}]


def protocol_sets(query: Sequence[Record], gallery: Sequence[Record],
                  far_cameras: int) -> dict[str, tuple[list[Record], list[Record]]]:
    """``{protocol: (queries, gallery)}`` of one set (its Market query and gallery folders); see the module
    docstring. ``cross-scale`` has the ``near -> near`` lists (its queries are degraded when features are taken)."""
    pool = list(query) + list(gallery)
    far = is_far(pool, far_cameras)
    people = np.array([r.pid > 0 for r in pool])
    near_gallery = [r for r, f in zip(pool, far) if not f]
    far_q = [r for r, f, p in zip(pool, far, people) if f and p]
    near_q = [r for r, f, p in zip(pool, far, people) if not f and p]
    near_near = _with_match(near_q, near_gallery)
    return {"standard": (_with_match(query, gallery), list(gallery)),
            "far -> near": (_with_match(far_q, near_gallery), near_gallery),
            "near -> near": (near_near, near_gallery),
            "cross-scale": (near_near, near_gallery)}


def _features(model: Any, config: Any, records: Sequence[Record], degraded: bool) -> torch.Tensor:
    size = (config.img_height, config.img_width)
    paths = [r.path for r in records]
    images = cross_scale_images(paths, size) if degraded else decode_images_cached(paths, size, "decode eval")
    return extract_modes(model, [Record(p, 0, 0) for p in paths], config, ("either",), images=images)[0]["either"]


def ids(records: Sequence[Record], key: str) -> np.ndarray:
    return np.array([getattr(r, key) for r in records])


@torch.no_grad()
def protocol_distances(model: Any, config: Any, query: Sequence[Record], gallery: Sequence[Record],
                       far_cameras: int) -> dict[str, tuple[torch.Tensor, torch.Tensor, list, list]]:
    """``{protocol: (query features, gallery features, queries, gallery)}`` of one set, each distinct image's
    features taken once (standard), plus the degraded near queries (cross-scale)."""
    model.eval()
    sets = protocol_sets(query, gallery, far_cameras)
    pool = sorted({r.path: r for r in list(query) + list(gallery)}.values(), key=lambda r: r.path)
    index = {r.path: i for i, r in enumerate(pool)}
    feats = _features(model, config, pool, degraded=False)
    cross_q = sets["cross-scale"][0]
    cross = _features(model, config, cross_q, degraded=True) if cross_q else feats[:0]
    take = lambda recs: feats[[index[r.path] for r in recs]]  # noqa: E731
    out = {}
    for name, (q, g) in sets.items():
        qf = cross if name == "cross-scale" else take(q)
        out[name] = (qf, take(g), q, g)
    return out


def evaluate_scale(model: Any, config: Any, sets: ScaleSets) -> pd.DataFrame:
    """Every evaluation of one trained model: each protocol on the validation and on the test set; rank-1 and mAP
    in %, with the number of queries and gallery images."""
    rows = []
    for set_name, ds in (("validation", sets.train), ("test", sets.test)):
        for protocol, (qf, gf, q, g) in protocol_distances(model, config, ds.query, ds.gallery,
                                                           sets.far_cameras).items():
            res = feature_metrics(qf, gf, ids(q, "pid"), ids(g, "pid"), ids(q, "camid"), ids(g, "camid"),
                                  metric=config.metric)
            rows.append({"set": set_name, "protocol": protocol, "rank1": 100 * res["rank1"], "mAP": 100 * res["mAP"],
                         "n_query": len(q), "n_gallery": len(g)})
    return pd.DataFrame(rows)


@functools.lru_cache(maxsize=2)
def cached_sets(train_dir: str, val_dir: str) -> ScaleSets:
    """:func:`load_sets`, once per process (a worker runs many jobs)."""
    return load_sets(train_dir, val_dir)
