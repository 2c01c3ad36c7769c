"""sisnet.losses: hand-computed ID / triplet values, DRC properties, and the Table-2 switch grid."""
from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sisnet.losses import CrossEntropyLabelSmooth, DRCLoss, TripletLoss, compute_losses
from sisnet.model import ModelOutput, SiSNet


# ----------------------------------------------------------------------------- ID loss
def test_label_smoothing_cross_entropy_by_hand():
    loss = CrossEntropyLabelSmooth(num_classes=3, epsilon=0.1)
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    targets = torch.tensor([0, 2])
    # sample 1: q = (0.9 + 0.1/3, 0.1/3, 0.1/3); -sum q log p = logZ - q_0 * 2
    log_z1 = math.log(math.exp(2) + 2)
    l1 = log_z1 - (0.9 + 0.1 / 3) * 2.0
    # sample 2: logits (0, 1, 0), target 2: -sum q log p = logZ - (0.1/3) * 1
    log_z2 = math.log(2 + math.e)
    l2 = log_z2 - (0.1 / 3) * 1.0
    assert loss(logits, targets).item() == pytest.approx((l1 + l2) / 2, abs=1e-6)
    # epsilon 0 is the plain cross-entropy -log p_y
    plain = CrossEntropyLabelSmooth(3, epsilon=0.0)(logits, targets)
    assert plain.item() == pytest.approx((log_z1 - 2.0 + log_z2 - 0.0) / 2, abs=1e-6)
    with pytest.raises(ValueError, match="num_classes"):
        loss(torch.zeros(2, 4), targets)
    with pytest.raises(ValueError, match="targets"):
        loss(logits, torch.tensor([0]))


# ----------------------------------------------------------------------------- triplet
POINTS = torch.tensor([[0.0, 0.0], [0.0, 1.0], [3.0, 0.0], [3.0, 2.0]])  # A, B (id 0), C, D (id 1)
IDS = torch.tensor([0, 0, 1, 1])


def test_batch_hard_triplet_by_hand():
    # distances: AB = 1, CD = 2, AC = 3, AD = sqrt(13), BC = BD = sqrt(10)
    # hardest (d_ap, d_an): A (1, 3), B (1, sqrt10), C (2, 3), D (2, sqrt10)
    s10 = math.sqrt(10)
    big = TripletLoss(margin=2.5)(POINTS, IDS)
    expected = ((1 - 3 + 2.5) + (1 - s10 + 2.5) + (2 - 3 + 2.5) + (2 - s10 + 2.5)) / 4
    assert big.item() == pytest.approx(expected, abs=1e-5)
    # margin 0.3: every anchor already satisfies d_an >= d_ap + 0.3 -> zero
    assert (TripletLoss(margin=0.3)(POINTS, IDS)).item() == pytest.approx(0.0, abs=1e-7)
    # margin 1.5: only C (2 - 3 + 1.5 = 0.5) and D (2 - sqrt10 + 1.5) are active
    mid = TripletLoss(margin=1.5)(POINTS, IDS)
    assert mid.item() == pytest.approx((0.5 + (3.5 - s10)) / 4, abs=1e-5)
    # soft margin: mean softplus(d_ap - d_an)
    soft = TripletLoss(margin=None)(POINTS, IDS)
    sp = lambda v: math.log1p(math.exp(v))  # noqa: E731
    assert soft.item() == pytest.approx((sp(1 - 3) + sp(1 - s10) + sp(2 - 3) + sp(2 - s10)) / 4, abs=1e-5)


