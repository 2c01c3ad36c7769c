"""sisnet.export: the ONNX feature extractor gives the library's features (onnxruntime vs PyTorch)."""
from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from PIL import Image

from sisnet.config import get_config
from sisnet.engine import CHECKPOINT_NAME, build_model
from sisnet.export import FeatureExtractor, _main


RUN_ID = "0123456789ab"  # the runs-cache key a checkpoint records (sisnet.runs.run_key)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A checkpoint as load_model reads it: mobilenetv2 with last stride 1 (dilated depthwise convs), random
    weights, BNNeck running statistics that are not the identity."""
    config = get_config("smoke", backbone="mobilenetv2_100", img_height=64, img_width=32)
    torch.manual_seed(0)
    model = build_model(config, num_classes=7, pretrained=False)
    with torch.no_grad():
        model.bottleneck.running_mean.normal_()
        model.bottleneck.running_var.uniform_(0.5, 2.0)
    run = tmp_path_factory.mktemp("runs") / RUN_ID
    run.mkdir()
    torch.save({"config": config.to_dict(), "num_classes": 7, "model": model.state_dict(), "run_id": RUN_ID},
               run / CHECKPOINT_NAME)
    return run


def test_cli_export_matches_pytorch_and_the_library_extraction(run_dir, tmp_path, capsys):
    from sisnet.engine import load_model
    from sisnet.extract import extract_paths

    out = tmp_path / "model.onnx"
    assert _main(["--checkpoint", str(run_dir), "--out", str(out)]) == 0
    assert "checked with onnxruntime" in capsys.readouterr().out
    model, config = load_model(run_dir)
    proto = onnx.load(str(out))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["input_size_hw"]) == [64, 32] and meta["feature_dim"] == str(model.feature_dim)
    assert meta["run_id"] == RUN_ID and meta["checkpoint"].endswith(CHECKPOINT_NAME)
    assert not list(tmp_path.glob("*.data"))  # one self-contained file
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[1:] == [3, 64, 32]
    # random 0-255 images, batch 1 and 3 (dynamic batch axis): the same L2-normalised BNNeck feature
    gen = torch.Generator().manual_seed(1)
    for n in (1, 3):
        images = torch.rand(n, 3, 64, 32, generator=gen) * 255
        got = session.run(["features"], {"images": images.numpy()})[0]
        expected = model.extract((images / 255 - torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1))
                                 / torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1))
        assert got.shape == (n, model.feature_dim)
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
        assert np.abs(got - expected.numpy()).max() < 1e-4
    # image files with the documented preprocessing give what `python -m sisnet.extract` computes
    paths = []
    rng = np.random.default_rng(0)
    for i, size in enumerate([(40, 90), (64, 32), (17, 50)]):
        paths.append(tmp_path / f"p{i}.jpg")
        Image.fromarray(rng.integers(0, 256, (*size[::-1], 3), dtype=np.uint8)).save(paths[-1])
    batch = np.stack([np.asarray(Image.open(p).convert("RGB").resize((32, 64), Image.BILINEAR), np.float32)
                      .transpose(2, 0, 1) for p in paths])  # fmt: skip
    library = extract_paths(model, config, paths, "either", progress=False).numpy()
    assert np.abs(session.run(["features"], {"images": batch})[0] - library).max() < 1e-4


def test_the_wrapper_leaves_the_model_alone_and_bad_calls_fail_clearly(run_dir, tmp_path, capsys):
    from sisnet.engine import load_model
    from sisnet.model import DenseDilatedDepthwiseConv2d

    model, _ = load_model(run_dir)
    n_dense = sum(isinstance(m, DenseDilatedDepthwiseConv2d) for m in model.modules())
    wrapper = FeatureExtractor(model)
    assert n_dense > 0 and not any(isinstance(m, DenseDilatedDepthwiseConv2d) for m in wrapper.modules())
    assert sum(isinstance(m, DenseDilatedDepthwiseConv2d) for m in model.modules()) == n_dense
    assert _main(["--checkpoint", str(run_dir), "--out", str(tmp_path / "model.pt")]) == 1
    assert ".onnx" in capsys.readouterr().err
    assert _main(["--checkpoint", str(tmp_path / "missing"), "--out", str(tmp_path / "m.onnx")]) == 1
    assert "No checkpoint" in capsys.readouterr().err
