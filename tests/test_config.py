"""sisnet.config: profiles, validation errors, run_id stability, the Table 2 grid, the LR schedule."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from sisnet.config import PROFILE_NAMES, PROFILES, TABLE2_GRID, TrainConfig, config_from_dict, get_config


def test_profiles_exist_and_validate():
    assert set(PROFILE_NAMES) == {"smoke", "cpu", "paper"}
    for name in PROFILE_NAMES:
        cfg = get_config(name)
        assert cfg.profile == name
        cfg.validate()


def test_paper_profile_matches_the_bag_of_tricks_schedule():
    cfg = get_config("paper")
    assert cfg.backbone == "resnet50.tv_in1k" and cfg.last_stride == 1  # torchvision's ImageNet weights
    assert cfg.pretrained == "auto"
    assert (cfg.img_height, cfg.img_width) == (256, 128)
    assert (cfg.P, cfg.K, cfg.epochs) == (16, 4, 120)
    assert cfg.lr == pytest.approx(3.5e-4) and cfg.weight_decay == pytest.approx(5e-4)
    assert cfg.lr * cfg.warmup_factor == pytest.approx(3.5e-5) and cfg.warmup_epochs == 10
    assert tuple(cfg.milestones) == (40, 70) and cfg.gamma == pytest.approx(0.1)
    assert cfg.label_smoothing == pytest.approx(0.1) and cfg.triplet_margin == pytest.approx(0.3)
    assert cfg.erasing_prob == pytest.approx(0.5) and cfg.pad_px == 10 and cfg.scale_factor == pytest.approx(0.5)
    assert cfg.small_size == (128, 64)


def test_lr_schedule_warmup_and_steps():
    from sisnet.engine import build_optimizer

    cfg = get_config("paper")
    opt, sched = build_optimizer(cfg, torch.nn.Linear(2, 2))
    lrs = []
    for _ in range(cfg.epochs):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    # epoch e (1-based) uses lrs[e-1]
    assert lrs[0] == pytest.approx(3.5e-5)
    assert lrs[5] == pytest.approx(3.5e-5 + (3.5e-4 - 3.5e-5) * 5 / 10)
    assert lrs[10] == pytest.approx(3.5e-4) and lrs[39] == pytest.approx(3.5e-4)
    assert lrs[40] == pytest.approx(3.5e-5) and lrs[69] == pytest.approx(3.5e-5)
    assert lrs[70] == pytest.approx(3.5e-6) and lrs[119] == pytest.approx(3.5e-6)


def test_overrides_are_flat_and_applied():
    cfg = get_config("cpu", epochs=3, drc=True, lr=1e-3)
    assert (cfg.epochs, cfg.drc, cfg.lr, cfg.profile) == (3, True, 1e-3, "cpu")
    assert get_config("cpu").epochs == PROFILES["cpu"]["epochs"] and get_config("cpu").drc is False  # profile untouched


@pytest.mark.parametrize(
    "profile, overrides, words",
    [
        ("nope", {}, ["nope", "smoke", "cpu", "paper"]),
        ("smoke", {"learning_rate": 1.0}, ["learning_rate", "lr"]),
        ("smoke", {"small_view": "tiny"}, ["small_view", "native", "degrade"]),
        ("smoke", {"backbone": "resnet5O"}, ["resnet5O", "timm"]),
        ("smoke", {"dataset": "market"}, ["market1501", "synthetic"]),
        ("smoke", {"epochs": 0}, ["epochs"]),
        ("smoke", {"epochs": 2.5}, ["epochs", "integer"]),
        ("smoke", {"lr": -1.0}, ["lr"]),
        ("smoke", {"scale_factor": 1.5}, ["scale_factor"]),
        ("smoke", {"metric": "l2"}, ["cosine", "euclidean"]),
        ("smoke", {"drc": True, "siamese": False}, ["siamese"]),
        ("smoke", {"milestones": (5, 3)}, ["milestones"]),
        ("smoke", {"pretrained": "weights/none.pth"}, ["does not exist"]),
        ("smoke", {"amp": "yes"}, ["auto", "bf16"]),
    ],
)
def test_bad_profile_parameter_or_value_names_valid_options(profile, overrides, words):
    with pytest.raises(ValueError) as err:
        get_config(profile, **overrides)
    msg = str(err.value)
    for w in words:
        assert w in msg, (w, msg)


KEY = dict(precision="fp32", data_fingerprint="0123456789abcdef")


def test_run_id_ignores_speed_and_location_fields_only():
    base = get_config("smoke")
    assert base.run_id(**KEY) == get_config("smoke").run_id(**KEY)
    assert len(base.run_id(**KEY)) == 12
    # device and amp are in the key only through the precision they give (sisnet.runs.run_key)
    same = get_config("smoke", num_workers=2, runs_dir="elsewhere", device="cpu", cache_images=False, amp="bf16")
    assert same.run_id(**KEY) == base.run_id(**KEY)
    for change in ({"seed": 1}, {"lr": 1e-3}, {"drc": True}, {"small_view": "degrade"}, {"img_height": 96},
                   {"backbone": "resnet34"}, {"dataset_dir": "data/other"}):
        assert get_config("smoke", **change).run_id(**KEY) != base.run_id(**KEY), change
    assert base.run_id(precision="bf16", data_fingerprint=KEY["data_fingerprint"]) != base.run_id(**KEY)
    assert base.run_id(precision="fp32", data_fingerprint="fedcba9876543210") != base.run_id(**KEY)
    with pytest.raises(ValueError, match="fp32"):
        base.run_id(precision="fp64", data_fingerprint="x")


def test_run_id_is_stable_across_processes():
    code = ("from sisnet.config import get_config; "
            f"print(get_config('cpu', seed=3).run_id(precision='bf16', data_fingerprint='abc'))")
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == get_config("cpu", seed=3).run_id(precision="bf16", data_fingerprint="abc")


def test_config_round_trips_through_a_json_dict():
    cfg = get_config("cpu", milestones=(3, 5), drc=True)
    d = json.loads(json.dumps(cfg.to_dict()))
    back = config_from_dict(d)
    assert isinstance(back, TrainConfig) and back == cfg and back.run_id(**KEY) == cfg.run_id(**KEY)
    with pytest.raises(ValueError, match="unknown parameter"):
        config_from_dict({**d, "bogus": 1})


def test_table2_grid_is_the_papers_six_configurations_plus_the_control():
    assert len(TABLE2_GRID) == 8
    names = {(g["name"], g["loss"]) for g in TABLE2_GRID}
    methods = ("Baseline", "Baseline+LR aug.", "SiSNet", "SiSNet+DRC")
    assert names == {(m, l) for m in methods for l in ("S.", "S.+T.")}
    run_ids = set()
    for g in TABLE2_GRID:
        cfg = get_config("smoke", **g["overrides"])
        assert cfg.triplet == (g["loss"] == "S.+T.")
        assert cfg.siamese == g["name"].startswith("SiSNet")
        assert cfg.drc == (g["name"] == "SiSNet+DRC")
        assert cfg.low_res_aug == (0.5 if g["name"] == "Baseline+LR aug." else 0.0)  # the control: half the images
        run_ids.add(cfg.run_id(**KEY))
    assert len(run_ids) == 8


def test_eval_epochs_cover_the_last_five():
    cfg = get_config("paper")
    ev = cfg.eval_epochs()
    assert ev[-5:] == [116, 117, 118, 119, 120]
    assert 10 in ev and 40 in ev and 11 not in ev
    assert get_config("smoke", epochs=1).eval_epochs() == [1]
