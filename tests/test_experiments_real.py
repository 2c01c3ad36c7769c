"""The real experiment's statistics and tables on hand-made numbers (no real data is ever read here)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from scipy import stats as sps

from sisnet.experiments.real import (ARMS, PRIMARY_FAMILY, PRIMARY_PROTOCOLS, choose_within_se, dg_frame,
                                     paired_real)
from sisnet.experiments.real_data import cross_scale_images
from sisnet.data import Record, native_heights
from sisnet.stats import holm_family


def _family(t_values, n=5):
    """Rows whose unadjusted 95 % intervals have standard error 1 and the given t statistics."""
    half = sps.t.ppf(0.975, n - 1)
    return pd.DataFrame({"comparison": [f"c{i}" for i in range(len(t_values))], "mean_diff": t_values,
                         "ci_low": np.array(t_values) - half, "ci_high": np.array(t_values) + half, "n_seeds": n})


def test_holm_against_a_hand_computed_case():
    out = holm_family(_family([5.0, 3.0, 1.0]))
    p = [2 * sps.t.sf(t, 4) for t in (5.0, 3.0, 1.0)]  # 0.0075, 0.0400, 0.3739
    np.testing.assert_allclose(out["p_value"], p)
    np.testing.assert_allclose(out["p_holm"], [3 * p[0], max(3 * p[0], 2 * p[1]), max(2 * p[1], p[2])])
    # the second claim is supported unadjusted (p = 0.04) but not after Holm (0.08)
    assert out["ci_low"][1] > 0 and out["verdict_holm"].tolist() == ["supported", "not distinguishable",
                                                                      "not distinguishable"]
    # step 1 is tested at 0.05 / 3; step 2 fails at 0.05 / 2, and the level stays there for step 3
    np.testing.assert_allclose(out["ci_high_holm"] - out["mean_diff"],
                               [sps.t.ppf(1 - 0.05 / 6, 4), sps.t.ppf(1 - 0.05 / 4, 4), sps.t.ppf(1 - 0.05 / 4, 4)])
    assert ((out["p_holm"] < 0.05) == (out["verdict_holm"] != "not distinguishable")).all()


def test_holm_never_supports_an_interval_that_contains_zero():
    out = holm_family(_family([-6.0, 0.5, 8.0]))
    assert out.loc[1, "verdict_holm"] == "not distinguishable"
    assert out.loc[0, "verdict_holm"] == "reversed" and out.loc[2, "verdict_holm"] == "supported"
    assert (out["ci_low_holm"] <= out["ci_low"]).all() and (out["ci_high_holm"] >= out["ci_high"]).all()


def test_one_se_rule_chooses_differently_from_a_fixed_tolerance():
    frame = pd.DataFrame({"epochs": [5, 10], "mAP": [50.0, 51.2], "se_diff": [0.8, 0.0]})
    assert choose_within_se(frame) == 1  # 1.2 points behind, more than its 0.8 SE: the longer schedule
    fixed = frame[frame["mAP"].max() - frame["mAP"] <= 1.5].sort_values("epochs").index[0]
    assert fixed == 0  # a fixed 1.5-point tolerance would take the shorter one
    frame.loc[0, "se_diff"] = 1.3
    assert choose_within_se(frame) == 0


def _evals(effect: float) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(5):
        for m, method in enumerate(ARMS):
            for target in ("viper", "prid", "grid", "ilids", "cuhk03"):
                for split in range(2):
                    for protocol in ("standard", "cross-scale"):
                        rows.append({"method": method, "loss": "S.+T.", "seed": seed, "schedule": "1x", "set": target,
                                     "split": split, "protocol": protocol, "height_bin": "all",
                                     "rank1": 40 + effect * m + rng.normal(0, 0.1), "mAP": 30 + effect * m
                                     + rng.normal(0, 0.1), "n_query": 10, "n_gallery": 20})
    return pd.DataFrame(rows)


def test_dg_mean_and_primary_family():
    runs = dg_frame(_evals(effect=2.0))
    dg = runs[runs["protocol_name"] == "targets mean, standard"]
    assert len(dg) == 5 * len(ARMS)  # the in-domain set is not a target
    paired = paired_real(runs)
    primary = paired[paired["family"] == "primary"]
    assert len(primary) == len(PRIMARY_FAMILY) * len(PRIMARY_PROTOCOLS)
    assert set(primary["protocol"]) == set(PRIMARY_PROTOCOLS) and primary["p_holm"].notna().all()
    # ARMS order Baseline, +LR aug., SiSNet, +DRC: every primary claim is +2 x (position gap) points
    sis_base = primary[primary["comparison"] == "SiSNet - Baseline"]
    np.testing.assert_allclose(sis_base["mean_diff"], 4.0, atol=0.2)
    assert (primary["verdict_holm"] == "supported").all()
    assert (paired.loc[paired["family"] == "exploratory", "p_value"].isna()).all()  # no Holm columns outside the family


def test_dg_family_with_no_effect_is_not_supported():
    paired = paired_real(dg_frame(_evals(effect=0.0)))
    primary = paired[paired["family"] == "primary"]
    inside = (primary["ci_low_holm"] <= 0) & (primary["ci_high_holm"] >= 0)
    assert inside.any()  # with no effect, some adjusted interval holds 0 (else the check below is empty)
    assert (primary.loc[inside, "verdict_holm"] == "not distinguishable").all()


def test_cross_scale_queries_are_not_the_training_operator(tmp_path):
    from sisnet.data.transforms import ViewSpec, make_small_view

    rng = np.random.default_rng(1)
    path = tmp_path / "p.png"
    Image.fromarray(rng.integers(0, 255, (200, 80, 3), dtype=np.uint8)).save(path)
    out = cross_scale_images([str(path)], (128, 64))
    assert out.shape == (1, 3, 128, 64) and out.dtype == torch.uint8
    full = torch.from_numpy(np.array(Image.open(path).resize((64, 128), Image.BILINEAR))).permute(2, 0, 1)
    spec = ViewSpec(128, 64, 0.5, "degrade", 0.5, 0, 0.0)
    trained = make_small_view(full[None].float() / 255, spec)
    assert (out.float() / 255 - trained).abs().mean() > 0.02  # another operator than the branches' view
    assert out.float().std() < full.float().std()  # fine detail is gone at 38 px


def test_native_heights_and_bad_file(tmp_path):
    for h in (67, 384):
        Image.new("RGB", (30, h)).save(tmp_path / f"{h}.png")
    recs = [Record(str(tmp_path / f"{h}.png"), 1, 0) for h in (67, 384)]
    assert list(native_heights(recs)) == [67, 384]
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="bad.png"):
        native_heights([Record(str(tmp_path / "bad.png"), 1, 0)])


def test_packed_copy_loads_the_same_splits_and_keeps_native_heights(tmp_path):
    from test_real_datasets import (make_cuhk01, make_cuhk03_extracted, make_grid, make_ilids, make_prid,
                                    make_viper)

    from sisnet.data import load_dataset
    from sisnet.experiments.pack import pack_real

    src = tmp_path / "data"
    make_cuhk03_extracted(src / "cuhk03")
    make_cuhk01(src)
    for make, name in ((make_viper, "viper"), (make_prid, "prid"), (make_grid, "grid"), (make_ilids, "ilids")):
        make(src / name, peta=True)
    sizes = pack_real(src, tmp_path / "packed", size_hw=(32, 16))
    assert set(sizes) == {"cuhk03", "cuhk01", "viper", "prid", "grid", "ilids"} and min(sizes.values()) > 0
    for name in ("cuhk03", "cuhk01", "viper", "prid", "grid", "ilids"):
        a, b = load_dataset(name, src / name, split_id=0), load_dataset(name, tmp_path / "packed" / name, split_id=0)
        assert [(r.pid, r.camid) for r in a.query + a.gallery] == [(r.pid, r.camid) for r in b.query + b.gallery]
        assert list(native_heights(a.query)) == list(native_heights(b.query))  # the sidecar, not the 32 px files
        with Image.open(b.query[0].path) as im:
            assert im.size == (16, 32) and im.format == "JPEG"


def test_models_trained_elsewhere_are_scored_on_every_real_set(tmp_path):
    """score_on_real on generated fixtures of every layout: each set's split mean and the targets' mean, both
    protocols, for a model of another profile; real_sets_present says when the folders are there."""
    from test_real_datasets import (_img, make_cuhk01, make_cuhk03_extracted, make_grid, make_ilids, make_prid,
                                    make_viper)

    from sisnet.config import get_config
    from sisnet.experiments.real import real_sets_present, score_on_real
    from sisnet.experiments.real_data import IN_DOMAIN_IDS, TARGETS
    from sisnet.model import build_model
    from sisnet.report.runs import TrainedModel

    root = tmp_path / "data"
    assert not real_sets_present(root)
    make_cuhk03_extracted(root / "cuhk03")
    for pid in range(4, IN_DOMAIN_IDS + 8):  # enough CUHK03 training identities to hold out the in-domain test
        for index in (0, 5):
            _img(root / "cuhk03" / "labeled" / "train" / f"{pid:04d}_{index:02d}.jpg", pid)
    make_cuhk01(root)
    for make, name in ((make_viper, "viper"), (make_prid, "prid"), (make_grid, "grid"), (make_ilids, "ilids")):
        make(root / name, peta=True)
    assert real_sets_present(root)
    cfg = get_config("smoke")
    torch.manual_seed(0)
    tm = TrainedModel("Baseline", "S.+T.", 3, build_model(cfg, 5).eval(), cfg, tmp_path)
    out = score_on_real({"Baseline": tm}, root, "synthetic (smoke)", with_imagenet=False)
    assert set(out["set"]) == {"targets mean", "cuhk03-val", "cuhk03", *TARGETS}
    assert set(out["protocol"]) == {"standard", "cross-scale"} and set(out["seed"]) == {3}
    assert (out["trained_on"] == "synthetic (smoke)").all() and out["rank1"].between(0, 100).all()
    std = out[out["protocol"] == "standard"].set_index("set")
    assert std.loc["targets mean", "mAP"] == pytest.approx(std.loc[list(TARGETS), "mAP"].mean())
