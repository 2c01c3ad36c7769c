"""sisnet.report on hand-made histories: mean/std over seeds, the last-five gap, Table 1 provenance, writing."""
from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd
import pytest

from sisnet import paper, report


def _history(run_id: str, either: list[tuple[float, float]], cascaded: list[tuple[float, float]] | None = None,
             epochs: list[int] | None = None) -> dict:
    """A history with evaluations (rank1, mAP) as fractions at the given epochs."""
    epochs = epochs or list(range(1, len(either) + 1))
    evals = []
    for i, e in enumerate(epochs):
        evals.append({"epoch": e, "mode": "either", "rank1": either[i][0], "rank5": 0.9, "rank10": 0.95,
                      "mAP": either[i][1], "mINP": 0.1})
        if cascaded is not None:
            evals.append({"epoch": e, "mode": "cascaded", "rank1": cascaded[i][0], "rank5": 0.9, "rank10": 0.95,
                          "mAP": cascaded[i][1], "mINP": 0.1})
    return {"run_id": run_id, "config": {"backbone": "resnet18"}, "weights": {"source": "random"},
            "epochs": [{"epoch": e, "loss_total": 1.0, "loss_id": 1.0, "loss_triplet": 0.0, "loss_drc": 0.0,
                        "lr": 3.5e-4, "seconds": 1.0} for e in epochs],
            "evals": evals, "complete": True, "wall_seconds": 3.0}


def test_last_eval_takes_the_latest_epoch_in_percent():
    h = _history("r", [(0.1, 0.05), (0.5, 0.25), (0.8, 0.4)], [(0.2, 0.1), (0.6, 0.3), (0.9, 0.45)])
    ev = report.last_eval(h, "either")
    assert ev["epoch"] == 3
    assert ev["rank1"] == pytest.approx(80.0)
    assert ev["mAP"] == pytest.approx(40.0)
    assert report.last_eval(h, "cascaded")["rank1"] == pytest.approx(90.0)
    with pytest.raises(ValueError, match="no evaluation in mode 'cascaded'"):
        report.last_eval(_history("r", [(0.1, 0.1)]), "cascaded")


def test_summarize_mean_and_sample_std_over_seeds():
    runs = [
        report.GridRun("SiSNet", "S.", seed, _history(f"s{seed}", [(r1, m)]))
        for seed, (r1, m) in enumerate([(0.60, 0.30), (0.70, 0.40), (0.80, 0.35)])
    ] + [report.GridRun("Baseline", "S.", 0, _history("b0", [(0.5, 0.2)]))]
    df = report.runs_frame(runs)
    assert list(df["protocol"].unique()) == [report.PROTOCOL_STANDARD]
    s = report.summarize(df).set_index("method")
    assert s.loc["SiSNet", "rank1_mean"] == pytest.approx(70.0)
    assert s.loc["SiSNet", "rank1_std"] == pytest.approx(10.0)  # ddof=1: sqrt((100+0+100)/2)
    assert s.loc["SiSNet", "mAP_mean"] == pytest.approx(35.0)
    assert s.loc["SiSNet", "mAP_std"] == pytest.approx(5.0)
    assert s.loc["SiSNet", "n_seeds"] == 3
    assert s.loc["Baseline", "n_seeds"] == 1 and math.isnan(s.loc["Baseline", "rank1_std"])
    wide = report.table2_wide(report.summarize(df))
    assert wide.loc[("S.", "SiSNet"), ("standard", "R1")] == "70.0 ± 10.0"
    assert wide.loc[("S.", "Baseline"), ("standard", "R1")] == "50.0"  # one seed: no ± shown
    # rows in the paper's order even though SiSNet came first
    assert list(wide.index.get_level_values("method")) == ["Baseline", "SiSNet"]


