"""sisnet.export / sisnet.extract --onnx: the ONNX feature extractor gives the library's features (onnxruntime vs PyTorch)."""
from __future__ import annotations

import json
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from PIL import Image

from sisnet.config import get_config
from sisnet.export import FeatureExtractor, _main, export_onnx, normalised_batch
from sisnet.extract import _main as extract_main
from sisnet.extract import extract_paths, load_features
from sisnet.model import build_model
from sisnet.runs import CHECKPOINT_NAME

RUN_ID = "0123456789ab"  # the runs-cache key a checkpoint records (sisnet.runs.run_key)


def _checkpoint(folder, config, num_classes: int = 7):
    """A checkpoint as load_model reads it: random weights, BNNeck running statistics that are not the identity."""
    torch.manual_seed(0)
    model = build_model(config, num_classes=num_classes, pretrained=False)
    with torch.no_grad():
        model.bottleneck.running_mean.normal_()
        model.bottleneck.running_var.uniform_(0.5, 2.0)
    run = folder / RUN_ID
    run.mkdir()
    torch.save({"config": config.to_dict(), "num_classes": num_classes, "model": model.state_dict(), "run_id": RUN_ID},
               run / CHECKPOINT_NAME)
    return run


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """The smoke profile's model (resnet18, 64 x 32 input, native half-size second view)."""
    return _checkpoint(tmp_path_factory.mktemp("smoke"), get_config("smoke"))


@pytest.fixture(scope="module")
def cpu_run(tmp_path_factory):
    """The cpu profile's model (mobilenetv2 with last stride 1: dilated depthwise convs; 96 x 48; degraded view)."""
    return _checkpoint(tmp_path_factory.mktemp("cpu"), get_config("cpu", pretrained=False))


@pytest.fixture(scope="module")
def people(tmp_path_factory):
    """70 image files of different sizes and formats: 20 queries and 50 gallery images."""
    folders = {name: tmp_path_factory.mktemp(name) for name in ("query", "gallery")}
    rng = np.random.default_rng(0)
    for i in range(70):
        h, w = rng.integers(40, 160), rng.integers(20, 80)
        base = rng.integers(0, 256, (1, 1, 3))
        arr = np.clip(base + rng.normal(0, 40, (h, w, 3)).cumsum(axis=0) / np.sqrt(h), 0, 255).astype(np.uint8)
        folder = folders["query" if i < 20 else "gallery"]
        Image.fromarray(arr).save(folder / f"p{i:02d}.{'png' if i % 3 == 0 else 'jpg'}")
    return folders


def _extract(tmp_path, name: str, *args: str) -> np.ndarray:
    """``python -m sisnet.extract`` into ``tmp_path/name``; the features as an array."""
    out = tmp_path / name
    assert extract_main([*args, "--out", str(out)]) == 0
    return load_features(out).features.numpy()


def test_either_export_matches_pytorch_and_ranks_the_gallery_alike(smoke_run, people, tmp_path, capsys):
    """The issue's test: features within 1e-4; 20 queries against 50 gallery images, the same top-10 either way."""
    from sisnet.runs import load_model

    out = tmp_path / "model.onnx"
    assert _main(["--checkpoint", str(smoke_run), "--out", str(out)]) == 0
    assert "checked with onnxruntime" in capsys.readouterr().out
    model, config = load_model(smoke_run)
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta["mode"] == "either" and json.loads(meta["input_size_hw"]) == [64, 32]
    assert meta["feature_dim"] == str(model.feature_dim) and "normalised" in meta["input"]
    assert meta["run_id"] == RUN_ID and meta["checkpoint"].endswith(CHECKPOINT_NAME)
    assert not list(tmp_path.glob("*.data"))  # one self-contained file
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[1:] == [3, 64, 32]
    # a NORMALISED batch in, of any size (dynamic batch axis): the library's feature out
    gen = torch.Generator().manual_seed(1)
    for n in (1, 5):
        images = normalised_batch(torch.randint(0, 256, (n, 3, 64, 32), dtype=torch.uint8, generator=gen))
        mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
        assert (images.mean((0, 2, 3)) * std + mean).sub(0.5).abs().max() < 0.05  # really (x/255 - mean)/std
        got = session.run(["features"], {"images": images.numpy()})[0]
        expected = model.extract(images).numpy()
        assert got.shape == (n, model.feature_dim)
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
        assert np.abs(got - expected).max() <= 1e-4
    # image files: `sisnet.extract --onnx` against `sisnet.extract --checkpoint` (PyTorch), same preprocessing
    backends = {}
    for split, folder in people.items():
        torch_feats = _extract(tmp_path, f"{split}.pt.safetensors", "--checkpoint", str(smoke_run), "--images", str(folder))
        onnx_feats = _extract(tmp_path, f"{split}.onnx.npz", "--onnx", str(out), "--images", str(folder),
                              "--batch-size", "16")
        assert onnx_feats.shape == torch_feats.shape == (len(list(folder.iterdir())), model.feature_dim)
        assert np.abs(onnx_feats - torch_feats).max() <= 1e-4
        backends.setdefault("pytorch", {})[split], backends.setdefault("onnxruntime", {})[split] = torch_feats, onnx_feats
    fs = load_features(tmp_path / "query.onnx.npz")
    assert fs.meta["mode"] == "either" and fs.meta["onnx"] == str(out) and fs.meta["run_id"] == RUN_ID
    top10 = {}
    for name, feats in backends.items():
        dist = 1 - feats["query"] @ feats["gallery"].T  # (20, 50) cosine distances
        assert dist.shape == (20, 50)
        top10[name] = np.argsort(dist, axis=1, kind="stable")[:, :10]
    assert np.array_equal(top10["pytorch"], top10["onnxruntime"])
    assert len({tuple(row) for row in top10["pytorch"]}) > 1  # the rankings differ between queries


