"""Does a model identify the person or the background? Retrieval with the query images edited by their person masks
(background swapped, background flat, person removed), and what each edit costs S.+T. against S."""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
import pandas as pd

from sisnet.report.cam_measures import person_masks
from sisnet.report.context import NotebookContext, load
from sisnet.report.gradients import cam_cell_sources
from sisnet.report.measure import percent
from sisnet.report.runs import TrainedModel

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["PERSON_EDITS", "FLAT_GREY", "edit_queries", "person_reliance", "person_reliance_grid",
           "person_reliance_paired"]

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
            masks = torch.from_numpy(person_masks(ds, ds.query, cfg))
            queries = decode_images_cached([r.path for r in ds.query], size, "decode query")
            edits_by_size[size] = edit_queries(queries, masks, [r.pid for r in ds.query], seed)
        gallery = decode_images_cached([r.path for r in ds.gallery], size, "decode gallery")
        gf, gp, gc = extract_features(tm.model, ds.gallery, cfg, images=gallery)
        for name in PERSON_EDITS:
            qf, qp, qc = extract_features(tm.model, ds.query, cfg, images=edits_by_size[size][name])
            m = percent(feature_metrics(qf, gf, qp, gp, qc, gc, metric=cfg.metric))
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