def test_cascade_gap_is_the_mean_over_the_last_five_common_epochs():
    either = [(0.10 * i, 0.05 * i) for i in range(1, 8)]  # 7 evaluations
    # gaps (points) rank1: 1, 2, ..., 7; mAP: 2, 4, ..., 14
    cascaded = [(e[0] + 0.01 * i, e[1] + 0.02 * i) for i, e in enumerate(either, start=1)]
    gap = report.cascade_gap(_history("g", either, cascaded))
    assert gap["n_evals"] == 5
    assert gap["epochs"] == [3, 4, 5, 6, 7]
    assert gap["rank1_gap"] == pytest.approx(np.mean([3, 4, 5, 6, 7]))
    assert gap["mAP_gap"] == pytest.approx(np.mean([6, 8, 10, 12, 14]))
    # fewer evaluations than asked: all of them, and n_evals says so
    short = report.cascade_gap(_history("s", either[:2], cascaded[:2]), last_n=5)
    assert short["n_evals"] == 2 and short["rank1_gap"] == pytest.approx(1.5)
    # a cascaded score below the either-scale score gives a negative gap
    neg = report.cascade_gap(_history("n", [(0.5, 0.5)], [(0.4, 0.45)]))
    assert neg["rank1_gap"] == pytest.approx(-10.0) and neg["mAP_gap"] == pytest.approx(-5.0)
    with pytest.raises(ValueError, match="either' or 'cascaded'"):
        report.cascade_gap(_history("x", either))


def test_cascade_gap_ignores_epochs_evaluated_in_one_mode_only():
    h = _history("m", [(0.5, 0.5), (0.5, 0.5)], [(0.6, 0.6), (0.7, 0.7)], epochs=[4, 5])
    h["evals"].append({"epoch": 6, "mode": "either", "rank1": 0.0, "rank5": 0, "rank10": 0, "mAP": 0.0, "mINP": 0})
    gap = report.cascade_gap(h)
    assert gap["epochs"] == [4, 5]
    assert gap["rank1_gap"] == pytest.approx(15.0)


def test_table3_side_by_side_carries_the_papers_values():
    runs = [report.GridRun(m, l, s, _history(f"{m}{l}{s}", [(0.5, 0.4)], [(0.5 + 0.01 * (s + 1), 0.42)]))
            for l in paper.LOSS_TYPES for m in paper.METHODS for s in (0, 1)]
    per_run = report.table3_measured(runs)
    assert len(per_run) == 12
    data, display = report.table3_side_by_side(per_run, "market1501")
    assert len(data) == 6
    row = data[(data["loss"] == "S.") & (data["method"] == "Baseline")].iloc[0]
    assert row["rank1_gap_mean"] == pytest.approx(1.5)
    assert row["rank1_gap_std"] == pytest.approx(math.sqrt(0.5))
    assert row["mAP_gap_mean"] == pytest.approx(2.0)
    assert row["paper_market1501_rank1"] == 0.96 and row["paper_market1501_mAP"] == 2.52
    assert "paper_msmt17_rank1" not in data.columns  # only the measured dataset's paper column
    data_syn, _ = report.table3_side_by_side(per_run, "synthetic")
    assert {"paper_market1501_mAP", "paper_dukemtmcreid_mAP", "paper_msmt17_mAP"} <= set(data_syn.columns)
    assert display.loc[("S.", "Baseline"), ("measured (Market-1501)", "R1")] == "1.50 ± 0.71"