@pytest.mark.parametrize("run", ["smoke_run", "cpu_run"])
def test_cascaded_export_makes_the_second_view_in_the_graph(run, people, tmp_path, request):
    """Cascaded (2C): native half-size view (smoke) and degraded view (cpu profile), both from the one input."""
    from sisnet.runs import load_model
    from sisnet.extract import extract_paths_onnx
    from sisnet.search import search

    run_dir = request.getfixturevalue(run)
    model, config = load_model(run_dir)
    out = export_onnx(model, config, tmp_path / "cascaded.onnx", mode="cascaded", checkpoint=str(run_dir))
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta["mode"] == "cascaded" and meta["small_view"] == config.small_view
    assert meta["feature_dim"] == str(2 * model.feature_dim)
    paths = sorted(people["gallery"].iterdir())[:12]
    library = extract_paths(model, config, paths, "cascaded", progress=False).numpy()
    got = extract_paths_onnx(out, paths, batch_size=5, progress=False).numpy()
    assert got.shape == library.shape == (12, 2 * model.feature_dim)
    assert np.abs(got - library).max() <= 1e-4
    # the second view matters: the either-scale feature is not a prefix of the cascaded one
    either = extract_paths(model, config, paths, "either", progress=False).numpy()
    assert np.abs(got[:, : model.feature_dim] / np.linalg.norm(got[:, : model.feature_dim], axis=1, keepdims=True)
                  - either).max() < 1e-4 and np.abs(got[:, model.feature_dim:]).max() > 0.01
    with pytest.raises(ValueError, match=r"computes 'cascaded' features, not 'either'.*--mode either"):
        extract_paths_onnx(out, paths, "either", progress=False)
    # a features file made with --onnx is searched with the same ONNX file for a new query image
    features = tmp_path / "feats.safetensors"
    assert extract_main(["--onnx", str(out), "--images", str(people["gallery"]), "--out", str(features)]) == 0
    hits = search(features, sorted(people["query"].iterdir())[0], topk=3)
    assert len(hits) == 3 and hits["distance"].is_monotonic_increasing


def test_the_wrapper_leaves_the_model_alone_and_bad_calls_fail_clearly(cpu_run, tmp_path, capsys, monkeypatch):
    from sisnet.runs import load_model
    from sisnet.model import DenseDilatedDepthwiseConv2d

    model, config = load_model(cpu_run)
    n_dense = sum(isinstance(m, DenseDilatedDepthwiseConv2d) for m in model.modules())
    wrapper = FeatureExtractor(model, config.view_spec())
    assert n_dense > 0 and not any(isinstance(m, DenseDilatedDepthwiseConv2d) for m in wrapper.modules())
    assert sum(isinstance(m, DenseDilatedDepthwiseConv2d) for m in model.modules()) == n_dense
    with pytest.raises(ValueError, match="choose one of"):
        FeatureExtractor(model, config.view_spec(), mode="both")
    assert _main(["--checkpoint", str(cpu_run), "--out", str(tmp_path / "model.pt")]) == 1
    assert ".onnx" in capsys.readouterr().err
    assert _main(["--checkpoint", str(tmp_path / "missing"), "--out", str(tmp_path / "m.onnx")]) == 1
    assert "No checkpoint" in capsys.readouterr().err
    images = tmp_path / "imgs"
    images.mkdir()
    Image.new("RGB", (20, 40)).save(images / "a.jpg")
    assert extract_main(["--onnx", str(tmp_path / "nothing.onnx"), "--images", str(images), "--out",
                         str(tmp_path / "f.npz")]) == 1
    assert "python -m sisnet.export" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # one model source, not two
        extract_main(["--onnx", "m.onnx", "--checkpoint", str(cpu_run), "--images", str(images), "--out", "f.npz"])
    # onnxruntime is an optional dependency: without it, the message says how to install it
    (tmp_path / "some.onnx").write_bytes(b"not read")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    assert extract_main(["--onnx", str(tmp_path / "some.onnx"), "--images", str(images), "--out",
                         str(tmp_path / "f.npz")]) == 1
    assert "pip install 'sisnet[onnx]'" in capsys.readouterr().err
