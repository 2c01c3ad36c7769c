"""sisnet.engine: smoke fit of every Table 2 configuration, runs cache, evaluation API, paper profile steps."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sisnet.config import TABLE2_GRID, get_config
from sisnet.data import load_dataset
from sisnet.engine import (
    NonFiniteLossError,
    build_optimizer,
    build_train_loader,
    device_views,
    fit,
    train_step,
)
from sisnet.evaluation import EVAL_MODES, evaluate, extract_features
from sisnet.model import build_model
from sisnet.runs import load_history, load_model, run_key

METRIC_KEYS = ("rank1", "rank5", "rank10", "mAP", "mINP")


@pytest.fixture(scope="module")
def grid_runs(tiny_synthetic_root, tmp_path_factory):
    """Fit every Table 2 configuration at the smoke profile (a few seconds each)."""
    runs = tmp_path_factory.mktemp("runs")
    out = {}
    for g in TABLE2_GRID:
        cfg = get_config("smoke", dataset_dir=str(tiny_synthetic_root), runs_dir=str(runs), **g["overrides"])
        out[(g["name"], g["loss"])] = (cfg, fit(cfg, progress=False))
    return out


def test_every_table2_configuration_trains_and_evaluates(grid_runs):
    assert len(grid_runs) == 8  # the paper's six and the augmentation control under both losses
    for (name, loss), (cfg, h) in grid_runs.items():
        assert h["complete"] is True and h["run_id"] == run_key(cfg)
        assert h["config"]["siamese"] == name.startswith("SiSNet")
        assert [e["epoch"] for e in h["epochs"]] == list(range(1, cfg.epochs + 1))
        for e in h["epochs"]:
            assert np.isfinite(e["loss_total"]) and e["loss_id"] > 0 and e["seconds"] > 0
            assert e["loss_total"] == pytest.approx(e["loss_id"] + e["loss_triplet"] + e["loss_drc"], rel=1e-5)
            if loss == "S.":
                assert e["loss_triplet"] == 0
            else:  # batch-hard triplet with margin 0.3 on a barely trained net is active
                assert e["loss_triplet"] > 0
            assert (e["loss_drc"] > 0) == (name == "SiSNet+DRC")
        # evaluated at every epoch listed by the config, in both modes
        modes_by_epoch = {}
        for ev in h["evals"]:
            modes_by_epoch.setdefault(ev["epoch"], set()).add(ev["mode"])
            for k in METRIC_KEYS:
                assert 0.0 <= ev[k] <= 1.0, (k, ev)
            assert ev["rank1"] <= ev["rank5"] <= ev["rank10"]
        assert sorted(modes_by_epoch) == cfg.eval_epochs()
        assert all(m == set(EVAL_MODES) for m in modes_by_epoch.values())
        assert h["weights"]["source"] == "random"
        # the history file on disk is the returned history
        assert h["precision"] == "fp32" and h["devices"] == ["cpu"] and len(h["data_fingerprint"]) == 16
        assert load_history(f"{cfg.runs_dir}/{run_key(cfg)}") == json.loads(json.dumps(h))


def test_runs_cache_returns_without_training(grid_runs, monkeypatch):
    cfg, h = grid_runs[("SiSNet", "S.+T.")]
    import sisnet.engine as engine

    def boom(*a, **k):
        raise AssertionError("a cached run must not train again")

    monkeypatch.setattr(engine, "train_step", boom)
    again = fit(cfg, progress=False)
    assert again == h
    # a changed result-affecting field is a different run (it would train, hence hit the patched step)
    with pytest.raises(AssertionError, match="must not train"):
        fit(cfg.replace(seed=cfg.seed + 1), progress=False)


def test_load_model_rebuilds_the_trained_output_stride(tiny_synthetic_root, tmp_path):
    """A dilated backbone's weights also fit the undilated one: the rebuilt model must be the one trained."""
    cfg = get_config("smoke", dataset_dir=str(tiny_synthetic_root), runs_dir=str(tmp_path), last_stride=None,
                     output_stride=8, epochs=1, milestones=(), eval_last=1)
    h = fit(cfg, progress=False)
    model, cfg2 = load_model(f"{cfg.runs_dir}/{run_key(cfg)}")
    x = torch.zeros(2, 3, cfg.img_height, cfg.img_width)
    assert tuple(model(x).feature_map.shape[-2:]) == (cfg.img_height // 8, cfg.img_width // 8)
    res = evaluate(model, load_dataset("synthetic", tiny_synthetic_root), cfg2)
    assert res["either"]["mAP"] == pytest.approx(h.final("either")["mAP"], abs=1e-6)


def test_load_model_extract_and_evaluate(grid_runs, tiny_synthetic_root):
    cfg, h = grid_runs[("SiSNet+DRC", "S.")]
    model, cfg2 = load_model(f"{cfg.runs_dir}/{run_key(cfg)}/last.pt")
    assert cfg2 == cfg and not model.training
    ds = load_dataset("synthetic", tiny_synthetic_root)
    res = evaluate(model, ds, cfg2)
    assert set(res) == set(EVAL_MODES)
    # the checkpoint holds the final weights: same metrics as the last evaluation in the history
    for mode in EVAL_MODES:
        for k in METRIC_KEYS:
            assert res[mode][k] == pytest.approx(h.final(mode)[k], abs=1e-6)

    either, pids, camids = extract_features(model, ds.query, cfg2, mode="either")
    cascaded, _, _ = extract_features(model, ds.query, cfg2, mode="cascaded")
    c = model.feature_dim
    assert either.shape == (len(ds.query), c) and cascaded.shape == (len(ds.query), 2 * c)
    assert torch.allclose(either.norm(dim=1), torch.ones(len(ds.query)), atol=1e-5)
    assert list(pids) == [r.pid for r in ds.query] and list(camids) == [r.camid for r in ds.query]
    # same definition as SiSNet.extract on the same tensors
    from sisnet.data.transforms import EvalTransform, decode_image

    full, small = EvalTransform(cfg2.view_spec())(decode_image(ds.query[0].path, (cfg2.img_height, cfg2.img_width)))
    ref = model.extract(full[None], small[None], mode="cascaded")
    assert torch.allclose(cascaded[:1], ref, atol=1e-5)
    # the cross-scale protocol changes the query features (degraded queries), not their shape
    low, _, _ = extract_features(model, ds.query, cfg2, mode="either", query_scale=0.25)
    assert low.shape == either.shape and not torch.allclose(low, either, atol=1e-3)


def test_non_finite_loss_names_epoch_and_step(tiny_synthetic_root, tmp_path, monkeypatch):
    import sisnet.engine as engine

    real = engine.config_losses
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        out = real(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 5:  # epoch 2 (3 steps per epoch), step 2
            out["total"] = out["total"] * float("nan")
        return out

    monkeypatch.setattr(engine, "config_losses", poisoned)
    cfg = get_config("smoke", dataset_dir=str(tiny_synthetic_root), runs_dir=str(tmp_path), epochs=3)
    with pytest.raises(NonFiniteLossError, match=r"epoch 2 step 2"):
        fit(cfg, progress=False)
    h = load_history(tmp_path / run_key(cfg))  # epoch 1 survives, the run is not marked complete
    assert h["complete"] is False and [e["epoch"] for e in h["epochs"]] == [1]


def test_paper_profile_two_iterations_resnet50_256x128(tiny_synthetic_root):
    """The paper profile (resnet50, 256x128, last stride 1, two-scale, DRC, triplet), random weights.

    P x K reduced from 16 x 4 to 4 x 2 so that two iterations fit the test budget on 2 CPU cores.
    """
    cfg = get_config("paper", dataset_dir=str(tiny_synthetic_root), pretrained=False, P=4, K=2, drc=True,
                     num_workers=0, channels_last=False)
    assert (cfg.img_height, cfg.img_width, cfg.backbone) == (256, 128, "resnet50.tv_in1k")
    ds = load_dataset("synthetic", tiny_synthetic_root)
    torch.manual_seed(0)
    model = build_model(cfg, ds.num_train_pids)
    optimizer, _ = build_optimizer(cfg, model)
    loader = build_train_loader(cfg, ds)
    loader.sampler.set_epoch(1)
    it = iter(loader)
    before = {k: v.clone() for k, v in model.state_dict().items() if v.dtype.is_floating_point}
    for _ in range(2):
        batch = next(it)
        # device-fed: uint8 images and erasing boxes leave the loader; the views are finished on the device
        assert batch[0].shape == (8, 3, 256, 128) and batch[0].dtype == torch.uint8 and batch[1].shape == (8, 4)
        full, small = device_views(batch, cfg, torch.device("cpu"))
        assert full.shape == (8, 3, 256, 128) and full.dtype == torch.float32 and small.shape == (8, 3, 128, 64)
        losses = train_step(model, optimizer, batch, cfg)
        assert all(np.isfinite(float(v)) for v in losses.values()) and losses["drc"] > 0 and losses["triplet"] >= 0
    out = model(full[:2])
    assert out.feature_map.shape[-2:] == (16, 8)  # last stride 1: output stride 16
    changed = sum(not torch.equal(before[k], v) for k, v in model.state_dict().items() if k in before)
    assert changed > 0.9 * len(before)