def test_table1_with_measured_marks_every_cell_with_its_provenance():
    df = pd.DataFrame([
        {"loss": "S.+T.", "method": "Baseline", "seed": s, "protocol": "standard", "rank1": 60.0 + s, "mAP": 40.0}
        for s in range(3)
    ] + [
        {"loss": "S.+T.", "method": "SiSNet+DRC", "seed": s, "protocol": "standard", "rank1": 70.0 + 2 * s, "mAP": 50.0}
        for s in range(3)
    ])
    summary = report.summarize(df)
    long = report.table1_with_measured(summary, dataset="synthetic", profile="cpu", seeds=[0, 1, 2],
                                       backbone="mobilenetv2_100", commit="0123456789abcdef0123")
    published = long[long["provenance"] == "published"]
    measured = long[long["provenance"] == "measured"]
    assert len(published) == len(paper.table1()) == 60
    assert (published["source"] == "paper, Table 1").all()
    assert len(measured) == 4  # 2 methods x (rank1, mAP)
    assert set(measured["dataset"]) == {"synthetic"}
    assert measured["source"].str.contains("synthetic").all()
    assert measured["source"].str.contains("profile cpu").all()
    assert measured["source"].str.contains("seeds 0,1,2").all()
    assert measured["source"].str.contains("commit 0123456789ab").all()
    drc = measured[measured["method"].str.startswith("SiSNet+DRC") & (measured["metric"] == "rank1")].iloc[0]
    assert drc["value"] == pytest.approx(72.0) and drc["std"] == pytest.approx(2.0) and drc["n_seeds"] == 3
    wide = report.table1_wide_with_provenance(long)
    cell = wide.loc[("SiSNet+DRC (S.+T., this run)", "measured (cpu)", "mobilenetv2_100"), ("Synthetic", "R1")]
    assert cell == "72.0 ± 2.0 †"
    ours = wide.loc[("Ours", "-", "ResNet")]
    assert ours[("Market-1501", "R1")] == "95.2" and ours[("Synthetic", "R1")] == "-"
    assert ours[("", "provenance")] == "paper, Table 1"
    with pytest.raises(ValueError, match="run the Table 2 grid"):
        report.table1_with_measured(summary, dataset="synthetic", profile="cpu", seeds=[0], backbone="x",
                                    methods=("SiSNet",))


def test_table2_effects_against_the_paper():
    df = pd.DataFrame([{"loss": "S.+T.", "method": m, "seed": 0, "protocol": "standard", "rank1": r, "mAP": r / 2}
                       for m, r in (("Baseline", 50.0), ("SiSNet", 53.0), ("SiSNet+DRC", 58.0))])
    eff = report.table2_effects(report.summarize(df)).set_index("method")
    assert eff.loc["SiSNet", "measured_rank1"] == pytest.approx(3.0)
    assert eff.loc["SiSNet+DRC", "measured_mAP"] == pytest.approx(4.0)
    assert eff.loc["SiSNet", "paper_market1501_rank1"] == pytest.approx(0.6)
    assert eff.loc["SiSNet+DRC", "paper_msmt17_mAP"] == pytest.approx(6.2)


def test_pearson_and_cam_agreement():
    import torch

    a = torch.rand(4, 6, 3)
    corr, mse = report.cam_agreement(a, a.clone())
    assert torch.allclose(corr, torch.ones(4), atol=1e-5) and torch.allclose(mse, torch.zeros(4), atol=1e-7)
    corr_neg, mse_neg = report.cam_agreement(a, -a)
    assert torch.allclose(corr_neg, -torch.ones(4), atol=1e-5) and (mse_neg > 0).all()
    # different sizes: the smaller map is resized to the larger one before comparing
    big = torch.arange(24.0).reshape(1, 6, 4)
    small = torch.nn.functional.interpolate(big[None], size=(3, 2), mode="bilinear", align_corners=False)[0]
    corr_s, _ = report.cam_agreement(big, small)
    assert corr_s.item() > 0.95
    assert torch.isnan(report.pearson_rows(torch.ones(1, 2, 2), torch.rand(1, 2, 2))).all()


def test_save_table_and_figure_write_complete_files(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    df = pd.DataFrame({"drc_weight": [1.0, 10.0], "loss_share_last_epoch": [0.5, np.nan], "loss_drc": 0.375,
                       "loss_total": ["Baseline", "SiSNet|x"], "loss_share": 0.1, "grad_share": 0.2})
    csv, md = report.save_table(tmp_path / "tables", report.TABLES.drc_share, df, title="T", notes="note")
    back = pd.read_csv(csv)
    assert list(back.columns) == list(df.columns) and back["loss_share_last_epoch"].isna().iloc[1]
    text = md.read_text()
    assert text.startswith("# T\n") and "| 1.0 | 0.5 | 0.375 | Baseline |" in text and "SiSNet\\|x" in text
    assert "| - |" in text and text.rstrip().endswith("note")
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1], [0, 1])
    png = report.save_figure(tmp_path / "figures", "f", fig)
    with Image.open(png) as im:
        assert im.format == "PNG" and im.width > 200 and im.height > 200
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]  # no temporary files left
    with pytest.raises(ValueError, match="plain file stem"):
        report.save_table(tmp_path, "../x", df)