def test_triplet_gradient_and_edge_cases():
    x = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.1, 0.0], [5.0, 5.0]], requires_grad=True)  # duplicate points
    loss = TripletLoss(margin=0.3)(x, torch.tensor([0, 0, 1, 1]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    one_id = TripletLoss()(torch.randn(4, 3, requires_grad=True), torch.zeros(4, dtype=torch.long))
    assert one_id.item() == 0.0 and one_id.requires_grad
    # normalize_feature: scaling the features does not change the loss
    t = TripletLoss(margin=0.5, normalize_feature=True)
    assert t(POINTS + 1, IDS).item() == pytest.approx(t(10 * (POINTS + 1), IDS).item(), abs=1e-6)


# ----------------------------------------------------------------------------- DRC
class _TinyHead(nn.Module):
    """A 1-channel 'model': identity BNNeck (eval) and classifier weight 1, so raw CAM = feature map."""

    def __init__(self) -> None:
        super().__init__()
        self.bottleneck = nn.BatchNorm1d(1, eps=0.0).eval()
        self.classifier = nn.Linear(1, 1, bias=False)
        with torch.no_grad():
            self.classifier.weight.fill_(1.0)


def _out(fmap: torch.Tensor) -> ModelOutput:
    b = fmap.shape[0]
    return ModelOutput(fmap, fmap.mean((2, 3)), fmap.mean((2, 3)), torch.zeros(b, 1))


def test_drc_value_by_hand():
    head = _TinyHead()
    y = torch.tensor([0])
    full = _out(torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]]]))  # min-max normalised: unchanged
    small = _out(torch.tensor([[[[0.0, 1.0], [0.0, 2.0]]]]))  # normalised: [[0, .5], [0, 1]]
    # difference [[0, .5], [0, 0]]: MSE = .25 / 4, L1 = .5 / 4
    assert DRCLoss()(head, full, small, y).item() == pytest.approx(0.0625, abs=1e-5)
    assert DRCLoss(distance="l1")(head, full, small, y).item() == pytest.approx(0.125, abs=1e-5)
    assert DRCLoss(weight=0.1)(head, full, small, y).item() == pytest.approx(0.00625, abs=1e-6)
    # a map that is a positive rescaling + shift of the other is "the same region": zero after min-max
    shifted = _out(full.feature_map * 3.0 + 1.0)
    assert DRCLoss()(head, full, shifted, y).item() == pytest.approx(0.0, abs=1e-6)


@pytest.fixture(scope="module")
def model() -> SiSNet:
    torch.manual_seed(0)
    m = SiSNet("resnet18", 4, last_stride=1)
    with torch.no_grad():
        m.classifier.weight.normal_()  # CAMs with a visible range (init std 0.001 makes them tiny)
    return m


def test_drc_zero_on_equal_maps_positive_otherwise(model):
    model.eval()
    y = torch.tensor([0, 1, 2])
    with torch.no_grad():
        a = model(torch.randn(3, 3, 64, 32))
        b = model(torch.randn(3, 3, 64, 32))
    drc = DRCLoss()
    assert drc(model, a, a, y).item() == 0.0
    assert drc(model, a, b, y).item() > 1e-3


def test_drc_different_map_sizes(model):
    model.eval()
    y = torch.tensor([0, 3])
    torch.manual_seed(1)
    small_map = torch.randn(2, model.feature_dim, 4, 2)
    # a full-size map that is the bilinear up-sampling of the small one: the CAM is linear per position,
    # so the resized small CAM equals the full CAM and DRC vanishes although the sizes differ
    full_map = F.interpolate(small_map, size=(8, 4), mode="bilinear", align_corners=False)
    drc = DRCLoss()
    assert drc(model, _out(full_map), _out(small_map), y).item() == pytest.approx(0.0, abs=1e-6)
    m_full, m_small = drc.maps(model, _out(full_map), _out(small_map), y)
    assert m_full.shape == m_small.shape == (2, 8, 4)
    other = _out(torch.randn(2, model.feature_dim, 8, 4))
    assert drc(model, other, _out(small_map), y).item() > 1e-3
    fixed = DRCLoss(size=(16, 8))
    assert fixed.maps(model, other, _out(small_map), y)[0].shape == (2, 16, 8)


