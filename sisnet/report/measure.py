"""Measurements on trained models: the evaluation protocols, scale robustness and CAM consistency across scales.

Evaluation itself is :mod:`sisnet.evaluation`'s (one definition); this module chooses the protocols and
turns their results into per-run tables (percent).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import pandas as pd

from sisnet.evaluation import evaluate_query_scales
from sisnet.report.context import NotebookContext, load
from sisnet.report.runs import TrainedModel
from sisnet.report.tables import PROTOCOL_RERANK, PROTOCOL_STANDARD, GridRun, protocol_cross_scale, runs_frame

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["QUERY_SCALES", "measure_protocols", "native_height_protocols", "scale_robustness", "pearson_rows", "cam_agreement",
           "cam_consistency", "cam_agreement_summary", "cam_mass_on_mask", "cam_on_person", "cams", "pick", "drc_share",
           "cam_on_person_grid", "cam_on_person_summary", "drc_share_table", "activation_share", "outer_columns",
           "backbone_on_person", "coverage_map_share", "edit_queries", "person_reliance", "person_reliance_grid",
           "person_reliance_paired", "PERSON_EDITS", "cell_person_share", "cam_cell_sources",
           "triplet_diagnosis", "PROTOCOL_NO_DISTRACTORS", "CROSS_SCALE", "HEIGHT_EDGES", "split_scale_bins"]

#: Query resolution factors of the scale-robustness study (notebook 07).
QUERY_SCALES: tuple[float, ...] = (1.0, 0.75, 0.5, 0.375, 0.25)
#: Table 2's scale protocols (notebook 03's ``cross_scale`` and ``height_edges`` parameters, whose defaults a test
#: holds to these, and ``python -m sisnet.reproduce --other-view``): the query factor of the cross-scale protocol,
#: and the native query-height bin edges in pixels.
CROSS_SCALE: float = 0.5
HEIGHT_EDGES: tuple[float, float] = (48, 96)
#: The labels of :func:`native_height_protocols` start with these (:func:`split_scale_bins` keys on them).
_QUERY_HEIGHT, _NATIVE_CROSS = "query height", "native cross-scale"


def _percent(metrics: Mapping[str, float]) -> dict[str, float]:
    return {k: float(metrics[k]) * 100.0 for k in ("rank1", "rank5", "rank10", "mAP", "mINP") if k in metrics}

def native_height_protocols(ds, edges: Sequence[float] = HEIGHT_EDGES) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Protocols on *native* capture heights (``scales.csv``), which do not reuse the training's down-scaling.

    For ``edges = (lo, hi)``: queries in each height bin (< lo, lo-hi, >= hi px) against the whole gallery, and
    a native cross-scale protocol: queries captured below ``lo`` px against the gallery images captured at ``hi``
    px or more. Returns ``{protocol: (query mask, gallery mask)}``; ``{}`` when the dataset has no scale sidecar.
    """
    scales = ds.scales()
    if scales is None:
        return {}
    lo, hi = (float(e) for e in edges)
    if not 0 < lo < hi:
        raise ValueError(f"height edges {edges!r} must be two increasing positive pixel heights, e.g. (48, 96).")
    qh = scales.loc[scales["subset"] == "query", "height_px"].to_numpy()
    gh = scales.loc[scales["subset"] == "gallery", "height_px"].to_numpy()
    everything = np.ones(len(gh), dtype=bool)
    return {
        f"{_QUERY_HEIGHT} < {lo:g} px": (qh < lo, everything),
        f"{_QUERY_HEIGHT} {lo:g}-{hi:g} px": ((qh >= lo) & (qh < hi), everything),
        f"{_QUERY_HEIGHT} >= {hi:g} px": (qh >= hi, everything),
        f"{_NATIVE_CROSS} (query < {lo:g} px, gallery >= {hi:g} px)": (qh < lo, gh >= hi),
    }