def test_setup_rejects_bad_parameters_and_unwritable_results(tmp_path):
    with pytest.raises(ValueError, match="profile"):
        report.setup("fast", "synthetic", tmp_path / "data", tmp_path / "results", chdir=False)
    with pytest.raises(ValueError, match="dataset"):
        report.setup("smoke", "market", tmp_path / "data", tmp_path / "results", chdir=False)
    ctx = report.setup("cpu", "synthetic", tmp_path / "data", tmp_path / "results", chdir=False)
    assert ctx.seeds == [0, 1, 2, 3, 4]
    assert ctx.out_dir == tmp_path / "results" / "cpu" / "synthetic"
    assert ctx.dataset_dir == tmp_path / "data" / "synthetic"
    assert report.setup("smoke", "synthetic", tmp_path / "d", tmp_path / "r", chdir=False).dataset_dir.name == "synthetic-tiny"
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(PermissionError, match="not writable"):
        report.setup("smoke", "synthetic", tmp_path / "data", blocker, chdir=False)


def test_git_commit_ignores_results_but_not_code(tmp_path):
    import shutil
    import subprocess

    if shutil.which("git") is None:
        pytest.skip("git is not installed")

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True,
                       env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                            "GIT_COMMITTER_EMAIL": "t@t", "HOME": str(tmp_path), "PATH": os.environ["PATH"]})

    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "table.md").write_text("old\n")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("init", "-q")
    git("add", "-A")
    git("commit", "-q", "-m", "init")
    clean = report.git_commit(tmp_path)
    assert clean is not None and len(clean) == 40
    (tmp_path / "results" / "table.md").write_text("new\n")  # a re-run rewriting committed results
    assert report.git_commit(tmp_path) == clean
    (tmp_path / "code.py").write_text("x = 2\n")
    assert report.git_commit(tmp_path) == clean + "-dirty"


def test_numbers_in_tables_are_readable():
    from sisnet.config import get_config
    from sisnet.report.io import format_number

    assert [format_number(v) for v in (61.04, 100.0, 0.0, 0.99123, 0.0015, 3.5e-4, -7.25)] == \
        ["61.0", "100.0", "0.0", "0.991", "0.0015", "0.00035", "-7.2"]
    frame = report.config_frame(get_config("cpu"))
    assert frame.shape[1] == 1 and {"small_view", "drc_weight", "backbone"} <= set(frame.index)
    assert frame.loc["small_view", "value"] == "degrade" and len(frame) <= 25


def test_cam_mass_on_mask_hand_cases():
    import torch

    mask = torch.zeros(3, 4, 2, dtype=torch.bool)
    mask[:, :2, :] = True  # the top half is "the person"
    cam = torch.zeros(3, 4, 2)
    cam[0, :2, :] = 1.0  # all of the map on the person
    cam[1, 2:, :] = 1.0  # all of it on the background
    cam[2] = 5.0  # uniform: scores the person's area fraction
    share = report.cam_mass_on_mask(cam, mask)
    assert share.tolist() == pytest.approx([1.0, 0.0, 0.5])
    # min-max normalisation: a constant offset does not move mass onto the background
    assert report.cam_mass_on_mask(cam[:1] + 3.0, mask[:1]).item() == pytest.approx(1.0)


