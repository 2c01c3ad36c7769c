"""sisnet.cam: the CAM/logit identity with the BNNeck folded in, normalisation, resizing, overlay."""
from __future__ import annotations

import matplotlib
import numpy as np
import pytest
import torch

from sisnet.cam import bnneck_affine, normalize_cam, overlay_cam, raw_cam, resize_to_common, similarity_map
from sisnet.model import SiSNet

NUM_CLASSES = 7


@pytest.fixture(scope="module")
def model() -> SiSNet:
    """A resnet18 SiSNet whose BNNeck and classifier hold non-trivial values (so the fold is exercised)."""
    torch.manual_seed(0)
    m = SiSNet("resnet18", NUM_CLASSES, last_stride=1)
    bn = m.bottleneck
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(m.feature_dim) * 0.5)
        bn.running_var.copy_(torch.rand(m.feature_dim) * 2 + 0.1)
        bn.weight.copy_(torch.randn(m.feature_dim))
        bn.bias.copy_(torch.randn(m.feature_dim))  # frozen at 0 in training; non-zero here to test beta's role
        m.classifier.weight.normal_()
    return m


def _independent_bias_term(model: SiSNet) -> torch.Tensor:
    """W_c . b for every class c, b = beta - gamma * mean / sqrt(var + eps) from the running statistics."""
    bn = model.bottleneck
    a = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    b = bn.bias - a * bn.running_mean
    return model.classifier.weight @ b  # (num_classes,)


@torch.no_grad()
def test_cam_mean_minus_logit_is_input_independent_constant(model):
    model.eval()
    expected = _independent_bias_term(model)
    for seed, (batch, h, w) in enumerate([(3, 64, 32), (2, 48, 24), (4, 32, 16)]):
        torch.manual_seed(100 + seed)
        out = model(torch.randn(batch, 3, h, w) * (seed + 1))
        for c in (0, 3, NUM_CLASSES - 1):
            cam = raw_cam(model, out.feature_map, c)
            assert cam.shape == (batch, *out.feature_map.shape[-2:])
            gap = cam.mean(dim=(1, 2)) - out.logits[:, c]  # (B,)
            torch.testing.assert_close(gap, (-expected[c]).expand(batch), atol=1e-3, rtol=1e-4)
    # the constant differs between classes (it is W_c . b, not a global offset)
    assert not torch.allclose(expected[0], expected[3])


@torch.no_grad()
def test_cam_identity_in_train_mode_uses_batch_statistics(model):
    model.train()
    try:
        torch.manual_seed(5)
        out = model(torch.randn(4, 3, 64, 32))
        pooled = out.pooled
        bn = model.bottleneck
        a = bn.weight / torch.sqrt(pooled.var(0, unbiased=False) + bn.eps)
        b = bn.bias - a * pooled.mean(0)
        for c in (1, 4):
            cam = raw_cam(model, out.feature_map, c)
            torch.testing.assert_close(
                cam.mean(dim=(1, 2)) - out.logits[:, c],
                (-(model.classifier.weight[c] @ b)).expand(4),
                atol=1e-3,
                rtol=1e-4,
            )
        a2, b2 = bnneck_affine(model, out.feature_map)
        torch.testing.assert_close(a2, a)
        torch.testing.assert_close(b2, b)
    finally:
        model.eval()


@torch.no_grad()
def test_per_image_class_index_matches_single_class(model):
    model.eval()
    fmap = model(torch.randn(3, 3, 64, 32)).feature_map
    classes = torch.tensor([2, 0, 5])
    cams = raw_cam(model, fmap, classes)
    for i, c in enumerate(classes.tolist()):
        torch.testing.assert_close(cams[i], raw_cam(model, fmap, c)[i])
    with pytest.raises(ValueError, match="out of range"):
        raw_cam(model, fmap, NUM_CLASSES)
    with pytest.raises(ValueError, match=r"\(B,\)"):
        raw_cam(model, fmap, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="channels"):
        raw_cam(model, fmap[:, :10], 0)


def test_detach_classifier(model):
    model.eval()
    fmap = model(torch.randn(2, 3, 64, 32)).feature_map.detach().requires_grad_(True)
    for detach in (False, True):
        model.zero_grad()
        fmap.grad = None
        raw_cam(model, fmap, 1, detach_classifier=detach).pow(2).sum().backward()
        assert fmap.grad is not None and fmap.grad.abs().sum() > 0
        cls_grad = model.classifier.weight.grad
        if detach:
            assert cls_grad is None or cls_grad.abs().sum() == 0
        else:
            assert cls_grad.abs().sum() > 0
    model.zero_grad()