@pytest.mark.parametrize("detach", [False, True])
def test_drc_gradients_reach_both_branches(model, detach):
    model.train()
    torch.manual_seed(2)
    out_full, out_small = model.forward_pair(torch.randn(4, 3, 64, 32), torch.randn(4, 3, 32, 16))
    loss = DRCLoss(detach_classifier=detach)(model, out_full, out_small, torch.tensor([0, 0, 1, 1]))
    assert loss.requires_grad and loss.item() > 0
    g_full, g_small, g_cls = torch.autograd.grad(
        loss, [out_full.feature_map, out_small.feature_map, model.classifier.weight], allow_unused=True
    )
    assert g_full.abs().sum() > 0 and g_small.abs().sum() > 0
    if detach:
        assert g_cls is None
    else:
        assert g_cls is not None and g_cls.abs().sum() > 0
    model.eval()


def test_drc_bad_arguments():
    with pytest.raises(ValueError, match="mse"):
        DRCLoss(distance="l2")
    with pytest.raises(ValueError, match="normalization"):
        DRCLoss(normalization="zscore")
    with pytest.raises(ValueError, match="lambda"):
        DRCLoss(weight=-1)


# ----------------------------------------------------------------------------- Table-2 grid
def test_compute_losses_switch_grid(model):
    model.train()
    torch.manual_seed(3)
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    out_full, out_small = model.forward_pair(torch.randn(6, 3, 64, 32), torch.randn(6, 3, 32, 16))
    ce, tri, drc = CrossEntropyLabelSmooth(4), TripletLoss(margin=5.0), DRCLoss(weight=0.5)
    id_f, id_s = ce(out_full.logits, y), ce(out_small.logits, y)
    tri_f, tri_s = tri(out_full.pooled, y), tri(out_small.pooled, y)
    drc_v = drc(model, out_full, out_small, y)
    assert tri_f.item() > 0 and tri_s.item() > 0 and drc_v.item() > 0
    kw = dict(id_loss=ce, triplet_loss=tri, drc_loss=drc)
    for siamese, use_drc, use_tri in itertools.product([False, True], repeat=3):
        flags = dict(siamese=siamese, drc=use_drc, triplet=use_tri)
        if use_drc and not siamese:
            with pytest.raises(ValueError, match="siamese"):
                compute_losses(model, out_full, out_small, y, **flags, **kw)
            continue
        d = compute_losses(model, out_full, out_small, y, **flags, **kw)
        assert set(d) == {"id", "triplet", "drc", "total"}
        assert all(isinstance(v, torch.Tensor) and v.dim() == 0 for v in d.values())
        exp_id = (id_f + id_s) / 2 if siamese else id_f  # branch average
        exp_tri = ((tri_f + tri_s) / 2 if siamese else tri_f) if use_tri else torch.tensor(0.0)
        exp_drc = drc_v if use_drc else torch.tensor(0.0)
        torch.testing.assert_close(d["id"], exp_id)
        torch.testing.assert_close(d["triplet"], exp_tri)
        torch.testing.assert_close(d["drc"], exp_drc)
        torch.testing.assert_close(d["total"], exp_id + exp_tri + exp_drc)
    summed = compute_losses(model, out_full, out_small, y, siamese=True, drc=False, triplet=True,
                            branch_reduction="sum", **kw)
    torch.testing.assert_close(summed["id"], id_f + id_s)
    torch.testing.assert_close(summed["triplet"], tri_f + tri_s)
    with pytest.raises(ValueError, match="out_small"):
        compute_losses(model, out_full, None, y, siamese=True, drc=False, triplet=False)
    # defaults: label-smoothed CE over the model's classes, triplet margin 0.3, DRC weight 1
    d = compute_losses(model, out_full, out_small, y, siamese=True, drc=True, triplet=True)
    torch.testing.assert_close(d["drc"], DRCLoss()(model, out_full, out_small, y))
    d["total"].backward()
    assert model.backbone.conv1.weight.grad.abs().sum() > 0
    model.zero_grad()
    model.eval()