def test_outer_columns_and_activation_share_hand_cases():
    import torch

    from sisnet.model import ModelOutput
    from sisnet.report.cam_measures import activation_share, outer_columns

    outer = outer_columns((2, 8))  # 2 columns on each side of 8
    assert outer.tolist() == [[True, True, False, False, False, False, True, True]] * 2
    assert outer.float().mean().item() == pytest.approx(0.5)

    class Maps(torch.nn.Module):  # returns a fixed feature map: the thing under test is the scoring of it
        def __init__(self, fmap):
            super().__init__()
            self.fmap = fmap

        def forward(self, x):
            return ModelOutput(self.fmap, None, None, None)

    fmap = torch.zeros(2, 3, 2, 8)
    fmap[0, :, :, 3:5] = 1.0  # image 0 responds on the middle columns only
    fmap[1, :, :, :2] = 2.0  # image 1 on the left edge; negative responses are cut by the ReLU
    fmap[1, :, :, 3:5] = -5.0
    mask = ~outer.expand(2, 2, 8)  # "the person" is the middle half
    share = activation_share(Maps(fmap), torch.zeros(2, 3, 4, 16), mask)
    assert share.tolist() == pytest.approx([1.0, 0.0])


def test_backbone_on_person_scores_the_untrained_backbone(tiny_synthetic_root):
    from sisnet.config import get_config
    from sisnet.data import load_dataset

    ds = load_dataset("synthetic", tiny_synthetic_root)
    cfg = get_config("smoke", dataset_dir=str(tiny_synthetic_root))
    row = report.backbone_on_person(cfg, ds, n_images=4).iloc[0]
    assert row["weights"] == "random" and row["n_images"] == 4  # the smoke profile starts from random weights
    assert 0 < row["activation_share_mean"] < 1 and 0.05 < row["mask_area_mean"] < 0.6


def test_synthetic_person_masks_cover_the_person(tiny_synthetic_root):
    from sisnet.data import load_dataset

    ds = load_dataset("synthetic", tiny_synthetic_root)
    masks = ds.person_masks(ds.query)
    assert masks.shape == (len(ds.query), 128, 64) and masks.dtype == bool
    area = masks.mean(axis=(1, 2))
    assert (area > 0.05).all() and (area < 0.6).all()  # a person, not the whole crop
    # the person is darker or brighter than the background locally: the mask is not a fixed template
    assert masks.std(axis=0).max() > 0.3
    assert ds.person_masks(ds.query[:2], (64, 32)).shape == (2, 64, 32)


def test_native_height_protocols_partition_the_queries_and_match_the_full_evaluation(tiny_synthetic_root):
    import numpy as np
    import torch

    from sisnet.config import get_config
    from sisnet.data import load_dataset
    from sisnet.model import build_model
    from sisnet.evaluation import evaluate, evaluate_subsets
    from sisnet.report.measure import native_height_protocols

    ds = load_dataset("synthetic", tiny_synthetic_root)
    cfg = get_config("smoke", dataset_dir=str(tiny_synthetic_root))
    torch.manual_seed(0)
    model = build_model(cfg, ds.num_train_pids).eval()
    protocols = native_height_protocols(ds, (48, 96))
    bins = [name for name in protocols if name.startswith("query height")]
    assert len(bins) == 3
    assert (sum(protocols[b][0].astype(int) for b in bins) == 1).all()  # every query in exactly one bin
    heights = ds.scales().query("subset == 'gallery'")["height_px"].to_numpy()
    cross = next(v for k, v in protocols.items() if k.startswith("native cross-scale"))
    assert (heights[cross[1]] >= 96).all() and (heights[~cross[1]] < 96).all()
    everything = {"all": (np.ones(len(ds.query), bool), np.ones(len(ds.gallery), bool))}
    res = evaluate_subsets(model, ds, cfg, {**protocols, **everything})
    full = evaluate(model, ds, cfg, modes=("either",))["either"]
    assert res["all"] == full  # the same evaluation, not a re-implementation
    assert sum(res[b]["num_valid_queries"] for b in bins) == full["num_valid_queries"]


