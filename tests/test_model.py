"""sisnet.model: backbone construction, last stride, BNNeck, siamese weight sharing, retrieval features, weights."""
from __future__ import annotations

import pytest
import timm
import torch
import torch.nn.functional as F

from sisnet.model import ModelOutput, SiSNet

H, W = 64, 32  # tiny input, aspect ratio of ReID crops


@pytest.fixture(scope="module")
def model() -> SiSNet:
    torch.manual_seed(0)
    return SiSNet("resnet18", num_classes=6, pretrained=False, last_stride=1)


def test_forward_shapes_and_head(model):
    model.eval()
    x = torch.randn(3, 3, H, W)
    out = model(x)
    assert isinstance(out, ModelOutput)
    assert model.feature_dim == 512
    assert out.feature_map.shape == (3, 512, H // 16, W // 16)
    assert out.pooled.shape == out.bn_feature.shape == (3, 512)
    assert out.logits.shape == (3, 6)
    # pooled = GAP of the map; logits = bias-free Linear on the BNNeck feature
    torch.testing.assert_close(out.pooled, out.feature_map.mean(dim=(2, 3)))
    bn = model.bottleneck
    expected_bn = (out.pooled - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
    torch.testing.assert_close(out.bn_feature, expected_bn)
    torch.testing.assert_close(out.logits, out.bn_feature @ model.classifier.weight.t())


def test_last_stride_one_doubles_resnet_map():
    m1 = SiSNet("resnet18", 4, last_stride=1).eval()
    m2 = SiSNet("resnet18", 4, last_stride=2).eval()
    x = torch.randn(1, 3, 128, 64)
    h1, w1 = m1(x).feature_map.shape[-2:]
    h2, w2 = m2(x).feature_map.shape[-2:]
    assert (h2, w2) == (4, 2)  # output stride 32
    assert (h1, w1) == (2 * h2, 2 * w2)  # output stride 16
    # Bag-of-Tricks style: stride removed, no dilation introduced
    assert m1.backbone.layer4[0].conv1.stride == (1, 1)
    assert m1.backbone.layer4[0].conv2.dilation == (1, 1)


def test_last_stride_on_non_resnet():
    # timm's output_stride where the architecture supports it ...
    m = SiSNet("mobilenetv2_050", 4, last_stride=1).eval()
    assert m(torch.randn(1, 3, H, W)).feature_map.shape[-2:] == (H // 16, W // 16)
    # ... a clear error where it does not, and last_stride=None keeps the default
    with pytest.raises(ValueError, match="last_stride=None"):
        SiSNet("mobilenetv3_small_100", 4, last_stride=1)
    m = SiSNet("mobilenetv3_small_050", 4, last_stride=None).eval()
    out = m(torch.randn(2, 3, H, W))
    assert out.feature_map.shape == (2, m.feature_dim, H // 32, W // 32)
    assert m.feature_dim == m.backbone.num_features != m.backbone.head_hidden_size  # pre-pool map, not conv_head


def test_bnneck_bias_frozen_and_inits():
    torch.manual_seed(1)
    m = SiSNet("resnet18", 50)
    bn = m.bottleneck
    assert not bn.bias.requires_grad and torch.count_nonzero(bn.bias) == 0
    assert torch.all(bn.weight == 1)
    assert m.classifier.bias is None
    assert 0.0008 < m.classifier.weight.detach().std().item() < 0.0012  # normal(std=0.001), 25,600 draws
    # a training step leaves the frozen bias at zero while the BN weight moves
    opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=1.0)
    out = m(torch.randn(4, 3, H, W))
    F.cross_entropy(out.logits, torch.tensor([0, 1, 2, 3])).backward()
    opt.step()
    assert torch.count_nonzero(bn.bias) == 0 and bn.bias.grad is None
    assert not torch.all(bn.weight == 1)


def test_forward_pair_shares_weights(model):
    model.train()
    x_full, x_small = torch.randn(4, 3, H, W), torch.randn(4, 3, H // 2, W // 2)
    out_full, out_small = model.forward_pair(x_full, x_small)
    assert out_full.feature_map.shape[-2:] == (4, 2) and out_small.feature_map.shape[-2:] == (2, 1)
    conv = model.backbone.conv1.weight

    def grad_of(loss):
        return torch.autograd.grad(loss, conv)[0]

    g_both = grad_of(out_full.logits.sum() + out_small.logits.sum())
    g_full = grad_of(model(x_full).logits.sum())
    g_small = grad_of(model(x_small).logits.sum())
    # one set of weights: its gradient is the sum of both branches' contributions, each non-zero
    assert g_full.abs().sum() > 0 and g_small.abs().sum() > 0
    torch.testing.assert_close(g_both, g_full + g_small)
    model.eval()
    a, b = model.forward_pair(x_full, x_small)
    torch.testing.assert_close(a.logits, model(x_full).logits)
    torch.testing.assert_close(b.logits, model(x_small).logits)


def test_extract_either_and_cascaded(model):
    model.train()
    x, xs = torch.randn(3, 3, H, W), torch.randn(3, 3, H // 2, W // 2)
    f = model.extract(x)
    assert model.training  # mode restored
    assert f.shape == (3, model.feature_dim) and not f.requires_grad
    torch.testing.assert_close(f.norm(dim=1), torch.ones(3))
    fc = model.extract(x, xs, mode="cascaded")
    assert fc.shape == (3, 2 * model.feature_dim)
    torch.testing.assert_close(fc.norm(dim=1), torch.ones(3))
    model.eval()
    with torch.no_grad():
        expected = F.normalize(torch.cat([model(x).bn_feature, model(xs).bn_feature], 1), dim=1)
    torch.testing.assert_close(fc, expected)
    # either-mode feature is the (eval-mode) BNNeck feature direction
    with torch.no_grad():
        torch.testing.assert_close(f, F.normalize(model(x).bn_feature, dim=1))
    with pytest.raises(ValueError, match="x_small"):
        model.extract(x, mode="cascaded")
    with pytest.raises(ValueError, match="either"):
        model.extract(x, xs, mode="concat")


def test_channels_last_matches(model):
    model.eval()
    x = torch.randn(2, 3, H, W)
    ref = model(x)
    m_cl = SiSNet("resnet18", 6)
    m_cl.load_state_dict(model.state_dict())
    m_cl = m_cl.eval().to(memory_format=torch.channels_last)
    out = m_cl(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out.logits, ref.logits, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_pretrained_from_local_file(tmp_path, suffix):
    torch.manual_seed(3)
    src = timm.create_model("resnet18")  # random weights, with its 1000-class fc
    state = src.state_dict()
    path = tmp_path / f"weights{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save(state, path)
    m = SiSNet("resnet18", 5, pretrained=path, last_stride=1)
    loaded = m.backbone.state_dict()
    assert set(loaded) == {k for k in state if not k.startswith("fc.")}
    for k, v in loaded.items():
        assert torch.equal(v, state[k]), k
    # a fresh random model differs, so the equality above is not by chance
    assert not torch.equal(SiSNet("resnet18", 5).backbone.conv1.weight, state["conv1.weight"])


def test_pretrained_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SiSNet("resnet18", 5, pretrained=tmp_path / "missing.pth")
    with pytest.raises(ValueError, match=".safetensors"):
        SiSNet("resnet18", 5, pretrained=tmp_path / "weights.txt")
    wrong_keys = tmp_path / "wrong.pth"
    torch.save({"something.weight": torch.zeros(3)}, wrong_keys)
    with pytest.raises(ValueError, match="missing"):
        SiSNet("resnet18", 5, pretrained=wrong_keys)
    other_arch = tmp_path / "other.pth"
    torch.save(timm.create_model("resnet34").state_dict(), other_arch)
    with pytest.raises(ValueError, match="resnet18"):
        SiSNet("resnet18", 5, pretrained=other_arch)


def test_pretrained_true_offline_fails_clearly(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RuntimeError) as info:
        SiSNet("resnet18", 5, pretrained=True)
    msg = str(info.value)
    assert "HF_HUB_OFFLINE" in msg and "pretrained=" in msg and ".safetensors" in msg


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"timm\.list_models"):
        SiSNet("resnet_does_not_exist", 5)
    with pytest.raises(ValueError, match="tag"):
        SiSNet("resnet18.no_such_tag", 5)
    with pytest.raises(ValueError, match="num_classes"):
        SiSNet("resnet18", 0)
    with pytest.raises(ValueError, match="last_stride"):
        SiSNet("resnet18", 5, last_stride=3)
    with pytest.raises(ValueError, match="global_pool"):
        SiSNet("resnet18", 5, global_pool="avg")
    with pytest.raises(ValueError, match="B, 3, H, W"):
        SiSNet("resnet18", 5)(torch.randn(3, H, W))


@pytest.mark.parametrize(
    "kernel,dilation,padding,stride,shape",
    [
        (3, 2, 2, 1, (4, 8, 3, 2)),  # the cpu profile's half-scale map: width taps at +-2 only see padding
        (3, 2, 2, 1, (4, 8, 6, 3)),  # full-scale map: nothing to trim
        (3, 2, 2, 1, (2, 8, 1, 1)),  # 1x1 map: only the centre tap is left
        (5, 3, 6, 1, (2, 8, 4, 7)),
        (3, 2, 2, 2, (2, 8, 9, 5)),  # strided: dense kernel, no trimming
        (3, 2, 1, 1, (2, 8, 5, 5)),  # not "same" padding: dense kernel, no trimming
    ],
)
def test_dense_dilated_depthwise_conv_matches_dilated_conv(kernel, dilation, padding, stride, shape):
    from torch import nn

    from sisnet.model import DenseDilatedDepthwiseConv2d

    torch.manual_seed(0)
    c = shape[1]
    ref = nn.Conv2d(c, c, kernel, stride=stride, padding=padding, dilation=dilation, groups=c, bias=True)
    fast = nn.Conv2d(c, c, kernel, stride=stride, padding=padding, dilation=dilation, groups=c, bias=True)
    fast.load_state_dict(ref.state_dict())
    assert DenseDilatedDepthwiseConv2d.convert(fast) == 1 and isinstance(fast, DenseDilatedDepthwiseConv2d)
    x = torch.randn(shape, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    y_ref, y_fast = ref(x), fast(x2)
    assert y_fast.shape == y_ref.shape
    torch.testing.assert_close(y_fast, y_ref, rtol=0, atol=1e-6)
    g = torch.randn_like(y_ref)
    y_ref.backward(g)
    y_fast.backward(g)
    torch.testing.assert_close(x2.grad, x.grad, rtol=0, atol=1e-6)
    torch.testing.assert_close(fast.weight.grad, ref.weight.grad, rtol=0, atol=1e-5)
    torch.testing.assert_close(fast.bias.grad, ref.bias.grad, rtol=0, atol=1e-5)
    assert set(fast.state_dict()) == set(ref.state_dict())


def test_convert_only_touches_dilated_depthwise_convs():
    from torch import nn

    from sisnet.model import DenseDilatedDepthwiseConv2d

    net = nn.Sequential(
        nn.Conv2d(4, 4, 3, padding=2, dilation=2, groups=4),  # converted
        nn.Conv2d(4, 4, 3, padding=1, groups=4),  # depthwise, not dilated
        nn.Conv2d(4, 8, 3, padding=2, dilation=2),  # dilated, not depthwise
        nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=8, padding_mode="reflect"),  # other padding mode
    )
    assert DenseDilatedDepthwiseConv2d.convert(net) == 1
    assert [type(m) is DenseDilatedDepthwiseConv2d for m in net] == [True, False, False, False]


def test_mobilenet_last_stride_one_uses_dense_depthwise_and_loads_plain_state_dicts():
    from sisnet.model import DenseDilatedDepthwiseConv2d

    torch.manual_seed(0)
    m = SiSNet("mobilenetv2_100", 5, last_stride=1).eval()
    converted = [n for n, mod in m.named_modules() if isinstance(mod, DenseDilatedDepthwiseConv2d)]
    assert converted and all(mod.dilation == (2, 2) for mod in m.modules() if isinstance(mod, DenseDilatedDepthwiseConv2d))
    # Same network as timm's own output_stride=16 model: same keys, same outputs with the same weights.
    ref = timm.create_model("mobilenetv2_100", num_classes=0, global_pool="", output_stride=16).eval()
    ref.load_state_dict(m.backbone.state_dict())
    x = torch.randn(2, 3, 48, 24)  # 3x2 final map: the trimmed case
    with torch.no_grad():
        torch.testing.assert_close(m(x).feature_map, ref.forward_features(x), rtol=1e-4, atol=1e-5)
