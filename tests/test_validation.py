"""The decisive-experiment machinery: validation split, choice rule, augmentation control, precise BN, learning."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch

from sisnet.config import get_config
from sisnet.data import load_dataset

ROOT = Path(__file__).resolve().parents[1]


def test_validation_split_holds_out_training_identities_only(tiny_synthetic_root):
    ds = load_dataset("synthetic", tiny_synthetic_root)
    val = ds.validation_split(3)
    held = {r.path for r in val.query} | {r.path for r in val.gallery}
    trained = {r.path for r in val.train}
    assert held and not held & trained                       # disjoint images ...
    assert held | trained == {r.path for r in ds.train}      # ... that are exactly the training split
    assert not held & ({r.path for r in ds.query} | {r.path for r in ds.gallery})  # the test split is never used
    assert val.num_train_pids == ds.num_train_pids - 3
    assert sorted({r.pid for r in val.train}) == list(range(val.num_train_pids))  # relabelled for the classifier
    gallery = defaultdict(set)
    for r in val.gallery:
        gallery[r.pid].add(r.camid)
    for q in val.query:  # every validation query has a match from another camera
        assert gallery[q.pid] - {q.camid}
    assert val.variant == "val3" and val.fingerprint() != ds.fingerprint()
    again = ds.validation_split(3)
    assert [r.path for r in again.query] == [r.path for r in val.query]  # the same split for every run
    with pytest.raises(ValueError, match="integer in 1.."):
        ds.validation_split(ds.num_train_pids)


def test_a_val_run_has_its_own_cache_key(tiny_synthetic_root):
    from sisnet.runs import run_key

    ds = load_dataset("synthetic", tiny_synthetic_root)
    test_cfg = get_config("smoke", dataset_dir=str(tiny_synthetic_root))
    val_cfg = test_cfg.replace(split="val")
    assert run_key(val_cfg, ds) != run_key(test_cfg, ds)
    assert run_key(val_cfg, ds) == run_key(val_cfg, ds.validation_split(val_cfg.val_ids))


def test_choice_rule_prefers_the_cheaper_candidate_within_the_tolerance():
    from sisnet.report.validation import choose

    assert choose([90.0, 92.0, 93.0], [True, True, True], 1.5) == 1  # 92 >= 93 - 1.5
    assert choose([90.0, 91.0, 93.0], [True, True, True], 0.0) == 2
    assert choose([99.0, 91.0, 93.0], [False, True, True], 1.5) == 2   # an ineligible candidate is never chosen
    assert choose([50.0, 49.0], [True, True], 1.5) == 0


def test_cpu_profile_is_the_validation_sweeps_choice():
    """The committed sweep's winners are the profile's values (a later choice of a parameter supersedes an earlier)."""
    from sisnet.report.validation import validation_evidence

    tables = ROOT / "results" / "cpu" / "synthetic" / "tables"
    choices, text = validation_evidence(tables, get_config("cpu"))
    assert choices is not None, text
    chosen = choices[choices["chosen"]]
    assert chosen["in_config"].astype(bool).all(), text
    assert text.startswith("The profile uses the validation winner")
    # the sweep never read the test split: every run it made was a split="val" run
    runs = __import__("pandas").read_csv(tables / "validation_runs.csv")
    assert len(runs) and set(chosen["choice"]) <= set(runs["choice"])


def test_low_resolution_augment_replaces_exactly_the_drawn_rows():
    from sisnet.data.transforms import ViewSpec, degrade, low_resolution_augment

    spec = ViewSpec(64, 32, 0.5, "native", 0.5, 3, 0.5)
    x = torch.rand(6, 3, 64, 32)
    replace = torch.tensor([True, False, True, False, False, True])
    out = low_resolution_augment(x, spec, replace)
    assert out.shape == x.shape
    assert torch.equal(out[~replace], x[~replace])
    assert torch.allclose(out[replace], degrade(x[replace], 0.5), atol=1e-6)
    with pytest.raises(ValueError, match="one-branch control"):
        get_config("smoke", siamese=True, low_res_aug=0.5)


def test_precise_bn_replaces_the_running_statistics_by_full_scale_ones(tiny_synthetic_root):
    from sisnet.data.transforms import decode_images
    from sisnet.engine import _train_transform, recalibrate_bn
    from sisnet.model import build_model

    cfg = get_config("smoke", dataset_dir=str(tiny_synthetic_root), precise_bn=2)
    ds = load_dataset("synthetic", tiny_synthetic_root)
    images = decode_images([r.path for r in ds.train], (cfg.img_height, cfg.img_width))
    model = build_model(cfg, ds.num_train_pids)
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    bn.running_mean.fill_(100.0)  # stale statistics (e.g. of the small scale)
    recalibrate_bn(model, cfg, images)
    # what the first BN layer sees: the stem convolution of the same full-scale batches
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(cfg.seed))
    take = order[: cfg.precise_bn * cfg.batch_size].split(cfg.batch_size)
    conv = model.backbone.conv1
    with torch.no_grad():
        means = [conv(_train_transform(cfg.view_spec()).finish(images[i], None, small=False)[0]).mean((0, 2, 3))
                 for i in take]
    assert torch.allclose(bn.running_mean, torch.stack(means).mean(0), atol=1e-4)
    assert model.training  # update_bn restores the mode it found


def test_a_smoke_run_learns(tmp_path_factory):
    """Loss falls and rank-1 beats chance on identities never trained on: a model that learns nothing fails this.

    The "small" synthetic set (50 + 50 identities): on the tiny one (10 test identities, 25 queries) a random-init
    network's rank-1 is within noise of chance whether it learned or not.
    """
    from sisnet.data.synthetic import generate
    from sisnet.engine import fit

    root = tmp_path_factory.mktemp("small") / "synthetic"
    generate(root, size="small", seed=0)
    ds = load_dataset("synthetic", root)
    gallery = [(r.pid, r.camid) for r in ds.gallery]
    chance = np.mean([np.mean([p == q.pid for p, c in gallery if not (p == q.pid and c == q.camid)])
                      for q in ds.query])  # expected rank-1 of a random ranking (about 0.01 here)
    cfg = get_config("smoke", dataset_dir=str(root), runs_dir=str(tmp_path_factory.mktemp("runs")), epochs=5,
                     steps_per_epoch=8, P=8, K=4, lr=1e-3, milestones=(4,), eval_every=0, eval_last=1)
    history = fit(cfg, progress=False)
    losses = [e["loss_total"] for e in history["epochs"]]
    assert losses[-1] < 0.8 * losses[0], losses
    rank1 = [e["rank1"] for e in history["evals"] if e["mode"] == "either"][-1]
    assert rank1 >= 5 * chance, (rank1, chance)


def test_drc_share_is_zero_without_the_drc_weight_and_a_share_otherwise(tiny_synthetic_root):
    from sisnet.model import build_model
    from sisnet.report.gradients import drc_share

    ds = load_dataset("synthetic", tiny_synthetic_root)
    cfg = get_config("smoke", dataset_dir=str(tiny_synthetic_root), drc=True)
    torch.manual_seed(0)
    model = build_model(cfg, ds.num_train_pids)
    on = drc_share(model, cfg, ds, batches=2)
    off = drc_share(model, cfg.replace(drc_weight=0.0), ds, batches=2)
    assert 0 < on["grad_share"] < 1 and 0 < on["loss_share"] < 1
    assert off["grad_share"] == 0 and off["loss_share"] == 0
    # measured in training mode on a copy: the model passed in keeps its mode, weights and BatchNorm statistics
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    drc_share(model, cfg, ds, batches=1)
    assert not model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match="SiSNet\\+DRC"):
        drc_share(model, cfg.replace(drc=False), ds)