def test_the_init_comparison_is_off_for_the_paper_profile_and_opt_in():
    from pathlib import Path

    import nbformat

    from sisnet.config import profile_settings

    # cpu: off since its runs are 10 epochs at 128x64 (the grid alone fills the time budget)
    assert [profile_settings(p).init_comparison for p in ("smoke", "cpu", "paper")] == [True, False, False]
    # notebook 02 declares the parameter and trains the comparison only when it is enabled
    nb = nbformat.read(Path(report.__file__).parents[2] / "notebooks" / "02_training.ipynb", as_version=4)
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    assert "init_comparison = None" in params.source
    (cell,) = [c for c in nb.cells if "report.init_comparison(" in c.source]
    head, body = cell.source.split("if init_comparison:\n", 1)
    assert "report.init_comparison(" in body  # the comparison is trained under the resolved switch only
    # the cell's own resolution of the parameter: None -> the profile's choice, True / False -> that
    for profile, given, want in [("paper", None, False), ("smoke", None, True), ("paper", True, True),
                                 ("smoke", False, False)]:
        scope = {"profile": profile, "init_comparison": given}
        exec(head, scope)
        assert scope["init_comparison"] is want, (profile, given)


def test_edit_queries_hand_case():
    import torch

    from sisnet.report.query_edits import FLAT_GREY, PERSON_EDITS, edit_queries

    images = torch.arange(3 * 3 * 4 * 2, dtype=torch.uint8).reshape(3, 3, 4, 2)
    masks = torch.zeros(3, 4, 2, dtype=torch.bool)
    masks[:, :2] = True  # the person fills the top half of every image
    edits = edit_queries(images, masks, [7, 7, 9], seed=0)
    assert list(edits) == list(PERSON_EDITS)
    person, background = masks[:, None].expand_as(images), ~masks[:, None].expand_as(images)
    removed = edits["person removed"]
    assert torch.equal(removed[background], images[background])  # the background is kept
    for i in range(3):  # the person is painted with the median colour of the image's own background
        median = images[i][:, 2:].reshape(3, -1).median(dim=1).values
        assert torch.equal(removed[i][:, :2], median[:, None, None].expand(3, 2, 2))
    for name in ("background swapped", "background flat"):
        assert torch.equal(edits[name][person], images[person])  # the person is kept
    assert (edits["background flat"][background] == FLAT_GREY).all()
    swapped = edits["background swapped"]
    # images 0 and 1 (identity 7) can only take image 2's background (identity 9); image 2 takes 0's or 1's
    assert torch.equal(swapped[0][:, 2:], removed[2][:, 2:]) and torch.equal(swapped[1][:, 2:], removed[2][:, 2:])
    assert any(torch.equal(swapped[2][:, 2:], removed[j][:, 2:]) for j in (0, 1))
    with pytest.raises(ValueError, match="two identities"):
        edit_queries(images, masks, [7, 7, 7])
    with pytest.raises(ValueError, match="whole image"):
        edit_queries(images, torch.ones(3, 4, 2, dtype=torch.bool), [7, 7, 9])
    with pytest.raises(ValueError, match="must agree"):
        edit_queries(images, masks[:2], [7, 7, 9])


def test_coverage_map_share_hand_cases():
    import torch

    from sisnet.report.cam_measures import coverage_map_share

    mask = torch.zeros(2, 4, 4, dtype=torch.bool)
    mask[0, :, :2] = True  # left half
    mask[1, :2, :2] = True  # top-left quarter
    # at the mask's own size the map is the mask: all of its mass on the person
    assert coverage_map_share(mask, (4, 4)).tolist() == pytest.approx([1.0, 1.0])
    # one cell: a uniform map, which scores the person's area
    assert coverage_map_share(mask, (1, 1)).tolist() == pytest.approx([0.5, 0.25])