def split_scale_bins(per_run: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(the paper's protocols, the native-height ones)`` of a :func:`measure_protocols` frame: Table 2 summarises
    the first (standard, cross-scale, re-ranking); ``scale_bins.csv`` holds the second."""
    native = per_run["protocol"].str.startswith((_QUERY_HEIGHT, _NATIVE_CROSS))
    # fresh row numbers: a kept slice's index would be written as an unnamed first column of the CSV
    return per_run[~native].reset_index(drop=True), per_run[native].reset_index(drop=True)


def measure_protocols(
    ctx: NotebookContext,
    runs: Sequence[GridRun],
    *,
    cross_scale: float | None = CROSS_SCALE,
    rerank: bool = False,
    height_edges: Sequence[float] | None = None,
) -> pd.DataFrame:
    """Per-run results under the standard protocol (from the history: last evaluation, either-scale),
    the cross-scale protocol (queries degraded by ``cross_scale``; ``None`` skips it), with ``rerank`` the
    standard protocol with k-reciprocal re-ranking, and with ``height_edges`` the native-height protocols
    (:func:`native_height_protocols`).

    Columns as :func:`runs_frame` (percent) plus ``num_valid_queries``; one row per (run, protocol).
    """
    from sisnet.evaluation import evaluate_subsets

    from sisnet.runs import load_model

    frames = [runs_frame(runs)]
    extra = []
    if cross_scale is not None:
        if not 0 < float(cross_scale) <= 1:
            raise ValueError(f"cross_scale={cross_scale!r} must be in (0, 1] (e.g. 0.5 = half resolution queries).")
        extra.append((protocol_cross_scale(float(cross_scale)), float(cross_scale), False))
    if rerank:
        extra.append((PROTOCOL_RERANK, 1.0, True))
    subsets = native_height_protocols(load(ctx), height_edges) if height_edges is not None else {}
    if extra or subsets:
        ds = load(ctx)
        caches: dict[tuple[int, int], dict] = {}
        rows = []
        for run in runs:
            model, config = load_model(run.run_dir)
            cache = caches.setdefault((config.img_height, config.img_width), {})
            base = {"loss": run.loss, "method": run.method, "seed": run.seed, "mode": "either"}
            for use_rerank in sorted({rr for _, _, rr in extra}):
                scales = [qs for _, qs, rr in extra if rr == use_rerank]
                res = evaluate_query_scales(model, ds, config, scales, rerank=use_rerank, image_cache=cache)
                for protocol, qs, rr in extra:
                    if rr == use_rerank:
                        rows.append({**base, "protocol": protocol, **_percent(res[qs]), "epoch": int(config.epochs),
                                     "run_id": run.run_id, "num_valid_queries": res[qs]["num_valid_queries"]})
            for protocol, res in evaluate_subsets(model, ds, config, subsets, image_cache=cache).items():
                rows.append({**base, "protocol": protocol, **_percent(res), "epoch": int(config.epochs),
                             "run_id": run.run_id, "num_valid_queries": res["num_valid_queries"]})
        frames.append(pd.DataFrame(rows))
    return pd.concat(frames, ignore_index=True)

#: Label of the diagnostic protocol of :func:`triplet_diagnosis`: the standard one with the gallery's distractors
#: (pid 0: images of identities no query has) removed.
PROTOCOL_NO_DISTRACTORS = "standard, gallery without distractors"


def triplet_diagnosis(ctx: NotebookContext, runs: Sequence[GridRun], method: str = "Baseline") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Why adding the triplet loss lowers ``method`` here: ``(per_run, paired)``.

    ``per_run``: for each of ``method``'s runs in ``runs`` (both losses, every seed) rank-1 / mAP under the standard
    protocol and with the gallery's distractors removed (:data:`PROTOCOL_NO_DISTRACTORS`; both scored by
    :func:`sisnet.evaluation.evaluate_subsets` on the same features), and the ID and triplet loss terms of its
    first and last training epoch (from the run's history). ``paired``: :func:`sisnet.stats.paired_table` of
    S.+T. - S. under both protocols. If the gap is the distractors' doing, it closes without them.
    """
    from sisnet import paper
    from sisnet.evaluation import evaluate_subsets
    from sisnet.runs import load_model
    from sisnet.stats import Comparison, paired_table

    ds = load(ctx)
    every_query = np.ones(len(ds.query), dtype=bool)
    subsets = {PROTOCOL_STANDARD: (every_query, np.ones(len(ds.gallery), dtype=bool)),
               PROTOCOL_NO_DISTRACTORS: (every_query, np.array([r.pid != 0 for r in ds.gallery]))}
    rows, cache = [], {}
    for run in (r for r in runs if r.method == method):
        model, config = load_model(run.run_dir)
        first, last = run.history["epochs"][0], run.history["epochs"][-1]
        losses = {"loss_id_first": first["loss_id"], "loss_id_last": last["loss_id"],
                  "loss_triplet_first": first["loss_triplet"], "loss_triplet_last": last["loss_triplet"]}
        for protocol, res in evaluate_subsets(model, ds, config, subsets, image_cache=cache).items():
            rows.append({"loss": run.loss, "method": run.method, "seed": run.seed, "protocol": protocol,
                         **_percent(res), "num_valid_queries": res["num_valid_queries"], **losses,
                         "run_id": run.run_id})
    per_run = pd.DataFrame(rows)
    if not len(per_run):
        raise ValueError(f"triplet_diagnosis: no run of {method!r} among the {len(runs)} runs given.")
    # the paper's own claim for this method (sisnet.paper.CLAIMS), not a second definition of it
    comparison = [Comparison(*c) for c in paper.CLAIMS if c[0] == f"{method}: S.+T. - S."]
    return per_run, paired_table(per_run, comparison)


def scale_robustness(models: Mapping[str, TrainedModel], ds, query_scales: Sequence[float] = QUERY_SCALES) -> pd.DataFrame:
    """Rank-1/5/10, mAP, mINP (percent, either-scale) for each model and query resolution factor.

    Queries are degraded (down-sampled by the factor, up-sampled back to the input size); the
    gallery stays at full resolution. Columns: ``method``, ``loss``, ``seed``, ``query_scale``,
    the metrics, ``num_valid_queries``.
    """
    bad = [s for s in query_scales if not 0 < float(s) <= 1]
    if bad:
        raise ValueError(f"query_scales {bad} must lie in (0, 1] (1 = full resolution).")
    rows, caches = [], {}
    for method, tm in models.items():
        cache = caches.setdefault((tm.config.img_height, tm.config.img_width), {})
        res = evaluate_query_scales(tm.model, ds, tm.config, [float(s) for s in query_scales], image_cache=cache)
        for s in query_scales:
            rows.append({"method": method, "loss": tm.loss, "seed": tm.seed, "query_scale": float(s),
                         **_percent(res[float(s)]), "num_valid_queries": res[float(s)]["num_valid_queries"]})
    return pd.DataFrame(rows)

def pick(items: Sequence[Any], n: int, seed: int) -> list[Any]:
    rng = np.random.default_rng(seed)
    n = min(n, len(items))
    return [items[i] for i in sorted(rng.choice(len(items), size=n, replace=False))]

def pearson_rows(a: "torch.Tensor", b: "torch.Tensor") -> "torch.Tensor":
    """Pearson correlation of each pair of maps: ``a``, ``b`` (N, H, W) -> (N,) (NaN for a constant map)."""
    import torch

    x = a.flatten(1).double()
    y = b.flatten(1).double()
    x = x - x.mean(1, keepdim=True)
    y = y - y.mean(1, keepdim=True)
    den = x.norm(dim=1) * y.norm(dim=1)
    corr = (x * y).sum(1) / den
    return torch.where(den > 0, corr, torch.full_like(corr, float("nan"))).float()

def cams(model: Any, x: "torch.Tensor", class_idx: "torch.Tensor | int | None") -> tuple["torch.Tensor", "torch.Tensor"]:
    """Raw CAMs (N, h, w) for images ``x`` (N, 3, H, W) and the classes used (N,).

    ``class_idx=None`` uses each image's predicted class (argmax of the logits): the identities of
    query images are not classes of the classifier. The model must be in eval mode.
    """
    import torch

    from sisnet.cam import raw_cam

    with torch.no_grad():
        out = model(x)
        if class_idx is None:
            class_idx = out.logits.argmax(1)
        cam = raw_cam(model, out.feature_map, class_idx)
    idx = class_idx if isinstance(class_idx, torch.Tensor) else torch.full((x.shape[0],), int(class_idx))
    return cam, idx

def cam_agreement(cam_a: "torch.Tensor", cam_b: "torch.Tensor", normalization: str = "minmax") -> tuple["torch.Tensor", "torch.Tensor"]:
    """Per-image agreement of two CAM batches (N, h_a, w_a), (N, h_b, w_b): ``(pearson (N,), mse (N,))``.

    Both maps are resized to the larger size (bilinear) and normalised (min-max by default), as in
    the DRC loss; MSE is the DRC loss's per-image term.
    """
    from sisnet.cam import normalize_cam, resize_to_common

    a, b = resize_to_common(cam_a.float(), cam_b.float())
    a, b = normalize_cam(a, normalization), normalize_cam(b, normalization)
    return pearson_rows(a, b), (a - b).pow(2).flatten(1).mean(1)

def _sample_queries(ds, n_images: int, seed: int) -> list:
    """``n_images`` query images (test identities), the same for every model (seeded)."""
    if n_images < 1:
        raise ValueError(f"n_images={n_images} must be >= 1.")
    return pick(ds.query, n_images, seed)


def _views(records, cfg, scale: float = 1.0) -> "torch.Tensor":
    """The full-scale input views of ``records`` as the evaluation feeds them (queries degraded by ``scale``)."""
    import torch

    from sisnet.data.transforms import EvalTransform, decode_images

    imgs = decode_images([r.path for r in records], (cfg.img_height, cfg.img_width))
    return torch.stack([EvalTransform(cfg.view_spec(), float(scale))(im)[0] for im in imgs])


def cam_consistency(
    models: Mapping[str, TrainedModel],
    ds,
    query_scales: Sequence[float] = (0.75, 0.5, 0.375, 0.25),
    *,
    n_images: int = 32,
    seed: int = 0,
) -> pd.DataFrame:
    """CAM consistency across scales on query images (identities never seen in training).

    For ``n_images`` query images (the same ones for every model), the CAM of the class the model
    predicts at full resolution is computed for the full view and for the view degraded by each
    factor (as in the cross-scale protocol); :func:`cam_agreement` gives the per-image Pearson
    correlation and MSE. Columns: ``method``, ``loss``, ``seed``, ``query_scale``, ``corr_mean``,
    ``corr_std``, ``mse_mean``, ``mse_std``, ``n_images``.
    """
    records = _sample_queries(ds, n_images, seed)
    rows = []
    for method, tm in models.items():
        cam_full, cls = cams(tm.model, _views(records, tm.config), None)
        for s in query_scales:
            cam_s, _ = cams(tm.model, _views(records, tm.config, s), cls)
            corr, mse = cam_agreement(cam_full, cam_s)
            rows.append({"method": method, "loss": tm.loss, "seed": tm.seed, "query_scale": float(s),
                         "corr_mean": float(np.nanmean(corr.numpy())), "corr_std": float(np.nanstd(corr.numpy())),
                         "mse_mean": float(mse.mean()), "mse_std": float(mse.std(unbiased=False)),
                         "n_images": len(records)})
    return pd.DataFrame(rows)


def cam_agreement_summary(per_image: pd.DataFrame) -> pd.DataFrame:
    """Per model: mean and std of ``corr`` and ``mse`` over images (e.g. :func:`sisnet.report.fig3_cam`'s table),
    and ``n_images``; models in the paper's order."""
    from sisnet import paper

    g = per_image.groupby("method", sort=False)
    out = g[["corr", "mse"]].agg(["mean", "std"])
    out.columns = [f"{m}_{stat}" for m, stat in out.columns]
    out["n_images"] = g.size()
    order = [m for m in paper.GRID_METHODS if m in out.index] + [m for m in out.index if m not in paper.GRID_METHODS]
    return out.loc[order]


def cam_mass_on_mask(cam: "torch.Tensor", mask: "torch.Tensor") -> "torch.Tensor":
    """Share of each CAM's mass that falls inside ``mask``: ``cam`` (N, h, w), ``mask`` (N, H, W) bool -> (N,).

    The map is resized to the mask's size (bilinear) and min-max normalised, as the DRC loss treats it, so the
    share is that of the map's *relative* activation; a uniform map scores the mask's area fraction.
    """
    import torch

    from sisnet.cam import normalize_cam, resize_to_common

    m = mask.to(torch.float32)
    c, _ = resize_to_common(cam.float(), m, size=tuple(m.shape[-2:]))
    c = normalize_cam(c, "minmax").flatten(1)
    total = c.sum(1)
    share = (c * m.flatten(1)).sum(1) / total.clamp_min(1e-12)
    return torch.where(total > 0, share, m.flatten(1).mean(1))


def activation_share(model: Any, x: "torch.Tensor", mask: "torch.Tensor") -> "torch.Tensor":
    """Share of ``model``'s activation map on ``mask`` (N,): the channel sum of the ReLU'd last feature map, i.e.
    where the backbone responds whatever the class, scored like a CAM (:func:`cam_mass_on_mask`)."""
    import torch

    with torch.no_grad():
        fmap = model(x).feature_map
    return cam_mass_on_mask(fmap.float().clamp_min(0).sum(1), mask)


def outer_columns(shape_hw: tuple[int, int], fraction: float = 0.25) -> "torch.Tensor":
    """Bool mask (H, W) of the left and right ``fraction`` of the width each (a uniform map puts ``2 * fraction``
    of its mass there): where the background lies in a pedestrian crop whatever the pose."""
    import torch

    h, w = shape_hw
    k = max(1, int(round(w * fraction)))
    m = torch.zeros(h, w, dtype=torch.bool)
    m[:, :k] = True
    m[:, w - k:] = True
    return m


def cam_on_person(models: Mapping[str, TrainedModel], ds, *, n_images: int = 64, seed: int = 0) -> pd.DataFrame:
    """How much of each model's CAM lies on the person, on query images (test identities).

    For ``n_images`` query images (the same for every model) the CAM of the class the model predicts is
    compared with the image's person mask (``ds.person_masks``; the synthetic generator writes them). Columns:
    ``method``, ``loss``, ``seed``, ``person_share_mean`` / ``_std`` (see :func:`cam_mass_on_mask`),
    ``mask_area_mean`` (what a uniform map would score: the person's share of the image), ``activation_share_mean``
    (:func:`activation_share`: the same for the class-free activation map), ``outer_share_mean`` (the CAM's share
    in the :func:`outer_columns`; a uniform map scores ``outer_area``), ``coverage_map_share_mean``
    (:func:`coverage_map_share`: what a map that follows the person at the CAM's own size scores) and ``n_images``.
    Raises ``ValueError`` when the dataset has no person masks.
    """
    import torch

    records = _sample_queries(ds, n_images, seed)
    rows = []
    for method, tm in models.items():
        cfg = tm.config
        m = torch.from_numpy(_person_masks(ds, records, cfg))
        x = _views(records, cfg)
        cam, _ = cams(tm.model, x, None)
        share = cam_mass_on_mask(cam, m).numpy()
        outer = outer_columns(tuple(m.shape[-2:]))
        rows.append({"method": method, "loss": tm.loss, "seed": tm.seed, "person_share_mean": float(share.mean()),
                     "person_share_std": float(share.std()), "mask_area_mean": float(m.float().mean()),
                     "activation_share_mean": float(activation_share(tm.model, x, m).mean()),
                     "outer_share_mean": float(cam_mass_on_mask(cam, outer.expand_as(m)).mean()),
                     "outer_area": float(outer.float().mean()),
                     "coverage_map_share_mean": float(coverage_map_share(m, tuple(cam.shape[-2:])).mean()),
                     "n_images": len(records)})
    return pd.DataFrame(rows)


def coverage_map_share(mask: "torch.Tensor", map_hw: tuple[int, int]) -> "torch.Tensor":
    """The reference a map of ``map_hw`` cells can be held to: the :func:`cam_mass_on_mask` share (N,) of the map
    whose every cell equals the fraction of it the person covers (``mask`` (N, H, W) bool, area-averaged). A CAM
    that follows the person's silhouette as closely as its cells allow, in proportion, scores this; a sharper one
    (mass only on the cells the person fills) scores more, a uniform one the person's area."""
    import torch.nn.functional as F

    coverage = F.adaptive_avg_pool2d(mask.float()[:, None], tuple(map_hw))[:, 0]
    return cam_mass_on_mask(coverage, mask)


#: The query edits of :func:`person_reliance`, in its table's order.
PERSON_EDITS: tuple[str, ...] = ("original", "background swapped", "background flat", "person removed")
#: The flat background of the "background flat" edit (uint8 grey).
FLAT_GREY: int = 128


def edit_queries(images: "torch.Tensor", masks: "torch.Tensor", pids: Sequence[int], seed: int = 0) -> dict[str, "torch.Tensor"]:
    """The query images of :func:`person_reliance` under each of :data:`PERSON_EDITS`, made with the person masks.

    ``images`` uint8 (N, 3, H, W), ``masks`` bool (N, H, W) (True on the person), ``pids`` (N,). Returns one
    uint8 (N, 3, H, W) tensor per edit:

    - ``"original"``: unchanged;
    - ``"person removed"``: the person's pixels painted with the median colour of the image's own background,
      the background kept (what the model can still tell from the background alone);
    - ``"background swapped"``: the person's pixels on the background of another image, drawn (``seed``) among
      images of *other* identities, whose own person is painted out as above (a flat patch of its background
      colour is what remains of it);
    - ``"background flat"``: the person's pixels on a flat grey (:data:`FLAT_GREY`).

    Written here because no library edits images by a per-image mask and donor; a few tensor ``where`` calls.
    """
    import torch

    pids_arr = np.asarray(pids)
    n = len(pids_arr)
    if images.dim() != 4 or masks.dim() != 3 or images.shape[0] != n or masks.shape[0] != n \
            or tuple(images.shape[-2:]) != tuple(masks.shape[-2:]):
        raise ValueError(f"images (N, 3, H, W), masks (N, H, W) and pids (N,) must agree; got {tuple(images.shape)}, "
                         f"{tuple(masks.shape)} and {n} pids.")
    if len(np.unique(pids_arr)) < 2:
        raise ValueError("Swapping backgrounds needs images of at least two identities.")
    person = masks.bool()[:, None]  # (N, 1, H, W)
    removed = images.clone()
    for i in range(n):
        background = images[i][:, ~person[i, 0]]
        if background.shape[1] == 0:
            raise ValueError(f"Image {i}'s person mask covers the whole image: there is no background to edit.")
        removed[i] = torch.where(person[i], background.median(dim=1).values[:, None, None], images[i])
    rng = np.random.default_rng(seed)
    donors = torch.tensor([rng.choice(np.flatnonzero(pids_arr != p)) for p in pids_arr])
    return {
        "original": images,
        "background swapped": torch.where(person, images, removed[donors]),
        "background flat": torch.where(person, images, torch.full_like(images, FLAT_GREY)),
        "person removed": removed,
    }


def person_reliance(models: Mapping[str, TrainedModel], ds, *, seed: int = 0) -> pd.DataFrame:
    """Does each model identify the person or the background? Retrieval of every query (test identities) against
    the unchanged gallery, with the queries edited by :func:`edit_queries` (the person masks of the synthetic set).

    One row per model and edit (:data:`PERSON_EDITS`): ``method``, ``loss``, ``seed`` (the model's), ``query``
    (the edit), ``rank1`` and ``mAP`` (%, standard protocol, either-scale features), ``n_queries``. A model that
    identifies the person keeps its rank-1 when the background is swapped and loses it when the person is
    removed; one that uses the background does the opposite. ``seed`` draws the donor backgrounds.
    Raises ``ValueError`` when the dataset has no person masks.
    """
    import torch

    from sisnet.evaluation import extract_features, feature_metrics
    from sisnet.data.transforms import decode_images_cached

    rows = []
    edits_by_size: dict[tuple[int, int], dict[str, "torch.Tensor"]] = {}  # the models of a grid share one size
    for method, tm in models.items():
        cfg = tm.config
        size = (cfg.img_height, cfg.img_width)
        if size not in edits_by_size:
            masks = torch.from_numpy(_person_masks(ds, ds.query, cfg))
            queries = decode_images_cached([r.path for r in ds.query], size, "decode query")
            edits_by_size[size] = edit_queries(queries, masks, [r.pid for r in ds.query], seed)
        gallery = decode_images_cached([r.path for r in ds.gallery], size, "decode gallery")
        gf, gp, gc = extract_features(tm.model, ds.gallery, cfg, images=gallery)
        for name in PERSON_EDITS:
            qf, qp, qc = extract_features(tm.model, ds.query, cfg, images=edits_by_size[size][name])
            m = _percent(feature_metrics(qf, gf, qp, gp, qc, gc, metric=cfg.metric))
            rows.append({"method": method, "loss": tm.loss, "seed": tm.seed, "query": name,
                         "rank1": m["rank1"], "mAP": m["mAP"], "n_queries": len(qp)})
    return pd.DataFrame(rows)


def person_reliance_grid(ctx: NotebookContext, *, seeds: Sequence[int], cell_seed: int,
                         losses: Sequence[str] | None = None, methods: Sequence[str] | None = None,
                         n_cell_images: int = 16) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`person_reliance` for every configuration (``methods`` x ``losses``, default the whole grid) and seed
    of ``seeds``, and :func:`cam_cell_sources` (``n_cell_images`` query images) for those of ``cell_seed``, the same
    images for every model; returns the two tables."""
    from sisnet import paper
    from sisnet.report.runs import load_models

    ds = load(ctx)
    reliance, sources = [], []
    for loss in losses or paper.LOSS_TYPES:
        for seed in dict.fromkeys([*seeds, cell_seed]):
            models = load_models(ctx, loss=loss, seed=seed, methods=methods or paper.GRID_METHODS)
            if seed in seeds:
                reliance.append(person_reliance(models, ds))
            if seed == cell_seed:
                sources.append(cam_cell_sources(models, ds, n_images=n_cell_images))
    return pd.concat(reliance, ignore_index=True), pd.concat(sources, ignore_index=True)


def person_reliance_paired(reliance: pd.DataFrame) -> pd.DataFrame:
    """What each edit of :func:`person_reliance` costs (unchanged minus edited, points), S.+T. against S. for each
    of the paper's methods, paired by seed: :func:`sisnet.stats.paired_table` with the edit as its ``protocol`` and
    ``rank1_cost`` / ``mAP_cost`` as the metrics. A positive difference: the triplet-trained model loses more."""
    from sisnet import paper
    from sisnet.stats import Comparison, paired_table

    keys = ["loss", "method", "seed"]
    original = reliance[reliance["query"] == "original"].set_index(keys)[["rank1", "mAP"]]
    edited = reliance[reliance["query"] != "original"].set_index(keys)
    cost = edited[["query"]].copy()
    for m in ("rank1", "mAP"):
        cost[f"{m}_cost"] = original[m].reindex(edited.index).to_numpy() - edited[m].to_numpy()
    per_run = cost.reset_index().rename(columns={"query": "protocol"})
    comparisons = [Comparison(*c) for c in paper.CLAIMS if c[1] == "S.+T. - S."]
    return paired_table(per_run, comparisons, metrics=("rank1_cost", "mAP_cost"))


def cell_person_share(model: Any, x: "torch.Tensor", mask: "torch.Tensor") -> "torch.Tensor":
    """Where each cell of the CAM takes its value from: for every cell (i, j) of the last feature map, the share of
    the input-gradient mass ``|d cam(i, j) / d x|`` (summed over colour channels) that falls on ``mask``, per image,
    then averaged over the images -> (h, w). ``x`` (N, 3, H, W) as the evaluation feeds it, ``mask`` (N, H, W)
    bool; the CAM is that of each image's predicted class (:func:`cams`), the model in eval mode.

    A cell whose value is computed from the pixels under it scores about its own footprint's person coverage
    (high on the body, low in the outer columns); a cell that sees the whole crop scores the same wherever it lies.
    """
    import torch

    from sisnet.cam import raw_cam

    x = x.detach().clone().requires_grad_(True)
    m = mask.to(torch.float32)
    with torch.enable_grad():
        out = model(x)
        cam = raw_cam(model, out.feature_map, out.logits.argmax(1))  # (N, h, w)
        h, w = cam.shape[-2:]
        share = torch.empty(h, w)
        for i in range(h):
            for j in range(w):
                (grad,) = torch.autograd.grad(cam[:, i, j].sum(), x, retain_graph=True)
                mass = grad.abs().sum(1)  # (N, H, W); each image's cell depends on that image only
                share[i, j] = ((mass * m).sum((1, 2)) / mass.sum((1, 2)).clamp_min(1e-12)).mean()
    return share


def cam_cell_sources(models: Mapping[str, TrainedModel], ds, *, n_images: int = 16, seed: int = 0) -> pd.DataFrame:
    """:func:`cell_person_share` per model on ``n_images`` query images (test identities, the same for every
    model), summarised: one row per model with ``method``, ``loss``, ``seed``, ``map_hw``, ``cell_share_min`` /
    ``_max`` / ``_mean`` over the cells, ``outer_cell_share`` (the cells of the map's :func:`outer_columns`, over
    background in a pedestrian crop) and ``inner_cell_share`` (the others), ``mask_area_mean`` (the person's share
    of the image: what a cell that weighs every pixel alike scores) and ``n_images``."""
    import torch

    records = _sample_queries(ds, n_images, seed)
    rows = []
    for method, tm in models.items():
        m = torch.from_numpy(_person_masks(ds, records, tm.config))
        share = cell_person_share(tm.model, _views(records, tm.config), m)
        outer = outer_columns(tuple(share.shape))
        rows.append({"method": method, "loss": tm.loss, "seed": tm.seed, "map_hw": "{}x{}".format(*share.shape),
                     "cell_share_min": float(share.min()), "cell_share_max": float(share.max()),
                     "cell_share_mean": float(share.mean()), "outer_cell_share": float(share[outer].mean()),
                     "inner_cell_share": float(share[~outer].mean()) if (~outer).any() else float("nan"),
                     "mask_area_mean": float(m.float().mean()), "n_images": len(records)})
    return pd.DataFrame(rows)


def _person_masks(ds, records, cfg) -> np.ndarray:
    masks = ds.person_masks(records, (cfg.img_height, cfg.img_width))
    if masks is None:
        raise ValueError(f"{ds.name} at {ds.root} has no person masks ({ds.root}/person_masks/); CAM mass on the "
                         "person can only be measured on data that records them, such as the synthetic set "
                         "(regenerate it with the current sisnet.data.synthetic if it predates the masks).")
    return masks


def backbone_on_person(config: Any, ds, *, n_images: int = 64, seed: int = 0) -> pd.DataFrame:
    """The reference for :func:`cam_on_person`'s ``activation_share_mean``: the same query images through the
    backbone as ``config`` builds it *before* any ReID training (its starting weights, e.g. ImageNet's). One row:
    ``weights`` (where they came from), ``activation_share_mean``, ``mask_area_mean``, ``n_images``."""
    import torch

    from sisnet.model import build_model

    records = _sample_queries(ds, n_images, seed)
    m = torch.from_numpy(_person_masks(ds, records, config))
    model = build_model(config, ds.num_train_pids).eval()
    share = activation_share(model, _views(records, config), m)
    return pd.DataFrame([{"weights": model.weights_info["source"], "activation_share_mean": float(share.mean()),
                          "mask_area_mean": float(m.float().mean()), "n_images": len(records)}])


def drc_share(model: Any, config: Any, ds, *, batches: int = 4) -> dict[str, float]:
    """The DRC term's share of a trained SiSNet+DRC model's loss and of the gradient on the last feature maps.

    On ``batches`` training batches (the run's own sampler, epoch 1; BatchNorm in eval mode so nothing changes)
    the loss terms of :func:`sisnet.losses.compute_losses` are computed and each term's gradient with respect to
    both branches' last feature maps is taken separately. Returns the means over the batches of
    ``loss_share`` = DRC / total and ``grad_share`` = ||grad DRC|| / (||grad DRC|| + ||grad (ID + triplet)||),
    plus the mean loss terms.
    """
    import torch

    from sisnet.engine import build_train_loader, config_losses, device_views

    if not (config.siamese and config.drc):
        raise ValueError("drc_share needs a SiSNet+DRC model (siamese=True, drc=True).")
    loader = build_train_loader(config, ds)
    loader.sampler.set_epoch(1)
    device = next(model.parameters()).device
    model.eval()
    rows = []
    for i, batch in enumerate(loader):
        if i >= batches:
            break
        full, small = device_views(batch, config, device)
        targets = batch[2].to(device)
        out_f, out_s = model.forward_pair(full, small)
        losses = config_losses(model, out_f, out_s, targets, config)
        maps = [out_f.feature_map, out_s.feature_map]
        g_drc = torch.autograd.grad(losses["drc"], maps, retain_graph=True, allow_unused=True)
        g_rest = torch.autograd.grad(losses["id"] + losses["triplet"], maps, allow_unused=True)

        def norm(gs) -> float:
            return float(torch.sqrt(sum((g.float() ** 2).sum() for g in gs if g is not None)))

        nd, nr = norm(g_drc), norm(g_rest)
        drc, total = float(losses["drc"].detach()), float(losses["total"].detach())
        rows.append({"loss_drc": drc, "loss_total": total, "loss_share": drc / max(total, 1e-12),
                     "grad_share": nd / max(nd + nr, 1e-12)})
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def cam_on_person_grid(ctx: NotebookContext, *, seeds: Sequence[int], losses: Sequence[str] | None = None,
                       methods: Sequence[str] | None = None, n_images: int = 64) -> pd.DataFrame:
    """:func:`cam_on_person` for every configuration (``methods`` x ``losses``, default the whole grid) and seed,
    on the same ``n_images`` query images (test identities) for every model; one row per configuration and seed."""
    from sisnet import paper
    from sisnet.report.runs import load_models

    ds = load(ctx)
    frames = []
    for loss in losses or paper.LOSS_TYPES:
        for seed in seeds:
            models = load_models(ctx, loss=loss, seed=seed, methods=methods or paper.GRID_METHODS)
            frames.append(cam_on_person(models, ds, n_images=n_images, seed=0))
    return pd.concat(frames, ignore_index=True)


def cam_on_person_summary(per_run: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds of :func:`cam_on_person_grid`'s share, per loss and method, with the uniform-map
    share (``mask_area_mean``) beside it, and the means of the activation-map and outer-column shares."""
    g = per_run.groupby(["loss", "method"], sort=False)
    out = g["person_share_mean"].agg(["mean", "std"]).rename(columns={"mean": "person_share", "std": "person_share_std"})
    out["uniform_map_share"] = g["mask_area_mean"].mean()
    if "activation_share_mean" in per_run:
        out["activation_share"] = g["activation_share_mean"].mean()
        out["outer_share"] = g["outer_share_mean"].mean()
        out["uniform_outer_share"] = g["outer_area"].mean()
    if "coverage_map_share_mean" in per_run:
        out["coverage_map_share"] = g["coverage_map_share_mean"].mean()
    out["n_seeds"] = g["seed"].nunique()
    return out.reset_index()


def drc_share_table(trained: TrainedModel, history: Mapping[str, Any], ds, *, batches: int = 4) -> pd.DataFrame:
    """One row for a trained SiSNet+DRC model: its ``drc_weight``, the DRC share of the loss in the last training
    epoch (from ``history``) and :func:`drc_share` on ``batches`` training batches."""
    last = history["epochs"][-1]
    return pd.DataFrame([{"drc_weight": trained.config.drc_weight,
                          "loss_share_last_epoch": last["loss_drc"] / last["loss_total"],
                          **drc_share(trained.model, trained.config, ds, batches=batches)}])
