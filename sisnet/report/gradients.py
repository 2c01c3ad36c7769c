"""Where the gradients come from: each CAM cell's input-gradient share on the person, and the DRC term's share of
a SiSNet+DRC model's loss and of the gradient on its last feature maps."""
from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np
import pandas as pd

from sisnet.report.cam_measures import outer_columns, person_masks, query_views, sample_queries
from sisnet.report.runs import TrainedModel

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["cell_person_share", "cam_cell_sources", "drc_share", "drc_share_table"]


def cell_person_share(model: Any, x: "torch.Tensor", mask: "torch.Tensor") -> "torch.Tensor":
    """Where each cell of the CAM takes its value from: for every cell (i, j) of the last feature map, the share of
    the input-gradient mass ``|d cam(i, j) / d x|`` (summed over colour channels) that falls on ``mask``, per image,
    then averaged over the images -> (h, w). ``x`` (N, 3, H, W) as the evaluation feeds it, ``mask`` (N, H, W)
    bool; the CAM is that of each image's predicted class (:func:`~sisnet.report.cam_measures.cams`), the model in
    eval mode.

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

    records = sample_queries(ds, n_images, seed)
    rows = []
    for method, tm in models.items():
        m = torch.from_numpy(person_masks(ds, records, tm.config))
        share = cell_person_share(tm.model, query_views(records, tm.config), m)
        outer = outer_columns(tuple(share.shape))
        rows.append({"method": method, "loss": tm.loss, "seed": tm.seed, "map_hw": "{}x{}".format(*share.shape),
                     "cell_share_min": float(share.min()), "cell_share_max": float(share.max()),
                     "cell_share_mean": float(share.mean()), "outer_cell_share": float(share[outer].mean()),
                     "inner_cell_share": float(share[~outer].mean()) if (~outer).any() else float("nan"),
                     "mask_area_mean": float(m.float().mean()), "n_images": len(records)})
    return pd.DataFrame(rows)


def drc_share(model: Any, config: Any, ds, *, batches: int = 4) -> dict[str, float]:
    """The DRC term's share of a trained SiSNet+DRC model's loss and of the gradient on the last feature maps.

    On ``batches`` training batches (the run's own sampler, epoch 1) the loss terms of
    :func:`sisnet.losses.compute_losses` are computed as in training -- a copy of the model in train mode, so
    BatchNorm (the BNNeck, hence the CAM, included) uses the batch statistics and dropout is on; the model passed
    in is not changed -- and each term's gradient with respect to both branches' last feature maps is taken
    separately. Returns the means over the batches of
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
    model = copy.deepcopy(model).train()
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


def drc_share_table(trained: TrainedModel, history: Mapping[str, Any], ds, *, batches: int = 4) -> pd.DataFrame:
    """One row for a trained SiSNet+DRC model: its ``drc_weight``, the DRC share of the loss in the last training
    epoch (from ``history``) and :func:`drc_share` on ``batches`` training batches."""
    last = history["epochs"][-1]
    return pd.DataFrame([{"drc_weight": trained.config.drc_weight,
                          "loss_share_last_epoch": last["loss_drc"] / last["loss_total"],
                          **drc_share(trained.model, trained.config, ds, batches=batches)}])
