"""CAM measures on trained models: how a CAM agrees with itself across query scales, and how much of it lies on
the person (against the references a uniform map, the untrained backbone and the person's coverage score).

The CAM is :func:`sisnet.cam.raw_cam` (one definition); the person masks are the synthetic set's
(``ds.person_masks``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import pandas as pd

from sisnet.report.context import NotebookContext, load
from sisnet.report.runs import TrainedModel

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["pick", "pearson_rows", "cams", "cam_agreement", "sample_queries", "query_views", "person_masks",
           "cam_consistency", "cam_agreement_summary", "cam_mass_on_mask", "activation_share", "outer_columns",
           "cam_on_person", "coverage_map_share", "backbone_on_person", "cam_on_person_grid", "cam_on_person_summary",
           "MAP_KINDS", "activation_map", "cross_camera_matches", "two_view_maps", "two_view_agreement", "two_view_agreement_grid",
           "two_view_agreement_summary"]

#: The maps :func:`two_view_agreement` compares: the CAM of the class predicted for the full view (what the DRC
#: loss compares, but a test identity is no class of the classifier), the class-free activation map (channel sum
#: of the ReLU'd last feature map) and the similarity map to the query's matched gallery image
#: (:func:`sisnet.cam.similarity_map`); the last two are defined for unseen identities.
MAP_KINDS = ("cam", "activation", "similarity")


def pick(items: Sequence[Any], n: int, seed: int) -> list[Any]:
    """``n`` of ``items`` (all when fewer), drawn without replacement by ``seed``, in their order."""
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


def sample_queries(ds, n_images: int, seed: int) -> list:
    """``n_images`` query images (test identities), the same for every model (seeded)."""
    if n_images < 1:
        raise ValueError(f"n_images={n_images} must be >= 1.")
    return pick(ds.query, n_images, seed)


def query_views(records, cfg, scale: float = 1.0) -> "torch.Tensor":
    """The full-scale input views of ``records`` as the evaluation feeds them (queries degraded by ``scale``)."""
    import torch

    from sisnet.data.transforms import EvalTransform, decode_images

    imgs = decode_images([r.path for r in records], (cfg.img_height, cfg.img_width))
    return torch.stack([EvalTransform(cfg.view_spec(), float(scale))(im)[0] for im in imgs])


def person_masks(ds, records, cfg) -> np.ndarray:
    masks = ds.person_masks(records, (cfg.img_height, cfg.img_width))
    if masks is None:
        raise ValueError(f"{ds.name} at {ds.root} has no person masks ({ds.root}/person_masks/); CAM mass on the "
                         "person can only be measured on data that records them, such as the synthetic set "
                         "(regenerate it with the current sisnet.data.synthetic if it predates the masks).")
    return masks


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
    records = sample_queries(ds, n_images, seed)
    rows = []
    for method, tm in models.items():
        cam_full, cls = cams(tm.model, query_views(records, tm.config), None)
        for s in query_scales:
            cam_s, _ = cams(tm.model, query_views(records, tm.config, s), cls)
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
    return cam_mass_on_mask(activation_map(fmap), mask)


def activation_map(feature_map: "torch.Tensor") -> "torch.Tensor":
    """The class-free activation map (N, h, w) of a last feature map (N, C, h, w): the channel sum of its ReLU."""
    return feature_map.float().clamp_min(0).sum(1)


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

    records = sample_queries(ds, n_images, seed)
    rows = []
    for method, tm in models.items():
        cfg = tm.config
        m = torch.from_numpy(person_masks(ds, records, cfg))
        x = query_views(records, cfg)
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


def backbone_on_person(config: Any, ds, *, n_images: int = 64, seed: int = 0) -> pd.DataFrame:
    """The reference for :func:`cam_on_person`'s ``activation_share_mean``: the same query images through the
    backbone as ``config`` builds it *before* any ReID training (its starting weights, e.g. ImageNet's). One row:
    ``weights`` (where they came from), ``activation_share_mean``, ``mask_area_mean``, ``n_images``."""
    import torch

    from sisnet.model import build_model

    records = sample_queries(ds, n_images, seed)
    m = torch.from_numpy(person_masks(ds, records, config))
    with torch.random.fork_rng(devices=[]):  # the layers left at random init are drawn from ``seed``, every time
        torch.manual_seed(seed)
        model = build_model(config, ds.num_train_pids).eval()
    share = activation_share(model, query_views(records, config), m)
    return pd.DataFrame([{"weights": model.weights_info["source"], "activation_share_mean": float(share.mean()),
                          "mask_area_mean": float(m.float().mean()), "n_images": len(records)}])


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


def cross_camera_matches(ds) -> dict[str, Any]:
    """Each query's matched gallery image, ``{query path: gallery record}``: the first (by path) gallery image of
    its identity from another camera (a positive the protocol scores); queries without one are left out."""
    by_pid: dict[int, list] = {}
    for g in sorted(ds.gallery, key=lambda r: r.path):
        by_pid.setdefault(g.pid, []).append(g)
    matches = {r.path: next((g for g in by_pid.get(r.pid, []) if g.camid != r.camid), None) for r in ds.query}
    return {path: g for path, g in matches.items() if g is not None}


def two_view_maps(model: Any, cfg: Any, records, gallery_records) -> dict[str, tuple["torch.Tensor", "torch.Tensor"]]:
    """Each of :data:`MAP_KINDS` for the full view and the second view of ``records`` (the two inputs the model
    trains on, as the evaluation transform makes them): ``{kind: (maps_full (N, h, w), maps_small (N, h', w'))}``.
    The CAM's class and the similarity map's gallery feature come from the full view and are shared by both views."""
    import torch

    from sisnet.cam import raw_cam, similarity_map
    from sisnet.data.transforms import EvalTransform, decode_images

    size = (cfg.img_height, cfg.img_width)
    transform = EvalTransform(cfg.view_spec(), 1.0)
    pairs = [transform(im) for im in decode_images([r.path for r in records], size)]
    full, small = torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])
    gallery = query_views(gallery_records, cfg)
    with torch.no_grad():
        out_f, out_s, out_g = model(full), model(small), model(gallery)
        cls = out_f.logits.argmax(1)
        return {
            "cam": (raw_cam(model, out_f.feature_map, cls), raw_cam(model, out_s.feature_map, cls)),
            "activation": (activation_map(out_f.feature_map), activation_map(out_s.feature_map)),
            "similarity": tuple(similarity_map(model, o.feature_map, out_g.bn_feature) for o in (out_f, out_s)),
        }


def two_view_agreement(models: Mapping[str, TrainedModel], ds, *, n_images: int = 64, seed: int = 0) -> pd.DataFrame:
    """How far each model's maps of the two views of one image agree, on ``n_images`` query images (test
    identities, the same for every model) that have a matched gallery image. One row per (model, map kind):
    ``method``, ``loss``, ``seed``, ``map``, ``corr_mean`` / ``corr_std`` (Pearson over images) and ``mse_mean``
    (the DRC term's per-image value, :func:`cam_agreement`), ``map_hw`` and ``n_images``."""
    if n_images < 1:
        raise ValueError(f"n_images={n_images} must be >= 1.")
    matches = cross_camera_matches(ds)
    records = pick([r for r in ds.query if r.path in matches], n_images, seed)
    gallery_records = [matches[r.path] for r in records]
    rows = []
    for method, tm in models.items():
        for kind, (a, b) in two_view_maps(tm.model, tm.config, records, gallery_records).items():
            corr, mse = cam_agreement(a, b)
            rows.append({"method": method, "loss": tm.loss, "seed": tm.seed, "map": kind,
                         "corr_mean": float(np.nanmean(corr.numpy())), "corr_std": float(np.nanstd(corr.numpy())),
                         "mse_mean": float(mse.mean()), "map_hw": "{}x{}".format(*a.shape[-2:]),
                         "n_images": len(records)})
    return pd.DataFrame(rows)


def two_view_agreement_grid(ctx: NotebookContext, *, seeds: Sequence[int], loss: str = "S.+T.",
                            methods: Sequence[str] | None = None, n_images: int = 64) -> pd.DataFrame:
    """:func:`two_view_agreement` for every configuration (``methods``, default the whole grid) of ``loss`` and every
    seed, on the same ``n_images`` query images for every model; one row per (configuration, seed, map)."""
    from sisnet import paper
    from sisnet.report.runs import load_models

    ds = load(ctx)
    frames = [two_view_agreement(load_models(ctx, loss=loss, seed=s, methods=methods or paper.GRID_METHODS), ds,
                                 n_images=n_images, seed=0) for s in seeds]
    return pd.concat(frames, ignore_index=True)


def two_view_agreement_summary(per_run: pd.DataFrame) -> pd.DataFrame:
    """Per map kind and method: the mean over seeds of the per-seed mean correlation and DRC term, their standard
    deviation over seeds, ``n_seeds`` and ``n_images`` (per seed); maps in :data:`MAP_KINDS` order, methods in
    the grid's."""
    g = per_run.groupby(["map", "method"], sort=False)
    out = pd.DataFrame({"corr": g["corr_mean"].mean(), "corr_sd_over_seeds": g["corr_mean"].std(),
                        "drc_term": g["mse_mean"].mean(), "drc_term_sd_over_seeds": g["mse_mean"].std(),
                        "map_hw": g["map_hw"].first(), "n_seeds": g["seed"].nunique(),
                        "n_images": g["n_images"].first()}).reset_index()
    out["map"] = pd.Categorical(out["map"], [k for k in MAP_KINDS if k in set(out["map"])], ordered=True)
    return out.sort_values("map", kind="stable").reset_index(drop=True).assign(map=lambda d: d["map"].astype(str))