def test_cell_person_share_tells_local_cells_from_global_ones():
    import torch
    import torch.nn.functional as F

    from sisnet.model import ModelOutput
    from sisnet.report.gradients import cell_person_share

    class Cells(torch.nn.Module):
        """Feature map from the input: each cell the pixels under it (local) or the whole image (global)."""

        def __init__(self, local: bool):
            super().__init__()
            self.local = local
            self.bottleneck = torch.nn.BatchNorm1d(3).eval()
            self.classifier = torch.nn.Linear(3, 2, bias=False)
            torch.nn.init.ones_(self.classifier.weight)

        def forward(self, x):
            fmap = F.avg_pool2d(x, 4)  # (N, 3, 2, 2): one cell per 4x4 block
            if not self.local:
                fmap = fmap.mean((2, 3), keepdim=True).expand_as(fmap)
            pooled = fmap.mean((2, 3))
            return ModelOutput(fmap, pooled, pooled, self.classifier(pooled))

    mask = torch.zeros(1, 8, 8, dtype=torch.bool)
    mask[0, :, :4] = True  # the person fills the left half: the left cells lie on it, the right ones off it
    x = torch.rand(1, 3, 8, 8)
    local = cell_person_share(Cells(local=True), x, mask)
    assert local.flatten().tolist() == pytest.approx([1.0, 0.0, 1.0, 0.0])  # each cell's own footprint
    global_ = cell_person_share(Cells(local=False), x, mask)
    assert global_.flatten().tolist() == pytest.approx([0.5] * 4)  # the person's area, wherever the cell lies


def test_person_reliance_paired_hand_case():
    import pandas as pd

    from sisnet.report.query_edits import person_reliance_paired

    rows = []
    # the S.+T. Baseline loses 10 and 14 rank-1 points to a swapped background (seeds 0, 1), the S. one 4 and 6
    for loss, costs in (("S.", (4.0, 6.0)), ("S.+T.", (10.0, 14.0))):
        for seed, cost in enumerate(costs):
            rows += [{"loss": loss, "method": "Baseline", "seed": seed, "query": "original", "rank1": 90.0, "mAP": 80.0},
                     {"loss": loss, "method": "Baseline", "seed": seed, "query": "background swapped",
                      "rank1": 90.0 - cost, "mAP": 80.0 - cost}]
    out = person_reliance_paired(pd.DataFrame(rows)).set_index("metric")
    assert set(out["protocol"]) == {"background swapped"} and set(out["comparison"]) == {"Baseline: S.+T. - S."}
    assert out.loc["rank1_cost", "mean_diff"] == pytest.approx(7.0)  # (10 - 4 + 14 - 6) / 2
    assert out.loc["rank1_cost", "n_seeds"] == 2
    # the differences 6 and 8: sd sqrt(2), t(0.975, 1) = 12.706 -> half-width 12.706 * sqrt(2) / sqrt(2)
    assert out.loc["rank1_cost", "ci_high"] - 7.0 == pytest.approx(12.706, abs=1e-3)


def test_split_scale_bins_writes_no_index_column(tmp_path):
    from sisnet.report.measure import split_scale_bins

    per_run = pd.DataFrame({"protocol": ["standard", "query height < 48 px", "cross-scale (query x0.5)",
                                         "native cross-scale (query < 48 px, gallery >= 96 px)"], "rank1": [1, 2, 3, 4]})
    columns = report.TABLES.scale_bins.columns
    per_run = per_run.assign(**{c: 0 for c in columns if c not in per_run})[list(columns)]
    paper_rows, bins = split_scale_bins(per_run)
    assert list(paper_rows["rank1"]) == [1, 3] and list(bins["rank1"]) == [2, 4]
    csv, _ = report.save_table(tmp_path, report.TABLES.scale_bins, bins)
    assert pd.read_csv(csv).columns.tolist() == list(columns)


def test_committed_tables_have_named_columns():
    """A pandas index written by mistake shows up as an unnamed first column ('Unnamed: 0' when read back).

    The committed runs of each profile and dataset (``results/<profile>/<dataset>/``); the records of other runs
    (``results/quick``, ``results/scratch``) stay as their commit wrote them."""
    from pathlib import Path

    tables = sorted(Path(__file__).resolve().parents[1].glob("results/*/*/tables/*.csv"))
    assert tables, "no committed tables found"
    unnamed = [str(p) for p in tables if p.read_text().split("\n", 1)[0].split(",")[0] == ""]
    assert not unnamed, f"tables with an unnamed (index) first column: {unnamed}"
