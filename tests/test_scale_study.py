"""The controlled scale study: generator version 4's scale cue, its plan, the protocols, and one tiny end-to-end run."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sisnet.data import Record
from sisnet.data.synthetic import make_config, make_identity
from sisnet.experiments.scale_data import group_mates, protocol_sets


def test_group_mates_share_the_coarse_look_and_differ_only_by_the_code():
    a, b = group_mates()
    assert a.top == b.top and a.bottom == b.bottom and a.hair == b.hair and a.bag == b.bag and a.build == b.build
    assert a.logo is None and a.wristband is None and a.code != b.code
    assert sorted(a.code) == sorted(b.code)  # every code uses each colour equally often: the same mean colour
    classic = make_identity(0, 1)
    assert classic.code is None and make_identity(0, 1, group=None, fine_code=False) == classic


def test_a_far_capture_loses_the_fine_cue_and_a_near_one_keeps_it():
    from sisnet.experiments.scale_data import code_difference

    seen = code_difference([16, 32, 160]).set_index("height_px")["code_difference"]
    assert seen[160] > 50  # the cells are resolved: the two codes differ where their colours differ
    assert seen[16] < 0.3 * seen[160]  # at 16 px most of it blends into one patch, the same for every code
    assert seen[16] < seen[32] < seen[160]  # and the cue fades with distance


def test_scale_plan_puts_every_identity_in_a_far_and_a_near_camera(tmp_path):
    from sisnet.data import load_dataset
    from sisnet.data.synthetic import generate

    root = generate(tmp_path / "s", size="scale-tiny", seed=3)
    cfg = make_config("scale-tiny")
    ds = load_dataset("synthetic", root)
    for recs in (ds.train, ds.query + ds.gallery):
        cams: dict[int, set[int]] = {}
        for r in recs:
            if r.pid > 0:
                cams.setdefault(r.pid, set()).add(r.camid)
        assert cams and all(min(c) < cfg.far_cameras <= max(c) for c in cams.values())
    heights = pd.read_csv(root / "scales.csv")
    cam = heights["name"].str.extract(r"_c(\d)")[0].astype(int) - 1
    far = heights[cam < cfg.far_cameras]["height_px"]
    near = heights[cam >= cfg.far_cameras]["height_px"]
    assert far.max() <= cfg.far_height_px[1] and near.min() >= cfg.near_height_px[0]
    import json

    meta = json.loads((root / "meta.json").read_text())
    assert meta["generator_version"] == 4 and meta["config"]["far_cameras"] == cfg.far_cameras
    # a classic config records version 3 and none of the version-4 fields, as before
    classic = make_config("tiny")
    assert classic.version == 3 and "far_cameras" not in classic.to_json()


def test_protocol_sets_on_hand_made_records():
    # far cameras: camids 0, 1; near: 2, 3. pid 0 = distractor
    q = [Record("q1", 1, 0), Record("q2", 1, 2), Record("q3", 2, 3)]
    g = [Record("g1", 1, 3), Record("g2", 2, 1), Record("g3", 0, 2), Record("g4", 2, 3)]
    sets = protocol_sets(q, g, far_cameras=2)
    fq, fg = sets["far -> near"]
    assert {r.path for r in fq} == {"q1", "g2"} and all(r.camid >= 2 for r in fg)
    assert {r.path for r in fg} == {"q2", "q3", "g1", "g3", "g4"}
    # near -> near: q2 (pid 1, cam 2) matches g1 (cam 3); q3 and g4 (pid 2, cam 3) have no other near camera
    nq, _ = sets["near -> near"]
    assert {r.path for r in nq} == {"q2", "g1"}
    assert sets["cross-scale"][0] == nq
    # standard: Market's lists, queries without a match in another camera dropped (q3's pid-2 match g2 is cam 1)
    assert [r.path for r in sets["standard"][0]] == ["q1", "q2", "q3"]


TINY = dict(backbone="resnet18", pretrained=False, img_height=64, img_width=32, pad_px=3, P=4, K=2,
            steps_per_epoch=2, warmup_epochs=1, eval_every=0, eval_last=1, eval_batch_size=64, precise_bn=0,
            channels_last=False)


def test_tiny_study_end_to_end(tmp_path):
    from sisnet.experiments.scale import PRIMARY_PROTOCOLS, run_experiment
    from sisnet.experiments.scale_tables import scale_tables
    from sisnet.report.registry import TABLES

    kw = dict(data_root=str(tmp_path), seeds=(0, 1), workers=1, size="scale-tiny", overrides=TINY,
              validation_grid=((1e-3, 1), (1e-3, 2)), log=lambda *_: None)
    with pytest.raises(RuntimeError, match="scale check failed"):
        run_experiment(**kw)  # an untrained tiny model has no scale gap to speak of: the study stops
    raw = run_experiment(**kw, force=True)
    tables = scale_tables(raw, "cmd")
    assert set(tables) == {n for n, t in TABLES.items() if t.folder == "scale"}
    for name, frame in tables.items():
        TABLES[name].check(frame)  # every table has its declared columns
    paired = tables[TABLES.scale_paired.name]
    primary = paired[paired["family"] == "primary"]
    assert len(primary) == 3 * len(PRIMARY_PROTOCOLS) and primary["p_holm"].notna().all()
    assert set(primary["protocol"]) == set(PRIMARY_PROTOCOLS) and (primary["metric"] == "mAP").all()
    assert paired.loc[paired["family"] == "exploratory", "p_holm"].isna().all()
    runs = tables[TABLES.scale_runs.name]
    assert set(runs["protocol"]) == {"standard", "far -> near", "near -> near", "cross-scale"}
    assert set(runs["set"]) == {"validation", "test"} and (runs["n_query"] > 0).all()
    assert tables[TABLES.scale_validation.name]["chosen"].sum() == 1
    plateau = tables[TABLES.scale_plateau.name]
    assert len(plateau) == 4 * len(PRIMARY_PROTOCOLS) * 2  # arms x protocols x (validation, test)
    share = tables[TABLES.scale_drc_share.name]
    assert len(share) and (share["share"] >= 0).all() and (share["share"] < 1).all()
