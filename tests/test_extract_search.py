"""sisnet.extract / sisnet.search: features of a folder from a checkpoint, ranked search, file round trip."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from sisnet import engine, runs
from sisnet.config import get_config
from sisnet.extract import _main as extract_main
from sisnet.extract import extract_folder, load_features, save_features
from sisnet.model import build_model
from sisnet.search import _main as search_main
from sisnet.search import draw_ranked_list, search


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A randomly initialised SiSNet saved with the engine's own checkpoint writer."""
    d = tmp_path_factory.mktemp("run")
    config = get_config("smoke", pretrained=False)
    torch.manual_seed(0)
    model = build_model(config, num_classes=4)
    optimizer, scheduler = engine.build_optimizer(config, model)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    history = runs.History(run_id=config.run_id(precision="fp32", data_fingerprint="none"), config=config.to_dict(), weights=model.weights_info,
                             epochs=[], evals=[], complete=True)
    ckpt = d / runs.CHECKPOINT_NAME
    runs.save_checkpoint(ckpt, d / "history.json", model, optimizer, scheduler, scaler, 1, history, config, 4)
    return ckpt


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Six distinct person-sized images of different sizes, plus entries that are not images."""
    d = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    for i in range(6):
        h, w = 60 + 10 * i, 30 + 4 * i
        arr = (rng.random((h, w, 3)) * 255 * (0.3 + 0.1 * i)).astype(np.uint8)
        arr[: h // 2, :, i % 3] = 40 * i
        Image.fromarray(arr).save(d / f"p{i}.{'png' if i % 2 else 'jpg'}")
    (d / "notes.txt").write_text("not an image")
    (d / "sub").mkdir()
    Image.fromarray(np.zeros((20, 10, 3), np.uint8)).save(d / "sub" / "inner.png")
    return d


def test_extract_folder_search_and_round_trip(checkpoint, images, tmp_path):
    with pytest.warns(UserWarning, match=r"skipped 2 entries.*notes\.txt.*sub/"):
        feats, paths = extract_folder(checkpoint, images, "either", batch_size=4, progress=False)
    assert [p.rsplit("/", 1)[-1] for p in paths] == [f"p{i}.{'png' if i % 2 else 'jpg'}" for i in range(6)]
    assert feats.shape == (6, 512) and feats.dtype == torch.float32  # resnet18: C = 512
    assert torch.allclose(feats.norm(dim=1), torch.ones(6), atol=1e-5)
    with pytest.warns(UserWarning):
        casc, _ = extract_folder(checkpoint, images, "cascaded", progress=False)
    assert casc.shape == (6, 1024)
    # batch size does not change the features
    with pytest.warns(UserWarning):
        feats1, _ = extract_folder(checkpoint, images, "either", batch_size=1, progress=False)
    assert torch.allclose(feats, feats1, atol=1e-5)

    # round trip, both file formats
    for name in ("f.safetensors", "f.npz"):
        out = save_features(tmp_path / name, feats, paths, {"mode": "either", "checkpoint": str(checkpoint)})
        fs = load_features(out)
        assert torch.equal(fs.features, feats) and fs.paths == paths
        assert fs.meta == {"mode": "either", "checkpoint": str(checkpoint)}
    fs = load_features(tmp_path / "f.safetensors")

    # a copy of p3 elsewhere is a new image for the file: its feature is computed with the checkpoint,
    # and the original p3 ranks first at distance ~0
    q = tmp_path / "query.png"
    shutil.copy(images / "p3.png", q)
    res = search(fs, q, topk=4)
    assert list(res.columns) == ["rank", "path", "distance", "index"]
    assert list(res["rank"]) == [1, 2, 3, 4]
    assert res["path"].iloc[0] == str(images / "p3.png")
    assert res["distance"].iloc[0] == pytest.approx(0.0, abs=1e-5)
    assert res["distance"].iloc[1] > 1e-3
    assert res["distance"].is_monotonic_increasing
    # a query from the file itself, and exclude_self
    res_self = search(tmp_path / "f.npz", images / "p0.jpg", topk=6, exclude_self=True)
    assert str(images / "p0.jpg") not in set(res_self["path"]) and len(res_self) == 5
    # a feature-vector query
    res_vec = search(fs, feats[5], topk=1)
    assert res_vec["index"].iloc[0] == 5

    png = draw_ranked_list(q, res, tmp_path / "ranked.png")
    with Image.open(tmp_path / "ranked.png") as im:
        assert im.width > im.height > 0
    import matplotlib.pyplot as plt

    plt.close(png)


def test_bad_inputs_are_reported(checkpoint, images, tmp_path):
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    shutil.copy(images / "p0.jpg", bad_dir / "ok.jpg")
    (bad_dir / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage, not a jpeg")
    with pytest.raises(ValueError, match="broken.jpg"):
        extract_folder(checkpoint, bad_dir, progress=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="No image files"):
        extract_folder(checkpoint, empty, progress=False)
    with pytest.raises(NotADirectoryError):
        extract_folder(checkpoint, tmp_path / "missing", progress=False)
    with pytest.raises(ValueError, match=".safetensors or .npz"):
        save_features(tmp_path / "f.pkl", torch.zeros(1, 2), ["a"])
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a sisnet features file"):
        load_features(tmp_path / "junk.safetensors")
    fs_path = save_features(tmp_path / "f.safetensors", torch.nn.functional.normalize(torch.randn(3, 8), dim=1),
                            ["/a.jpg", "/b.jpg", "/c.jpg"])
    with pytest.raises(ValueError, match="8 dims|checkpoint"):
        search(fs_path, images / "p1.png")  # not in file, no checkpoint recorded
    with pytest.raises(ValueError, match="has 4 dims but the features file has 8"):
        search(fs_path, torch.ones(4))


def test_cli_round_trip(checkpoint, images, tmp_path, capsys):
    out = tmp_path / "feats.safetensors"
    with pytest.warns(UserWarning):
        rc = extract_main(["--checkpoint", str(checkpoint), "--images", str(images), "--out", str(out),
                           "--batch-size", "3"])
    assert rc == 0 and "6 images x 512 dims" in capsys.readouterr().out
    assert load_features(out).meta["checkpoint"] == str(checkpoint.absolute())
    q = tmp_path / "q.jpg"
    shutil.copy(images / "p4.jpg", q)
    rc = search_main(["--features", str(out), "--query", str(q), "--topk", "3", "--out", str(tmp_path / "r.png")])
    printed = capsys.readouterr().out.splitlines()
    assert rc == 0 and (tmp_path / "r.png").is_file()
    assert printed[1].split()[0] == "1" and printed[1].endswith("p4.jpg")  # header, then rank 1 = the original
    assert extract_main(["--checkpoint", str(checkpoint), "--images", str(tmp_path / "nope"), "--out",
                         str(tmp_path / "x.safetensors")]) == 1