def test_normalize_cam():
    torch.manual_seed(0)
    cam = torch.randn(3, 5, 4)
    mm = normalize_cam(cam)
    flat = mm.flatten(1)
    torch.testing.assert_close(flat.min(1).values, torch.zeros(3))
    torch.testing.assert_close(flat.max(1).values, torch.ones(3), atol=1e-5, rtol=0)
    # per image and invariant to a positive affine change of each image's map
    scaled = cam * torch.tensor([2.0, 0.1, 7.0])[:, None, None] + torch.tensor([1.0, -3.0, 0.0])[:, None, None]
    torch.testing.assert_close(normalize_cam(scaled), mm, atol=1e-5, rtol=0)
    sm = normalize_cam(cam, "softmax")
    torch.testing.assert_close(sm.flatten(1).sum(1), torch.ones(3))
    assert bool((sm > 0).all())
    assert normalize_cam(cam, "none") is cam
    assert torch.count_nonzero(normalize_cam(torch.full((1, 2, 2), 3.0))) == 0  # constant map -> zeros
    with pytest.raises(ValueError, match="minmax"):
        normalize_cam(cam, "zscore")


def test_resize_to_common():
    small = torch.arange(8.0).reshape(2, 2, 2)
    large = torch.randn(2, 4, 4)
    a, b = resize_to_common(small, large)
    assert a.shape == b.shape == (2, 4, 4)
    assert torch.equal(b, large)  # the larger map is left as it is
    a2, b2 = resize_to_common(large, small)
    assert torch.equal(a2, large) and torch.equal(b2, a)  # symmetric
    # bilinear (align_corners=False): corner values are kept, a constant map stays constant
    assert a[0, 0, 0] == small[0, 0, 0] and a[0, -1, -1] == small[0, -1, -1]
    c, _ = resize_to_common(torch.full((1, 2, 1), 0.25), torch.zeros(1, 8, 4))
    torch.testing.assert_close(c, torch.full((1, 8, 4), 0.25))
    n, _ = resize_to_common(small, large, mode="nearest")
    assert set(n.unique().tolist()) <= set(small.unique().tolist())
    e, f = resize_to_common(small, large, size=(6, 3))
    assert e.shape == f.shape == (2, 6, 3)
    with pytest.raises(ValueError, match="differ"):
        resize_to_common(small, large[:1])
    with pytest.raises(ValueError, match="mode"):
        resize_to_common(small, large, mode="cubic")


def test_overlay_cam():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(64, 32, 3), dtype=np.uint8)
    cam = np.zeros((4, 2), dtype=np.float32)
    cam[0, 0] = 5.0  # maximum at the top-left, minimum at the bottom-right
    cam[-1, -1] = -1.0
    out = overlay_cam(image, cam, alpha=0.5)
    assert out.dtype == np.uint8 and out.shape == image.shape
    assert np.array_equal(overlay_cam(image, cam, alpha=0.0), image)
    heat = overlay_cam(image, torch.from_numpy(cam), alpha=1.0, colormap="jet")
    jet = matplotlib.colormaps["jet"]
    np.testing.assert_array_equal(heat[0, 0], np.rint(np.array(jet(1.0)[:3]) * 255).astype(np.uint8))
    np.testing.assert_array_equal(heat[-1, -1], np.rint(np.array(jet(0.0)[:3]) * 255).astype(np.uint8))
    with pytest.raises(ValueError, match="colormap"):
        overlay_cam(image, cam, colormap="no_such_map")
    with pytest.raises(ValueError, match="H, W, 3"):
        overlay_cam(image.transpose(2, 0, 1), cam)


@torch.no_grad()
def test_similarity_map_mean_is_the_retrieval_similarity_up_to_a_constant(model):
    """mean_ij similarity_map + e.b equals e . bn_feature for the L2-normalised gallery feature e, in eval mode."""
    model.eval()
    torch.manual_seed(3)
    query, gallery = model(torch.randn(4, 3, 64, 32)), model(torch.randn(4, 3, 64, 32))
    smap = similarity_map(model, query.feature_map, gallery.bn_feature)
    assert smap.shape == (4, *query.feature_map.shape[-2:])
    e = torch.nn.functional.normalize(gallery.bn_feature, dim=1)
    _, b = bnneck_affine(model)
    torch.testing.assert_close(smap.mean(dim=(1, 2)) + e @ b, (e * query.bn_feature).sum(1), atol=1e-3, rtol=1e-4)
    # a different gallery image gives a different map: it is not the CAM of a fixed class
    other = similarity_map(model, query.feature_map, gallery.bn_feature.roll(1, dims=0))
    assert not torch.allclose(smap, other)
    with pytest.raises(ValueError, match="one gallery feature per query"):
        similarity_map(model, query.feature_map, gallery.bn_feature[:2])
