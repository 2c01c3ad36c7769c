"""Losses of SiSNet: ID (label-smoothed cross-entropy), batch-hard triplet (gathered over processes under
torchrun: :class:`GatheredTripletLoss`), DRC, and their Table-2 sum.

All losses are computed in float32 (AMP-safe) and return 0-dim tensors.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sisnet import distributed
from sisnet.cam import NORMALIZATIONS, normalize_cam, raw_cam, resize_to_common

__all__ = ["CrossEntropyLabelSmooth", "TripletLoss", "GatheredTripletLoss", "DRCLoss", "compute_losses", "BRANCH_REDUCTIONS", "DRC_DISTANCES", "DRC_FORMULA"]

BRANCH_REDUCTIONS = ("mean", "sum")
#: The per-position distance d(u, v) of the DRC loss: squared ("mse") or absolute ("l1") difference.
DRC_DISTANCES = ("mse", "l1")

#: The DRC loss as implemented (Markdown + LaTeX), for the notebooks' method text.
DRC_FORMULA = (
    r"$L_{DRC} = \lambda \frac{1}{B}\sum_{b=1}^{B} \frac{1}{HW}\sum_{i,j}"
    r"\big(M^{full}_b(i,j) - M^{small}_b(i,j)\big)^2$, with "
    r"$M^{s}_b = \mathrm{minmax}\big(\mathrm{resize}_{H\times W}(\mathrm{CAM}_{y_b}(F^{s}_b))\big)$ and "
    r"$\mathrm{CAM}_c(F)(i,j) = \sum_k W_{ck}\, a_k F_{kij}$, $a = \gamma/\sqrt{\sigma^2+\epsilon}$ "
    r"(the BNNeck scale); $(H, W)$ is the larger map's size (bilinear resizing), $y_b$ the ground-truth identity."
)


def _check_targets(targets: Tensor, batch: int) -> Tensor:
    if not isinstance(targets, Tensor) or targets.dim() != 1 or targets.shape[0] != batch:
        shape = tuple(targets.shape) if isinstance(targets, Tensor) else type(targets).__name__
        raise ValueError(f"targets must be a (B,) tensor of identity labels with B={batch}, got {shape}.")
    return targets.long()


class CrossEntropyLabelSmooth(nn.Module):
    """Cross-entropy with label smoothing (Szegedy et al. 2016; Bag-of-Tricks uses epsilon 0.1).

    ``loss = mean_b sum_k -q_bk log softmax(logits_b)_k`` with ``q = (1 - eps) * onehot(y) + eps / K``.
    That is exactly ``F.cross_entropy(..., label_smoothing=eps)``, which is used here.

    Call: ``loss(logits (B, K), targets (B,))``.
    """

    def __init__(self, num_classes: int, epsilon: float = 0.1) -> None:
        super().__init__()
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive int, got {num_classes!r}.")
        if not 0.0 <= epsilon < 1.0:
            raise ValueError(f"epsilon (label smoothing) must lie in [0, 1), got {epsilon}.")
        self.num_classes = num_classes
        self.epsilon = float(epsilon)

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        if logits.dim() != 2 or logits.shape[1] != self.num_classes:
            raise ValueError(
                f"logits must be (B, {self.num_classes}), got {tuple(logits.shape)}: does num_classes match the model?"
            )
        targets = _check_targets(targets, logits.shape[0])
        return F.cross_entropy(logits.float(), targets, label_smoothing=self.epsilon)


class TripletLoss(nn.Module):
    """Batch-hard triplet loss (Hermans et al. 2017) on Euclidean distances.

    For each anchor a: ``d_ap`` = largest distance to a sample of the same identity (the anchor itself
    counts, distance 0, so an identity seen once gives d_ap = 0), ``d_an`` = smallest distance to a sample
    of another identity; ``loss = mean_a relu(d_ap - d_an + margin)`` (as ``F.margin_ranking_loss``), or
    ``mean_a softplus(d_ap - d_an)`` when ``margin=None`` (soft margin). Anchors with no negative in the
    batch are left out (a batch of one identity gives a zero loss that still has a graph).

    Call: ``loss(features (B, D), targets (B,))`` -- SiSNet uses ``ModelOutput.pooled``.
    """

    def __init__(self, margin: float | None = 0.3, normalize_feature: bool = False) -> None:
        super().__init__()
        if margin is not None and margin < 0:
            raise ValueError(f"margin must be >= 0 (or None for the soft margin), got {margin}.")
        self.margin = margin
        self.normalize_feature = normalize_feature

    @staticmethod
    def pairwise_distance(x: Tensor) -> Tensor:
        """Euclidean distance matrix (B, B) of x (B, D); clamped before sqrt so the gradient stays finite at 0.

        float32 with autocast disabled: under bf16 autocast the ``x @ x.t()`` of ``|a|^2 + |b|^2 - 2 a.b`` would run
        in bf16, and the cancellation turned its 3 significant digits into distance errors of ~0.1 on distances
        of ~10 (measured: resnet18 pooled features, the triplet loss 0.6 % off the float32 value on the same
        features).
        """
        with torch.autocast(device_type=x.device.type, enabled=False):
            x = x.float()
            sq = x.pow(2).sum(dim=1, keepdim=True)
            d2 = sq + sq.t() - 2.0 * x @ x.t()
            return d2.clamp(min=1e-12).sqrt()

    def forward(self, features: Tensor, targets: Tensor) -> Tensor:
        x, targets = self._prepare(features, targets)
        return self.batch_hard(x, targets, x, targets)

    def _prepare(self, features: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        if features.dim() != 2:
            raise ValueError(f"features must be (B, D), got {tuple(features.shape)}.")
        targets = _check_targets(targets, features.shape[0])
        x = features.float()
        return (F.normalize(x, dim=1) if self.normalize_feature else x), targets

    def batch_hard(self, x: Tensor, targets: Tensor, candidates: Tensor, candidate_targets: Tensor) -> Tensor:
        """The loss of anchors ``x`` (B, D) mined among ``candidates`` (M, D) (the anchors themselves included).

        Written without host synchronisation (no data-dependent indexing or Python branches on tensor values):
        anchors without a negative contribute 0 and are left out of the mean.
        """
        with torch.autocast(device_type=x.device.type, enabled=False):  # float32: see pairwise_distance
            same_set = candidates is x
            x = x.float()
            candidates = x if same_set else candidates.float()
            sq_x = x.pow(2).sum(dim=1, keepdim=True)
            sq_c = sq_x.t() if same_set else candidates.pow(2).sum(dim=1, keepdim=True).t()
            dist = (sq_x + sq_c - 2.0 * x @ candidates.t()).clamp(min=1e-12).sqrt()  # = pairwise_distance when same
        same = targets[:, None] == candidate_targets[None, :]
        # Batch-hard mining (no library offers it over a PK batch): masked max / min per row.
        d_ap = dist.masked_fill(~same, float("-inf")).max(dim=1).values
        d_an = dist.masked_fill(same, float("inf")).min(dim=1).values
        valid = (~same).any(dim=1)
        gap = d_ap - d_an  # -inf for anchors without a negative: their term is 0 below
        per_anchor = F.softplus(gap) if self.margin is None else F.relu(gap + self.margin)
        per_anchor = torch.where(valid, per_anchor, torch.zeros_like(per_anchor))
        return per_anchor.sum() / valid.sum().clamp(min=1)


class GatheredTripletLoss(TripletLoss):
    """Batch-hard triplet loss of this process's anchors against the features of every process.

    The features are gathered with gradients (:func:`sisnet.distributed.gather_with_grad`), so each anchor's
    hardest positive and negative are found in the whole global batch, exactly as in one process, and the
    gradient reaches the process that holds them. Averaged over the processes, the loss is the one-process loss.
    """

    def forward(self, features: Tensor, targets: Tensor) -> Tensor:
        x, targets = self._prepare(features, targets)
        if not distributed.current().distributed:
            return self.batch_hard(x, targets, x, targets)
        everyone = distributed.gather_with_grad(x)
        labels = [torch.empty_like(targets) for _ in range(torch.distributed.get_world_size())]
        torch.distributed.all_gather(labels, targets.contiguous())
        return self.batch_hard(x, targets, everyone, torch.cat(labels))


class DRCLoss(nn.Module):
    r"""Discriminative region consistency between the two branches' ground-truth-class CAMs.

    For a batch of B identities y_b, with ``raw_cam`` from :mod:`sisnet.cam` (BNNeck folded in):

        M^s_b = normalize( resize( raw_cam_{y_b}(F^s_b) ) ),   s in {full, small}

        L_DRC = lambda * (1/B) sum_b (1/(H W)) sum_{i,j} d( M^full_b(i,j), M^small_b(i,j) )

    with d(u, v) = (u - v)^2 for ``distance="mse"`` (default) or |u - v| for ``"l1"``; ``resize`` brings
    both maps to (H, W) = ``size`` or, by default, the larger map's size (bilinear by default); ``normalize``
    is per-image min-max to [0, 1] by default (``normalization``: "minmax" | "softmax" | "none").
    ``lambda`` is ``weight``. The loss is 0 exactly when the normalised maps agree; gradients reach both
    branches' feature maps and, unless ``detach_classifier=True``, the classifier weights and BNNeck scale.

    Call: ``drc(model, out_full, out_small, targets)`` with the two branches' :class:`~sisnet.model.ModelOutput`.
    """

    def __init__(
        self,
        weight: float = 1.0,
        distance: str = "mse",
        normalization: str = "minmax",
        detach_classifier: bool = False,
        size: tuple[int, int] | None = None,
        mode: str = "bilinear",
    ) -> None:
        super().__init__()
        if weight < 0:
            raise ValueError(f"DRC weight (lambda) must be >= 0, got {weight}.")
        if distance not in DRC_DISTANCES:
            raise ValueError(f"DRC distance must be 'mse' or 'l1', got {distance!r}.")
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"DRC normalization must be one of {NORMALIZATIONS}, got {normalization!r}.")
        self.weight = float(weight)
        self.distance = distance
        self.normalization = normalization
        self.detach_classifier = bool(detach_classifier)
        self.size = None if size is None else (int(size[0]), int(size[1]))
        self.mode = mode

    def maps(self, model: Any, out_full: Any, out_small: Any, targets: Tensor) -> tuple[Tensor, Tensor]:
        """The two normalised, same-size maps M^full, M^small, each (B, H, W)."""
        targets = _check_targets(targets, out_full.feature_map.shape[0])
        cam_f = raw_cam(model, out_full.feature_map, targets, self.detach_classifier)
        cam_s = raw_cam(model, out_small.feature_map, targets, self.detach_classifier)
        cam_f, cam_s = resize_to_common(cam_f, cam_s, self.size, self.mode)
        return normalize_cam(cam_f, self.normalization), normalize_cam(cam_s, self.normalization)

    def forward(self, model: Any, out_full: Any, out_small: Any, targets: Tensor) -> Tensor:
        m_full, m_small = self.maps(model, out_full, out_small, targets)
        diff = m_full - m_small
        per_pos = diff.pow(2) if self.distance == "mse" else diff.abs()
        return self.weight * per_pos.flatten(1).mean(dim=1).mean()


def compute_losses(
    model: Any,
    out_full: Any,
    out_small: Any | None,
    targets: Tensor,
    *,
    siamese: bool,
    drc: bool,
    triplet: bool,
    id_loss: nn.Module | None = None,
    triplet_loss: nn.Module | None = None,
    drc_loss: DRCLoss | None = None,
    branch_reduction: str = "mean",
) -> dict[str, Tensor]:
    """The loss of one Table-2 configuration; returns ``{"id", "triplet", "drc", "total"}`` (0-dim tensors).

    ``total = id + (triplet if triplet) + (drc if drc)`` where, with ``siamese=True``, the ID and triplet
    terms are applied to each branch separately (the paper's Fig. 2) and combined by ``branch_reduction``:
    ``"mean"`` (default: ``(L(full) + L(small)) / 2`` keeps the loss scale of the single-scale baseline, so
    the Bag-of-Tricks learning rate and the DRC weight lambda mean the same in every configuration) or
    ``"sum"``. With ``siamese=False`` only ``out_full`` is used (the baseline; ``out_small`` is ignored).
    ``drc=True`` needs ``siamese=True``. Disabled terms are zero tensors. The DRC term already includes
    its weight lambda.

    Defaults when not given: ``CrossEntropyLabelSmooth(model.num_classes)``, ``TripletLoss(0.3)``, ``DRCLoss()``.
    """
    if drc and not siamese:
        raise ValueError("drc=True compares the two branches' CAMs and needs siamese=True (or set drc=False).")
    if siamese and out_small is None:
        raise ValueError("siamese=True needs out_small (the small-scale branch output from model.forward_pair).")
    if branch_reduction not in BRANCH_REDUCTIONS:
        raise ValueError(f"branch_reduction must be one of {BRANCH_REDUCTIONS}, got {branch_reduction!r}.")
    id_loss = id_loss if id_loss is not None else CrossEntropyLabelSmooth(model.num_classes)
    outs = [out_full, out_small] if siamese else [out_full]
    scale = 1.0 / len(outs) if branch_reduction == "mean" else 1.0
    zero = out_full.logits.new_zeros((), dtype=torch.float32)

    loss_id = sum(id_loss(o.logits, targets) for o in outs) * scale
    loss_triplet = zero
    if triplet:
        triplet_loss = triplet_loss if triplet_loss is not None else TripletLoss(0.3)
        loss_triplet = sum(triplet_loss(o.pooled, targets) for o in outs) * scale
    loss_drc = out_full.logits.new_zeros((), dtype=torch.float32)
    if drc:
        drc_loss = drc_loss if drc_loss is not None else DRCLoss()
        loss_drc = drc_loss(model, out_full, out_small, targets)
    total = loss_id + loss_triplet + loss_drc
    return {"id": loss_id, "triplet": loss_triplet, "drc": loss_drc, "total": total}
