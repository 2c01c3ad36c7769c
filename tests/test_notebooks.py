"""Execute every companion notebook with papermill (smoke profile, tiny generated data) and read back
what it recorded: tables with the expected rows and columns, valid PNG figures, the manifest.

The whole batch runs once per session (module fixture) through ``sisnet.reproduce``, exactly as
``python -m sisnet.reproduce --profile smoke`` does, into a temporary results folder.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from sisnet import paper, report
from sisnet.report.registry import TABLES, Table
from sisnet.reproduce import NOTEBOOKS, NotebookFailed, main, reproduce

#: every table a notebook writes (sisnet.report.registry), and the smoke profile runs every notebook's tables
#: every notebook table but notebook 08's real-pedestrian one, written only when the real sets are under data_root
#: (tests never have them)
REAL_ONLY = (TABLES.synthetic_on_real.name,)
EXPECTED_TABLES = tuple(t.name for t in TABLES.values() if t.made_by.startswith("notebooks/") and t.name not in REAL_ONLY)
EXPECTED_FIGURES = (  # file names: a figure may share its stem with a table
    "samples.png", "scale_distribution.png", "training_curves.png", "table2.png", "table3.png", "fig3_cam.png",
    "scale_robustness.png", "cam_consistency.png", "ranked_list.png", "footage_frame.png", "footage_search.png",
    "protocol_query.png", "by_hand_cam.png",
)
GRID = {(loss, method) for loss in paper.LOSS_TYPES for method in paper.GRID_METHODS}


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, tiny_synthetic_root):
    base = tmp_path_factory.mktemp("companion")
    data_root = base / "data"
    # The smoke profile reads the tiny synthetic set from <data_root>/synthetic-tiny; notebook 01 finds
    # the session's copy complete (same generator config) and does not regenerate it.
    shutil.copytree(tiny_synthetic_root, data_root / "synthetic-tiny")
    manifest = reproduce("smoke", "synthetic", data_root=data_root, results_dir=base / "results", rerank=True,
                         progress=False, log=lambda *a: None)
    return {"manifest": manifest, "out": base / "results" / "smoke" / "synthetic", "data_root": data_root}


def _table(run, table: Table) -> pd.DataFrame:
    frame = pd.read_csv(table.path(run["out"] / "tables"))
    table.check(frame)  # written with the declared columns
    return frame


def test_manifest_records_the_run(smoke_run):
    out = smoke_run["out"]
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk == json.loads(json.dumps(smoke_run["manifest"]))
    assert on_disk["profile"] == "smoke" and on_disk["dataset"] == "synthetic"
    assert on_disk["parameters"]["seed"] == 0 and on_disk["parameters"]["force"] is False
    assert on_disk["parameters"]["rerank"] is True
    assert on_disk["commit"] is None or len(on_disk["commit"].split("-")[0]) == 40
    assert list(on_disk["notebooks"]) == list(NOTEBOOKS)
    for name, entry in on_disk["notebooks"].items():
        assert entry["wall_seconds"] > 0, name
        assert entry["parameters"]["profile"] == "smoke"
    assert "seeds" in on_disk["notebooks"]["03_ablation.ipynb"]["parameters"]
    assert "seeds" not in on_disk["notebooks"]["01_data.ipynb"]["parameters"]  # only declared parameters are passed
    for pkg in ("torch", "timm", "papermill", "pandas"):
        assert on_disk["packages"][pkg], pkg
    listed = set(on_disk["files"])
    for name in EXPECTED_TABLES:
        assert f"tables/{name}.csv" in listed and f"tables/{name}.md" in listed
    for name in EXPECTED_FIGURES:
        assert f"figures/{name}" in listed
    assert not [n for n in REAL_ONLY if f"tables/{n}.csv" in listed]  # no real data here: section 6 skipped
    # nothing partial or temporary is left behind
    assert not [p for p in out.rglob("*") if p.name.startswith(".") or "FAILED" in p.name or p.suffix == ".tmp"]
    assert not (out / "failed.json").exists()


def test_executed_notebooks_are_complete_and_small(smoke_run):
    for name in NOTEBOOKS:
        path = smoke_run["out"] / name
        assert path.is_file(), name
        assert path.stat().st_size < 5 * 2**20, f"{name} is {path.stat().st_size} bytes"
        nb = nbformat.read(path, as_version=4)
        assert not nb.metadata["papermill"]["exception"], name
        errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
        assert not errors, name
        injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
        assert len(injected) == 1 and 'profile = "smoke"' in injected[0].source, name


def test_figures_are_valid_pngs_of_sensible_size(smoke_run):
    from PIL import Image

    for name in EXPECTED_FIGURES:
        path = smoke_run["out"] / "figures" / name
        with Image.open(path) as im:
            im.verify()
        with Image.open(path) as im:
            assert im.format == "PNG", name
            assert im.width > 200 and im.height > 200, (name, im.size)
            assert "profile smoke" in im.info.get("Source", ""), name


def test_protocol_worked_query_equals_evaluate_rank(smoke_run):
    """Notebook 01's AP, computed hit by hit from the labelled ranked list, is evaluate_rank's for that query."""
    import numpy as np

    from sisnet.metrics import evaluate_rank

    ranked = _table(smoke_run, TABLES.protocol_query).sort_values("gallery_index")
    summary = _table(smoke_run, TABLES.protocol_summary).iloc[0]
    assert list(ranked["gallery_index"]) == list(range(len(ranked)))  # the whole gallery was saved
    query = ranked[ranked["status"] == "true match"]
    q_pid, q_cam = int(summary["query_pid"]), int(summary["query_camera"])  # cameras from 1, as in the file names
    assert set(query["pid"]) == {q_pid} and q_cam not in set(query["camera"])
    res = evaluate_rank(ranked["distance"].to_numpy()[None], [q_pid], ranked["pid"].to_numpy(), [q_cam],
                        ranked["camera"].to_numpy(), max_rank=len(ranked))
    assert summary["num_matches"] == len(query) >= 1
    assert summary["AP"] == pytest.approx(res["mAP"], abs=1e-9)
    assert summary["INP"] == pytest.approx(res["mINP"], abs=1e-9)
    assert np.asarray(res["cmc"])[int(summary["first_hit_rank"]) - 1] == 1.0


RESULTS_NOTEBOOKS = tuple(n for n in NOTEBOOKS if not n.startswith(("00", "01")))  # 00 and 01 teach, they report no results


@pytest.mark.parametrize("name", RESULTS_NOTEBOOKS)
def test_results_notebooks_render_their_claims_with_the_generic_renderer(smoke_run, name):
    nb = nbformat.read(smoke_run["out"] / name, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert not [c for c in code if "discuss_" in c.source]  # no bespoke prose function is left
    rendered = [c for c in code if "report.render_claims(" in c.source]
    if name.startswith(("03", "05", "06")):  # the notebooks with paired tables
        text = "".join(o.get("data", {}).get("text/markdown", "") for c in rendered for o in c.outputs)
        assert " claims, " in text and "not distinguishable" in text, text  # a family sentence, made in the run
        assert "supported" not in text.replace("0 supported", "")  # one seed: no interval, nothing decided


def test_table2_claims_are_tested_with_paired_intervals(smoke_run):
    paired = _table(smoke_run, TABLES.table2_paired)
    assert list(paired.columns) == ["loss", "comparison", "protocol", "metric", "mean_diff", "ci_low", "ci_high",
                                    "n_seeds", "verdict"]
    assert set(paired["verdict"]) <= {"supported", "reversed", "not distinguishable"}
    # the paper's claims and the control comparisons, each for rank-1 and mAP under every protocol
    assert len(paired) == (len(paper.CLAIMS) + len(paper.CONTROL_COMPARISONS)) * 2 * paired["protocol"].nunique()
    # the smoke profile has one seed: no interval, so no comparison may be called either way
    assert (paired["n_seeds"] == 1).all() and (paired["verdict"] == "not distinguishable").all()
    bins = _table(smoke_run, TABLES.scale_bins)
    assert {"query height < 48 px", "query height 48-96 px", "query height >= 96 px"} <= set(bins["protocol"])
    assert (bins.groupby(["loss", "method"]).size() == 4).all() and "num_valid_queries" in bins
    # the triplet diagnosis scores the Baseline's runs twice on the same features: the distractor-free gallery is
    # a sub-problem, and its standard rows are the standard protocol's numbers
    diag = _table(smoke_run, TABLES.triplet_diagnosis)
    assert set(diag["method"]) == {"Baseline"} and set(diag["loss"]) == {"S.", "S.+T."}
    std = diag[diag["protocol"] == "standard"].set_index("loss")["rank1"]
    table2 = _table(smoke_run, TABLES.table2_runs)
    base = table2[(table2["method"] == "Baseline") & (table2["protocol"] == "standard")].set_index("loss")["rank1"]
    assert std.to_dict() == pytest.approx(base.to_dict())
    assert (diag[diag["loss"] == "S."]["loss_triplet_last"] == 0).all() and (diag[diag["loss"] == "S.+T."]["loss_triplet_first"] > 0).all()
    assert len(_table(smoke_run, TABLES.triplet_diagnosis_paired)) == 4  # 2 protocols x rank-1 / mAP


def test_dataset_and_training_tables(smoke_run):
    summary = _table(smoke_run, TABLES.dataset_summary).set_index("split")
    assert list(summary.index) == ["train", "query", "gallery"]
    assert {"ids", "images", "cameras"} <= set(summary.columns)
    assert summary.loc["train", "ids"] >= 8
    epochs = _table(smoke_run, TABLES.training_epochs)
    assert list(epochs["epoch"]) == [1, 2]  # the smoke profile trains 2 epochs
    assert {"loss_total", "loss_id", "loss_triplet", "loss_drc", "lr"} <= set(epochs.columns)
    assert (epochs["loss_drc"] > 0).all()  # notebook 02 trains SiSNet+DRC by default
    evals = _table(smoke_run, TABLES.training_evals)
    assert set(evals["mode"]) == {"either", "cascaded"}


def test_table2_has_the_grid_under_both_protocols(smoke_run):
    t2 = _table(smoke_run, TABLES.table2)
    assert {"loss", "method", "protocol", "rank1_mean", "rank1_std", "mAP_mean", "mAP_std", "n_seeds"} <= set(t2.columns)
    assert set(t2["protocol"]) == {"standard", "cross-scale (query x0.5)", "standard + re-ranking"}
    for protocol, grp in t2.groupby("protocol"):
        assert set(zip(grp["loss"], grp["method"])) == GRID, protocol
    assert (t2["n_seeds"] == 1).all()
    assert t2[["rank1_mean", "mAP_mean"]].stack().between(0, 100).all()
    runs = _table(smoke_run, TABLES.table2_runs)
    native = runs["protocol"].str.startswith(("query height", "native cross-scale"))
    assert (~native).sum() == 24 and native.sum() == 8 * 4 and runs["run_id"].nunique() == 8
    md = (smoke_run["out"] / "tables" / "table2.md").read_text()
    assert "SiSNet+DRC" in md and "cross-scale (query x0.5) R1" in md
    assert "profile smoke" in md.splitlines()[-1]  # every table is stamped with what made it


def test_other_view_table_has_the_headline_protocols_and_shares_its_one_branch_runs(smoke_run, tmp_path):
    """``python -m sisnet.experiments other-view``: the grid with the other second view, measured under the
    headline's protocols; only the siamese runs differ (the one-branch ones never see a second view)."""
    from sisnet.experiments import other_view
    from sisnet.report import setup

    ctx = setup("smoke", "synthetic", data_root=smoke_run["data_root"], results_dir=tmp_path, chdir=False)
    other = "native" if ctx.config().small_view == "degrade" else "degrade"
    runs_dir = smoke_run["data_root"] / "runs"
    before = set(runs_dir.iterdir())
    try:
        other_view.run(ctx, overrides=None, command="cmd")
        assert len(set(runs_dir.iterdir()) - before) == 4  # the siamese runs; the one-branch ones from the cache
    finally:  # the smoke run's runs cache stays the grid's eight runs (another test counts them)
        for new_run in set(runs_dir.iterdir()) - before:
            shutil.rmtree(new_run)
    out = pd.read_csv(TABLES.table2_other_view_runs.path(ctx.tables_dir))
    head = _table(smoke_run, TABLES.table2_runs)
    head = head[head["protocol"] != "standard + re-ranking"]  # the smoke notebook run adds re-ranking
    assert set(out["protocol"]) == set(head["protocol"]) and len(out) == len(head)
    assert (out["second_view"] == other).all() and (out["command"] == "cmd").all()
    keys = ["loss", "method", "protocol"]
    both = out.merge(head, on=keys, suffixes=("", "_head"))
    one_branch = both["method"].str.startswith("Baseline")
    assert (both.loc[one_branch, "run_id"] == both.loc[one_branch, "run_id_head"]).all()
    assert (both.loc[one_branch, "rank1"] == both.loc[one_branch, "rank1_head"]).all()
    assert (both.loc[~one_branch, "run_id"] != both.loc[~one_branch, "run_id_head"]).all()
    summary = pd.read_csv(TABLES.table2_other_view.path(ctx.tables_dir))
    assert set(summary["protocol"]) == {"standard", "cross-scale (query x0.5)"}  # the native bins are not Table 2
    paired = pd.read_csv(TABLES.table2_other_view_paired.path(ctx.tables_dir))
    assert set(paired["protocol"]) == set(head["protocol"])


def test_triplet_schedule_check_reuses_the_headline_runs_and_pairs_by_seed(smoke_run, tmp_path):
    """``python -m sisnet.experiments triplet-schedule``: Baseline S. and S.+T. at the schedule (the headline's own
    runs, same numbers) and at twice it (new runs), every seed; S.+T. - S. paired by seed at each length."""
    from sisnet.experiments import triplet_schedule
    from sisnet.report import setup

    ctx = setup("smoke", "synthetic", data_root=smoke_run["data_root"], results_dir=tmp_path, chdir=False)
    runs_dir = smoke_run["data_root"] / "runs"
    before = set(runs_dir.iterdir())
    try:
        triplet_schedule.run(ctx, overrides=None, command="cmd")
        assert len(set(runs_dir.iterdir()) - before) == 2 * len(ctx.seeds)  # the x2 runs; the x1 ones from the cache
    finally:  # the smoke run's runs cache stays the grid's eight runs (another test counts them)
        for new_run in set(runs_dir.iterdir()) - before:
            shutil.rmtree(new_run)
    out = pd.read_csv(TABLES.triplet_schedule_runs.path(ctx.tables_dir))
    assert len(out) == 2 * 2 * len(ctx.seeds) and set(out["loss"]) == {"S.", "S.+T."} and (out["command"] == "cmd").all()
    x1, x2 = out[out["protocol"] == "schedule x1"], out[out["protocol"] == "schedule x2"]
    assert (x2["epochs"].to_numpy() == 2 * x1["epochs"].to_numpy()).all()
    head = _table(smoke_run, TABLES.table2_runs)
    head = head[(head["protocol"] == "standard") & (head["method"] == "Baseline")]
    both = x1.merge(head, on=["loss", "seed"], suffixes=("", "_head"))
    assert len(both) == len(x1) and (both["run_id"] == both["run_id_head"]).all()
    assert both["rank1"].to_numpy() == pytest.approx(both["rank1_head"].to_numpy())
    paired = pd.read_csv(TABLES.triplet_schedule_paired.path(ctx.tables_dir))
    assert set(paired["protocol"]) == {"schedule x1", "schedule x2"} and (paired["n_seeds"] == len(ctx.seeds)).all()


def test_notebook_scale_protocol_defaults_are_the_library_constants():
    """Notebook 03's parameters and ``python -m sisnet.experiments other-view`` measure the same protocols."""
    import ast

    from sisnet.report.measure import CROSS_SCALE, HEIGHT_EDGES

    nb = nbformat.read(Path(__file__).resolve().parents[1] / "notebooks" / "03_ablation.ipynb", as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    values = {t.id: ast.literal_eval(node.value) for node in ast.parse(cell.source).body
              if isinstance(node, ast.Assign) for t in node.targets}
    assert values["cross_scale"] == CROSS_SCALE and tuple(values["height_edges"]) == HEIGHT_EDGES


def test_table1_and_table3_against_the_paper(smoke_run):
    t1 = _table(smoke_run, TABLES.table1)
    assert (t1["provenance"] == "published").sum() == 60
    measured = t1[t1["provenance"] == "measured"]
    assert len(measured) == 4 and set(measured["dataset"]) == {"synthetic"}
    assert measured["source"].str.contains("profile smoke").all()
    t3 = _table(smoke_run, TABLES.table3)
    assert set(zip(t3["loss"], t3["method"])) == GRID
    ref = paper.table3()
    assert t3.loc[t3["method"] == paper.CONTROL, "paper_market1501_mAP"].isna().all()  # the control is not the paper's
    for _, row in t3[t3["method"] != paper.CONTROL].iterrows():
        for d in paper.PAPER_DATASETS:
            want = ref[(ref["loss"] == row["loss"]) & (ref["method"] == row["method"]) & (ref["dataset"] == d)
                       & (ref["metric"] == "mAP")]["gap"].item()
            assert row[f"paper_{d}_mAP"] == want
    assert (_table(smoke_run, TABLES.table3_runs)["n_evals"] == 2).all()  # smoke: evaluations after epochs 1 and 2


def test_scale_robustness_and_cam_tables(smoke_run):
    rob = _table(smoke_run, TABLES.scale_robustness)
    assert set(rob["method"]) == set(paper.METHODS)
    assert sorted(rob["query_scale"].unique()) == [0.25, 0.375, 0.5, 0.75, 1.0]
    assert len(rob) == 15
    # at full resolution the robustness study reproduces the standard protocol of the same runs (Table 2)
    std = _table(smoke_run, TABLES.table2_runs)
    std = std[(std["protocol"] == "standard") & (std["loss"] == "S.+T.") & (std["seed"] == 0)].set_index("method")
    full = rob[rob["query_scale"] == 1.0].set_index("method")
    for method in paper.METHODS:
        assert full.loc[method, "mAP"] == pytest.approx(std.loc[method, "mAP"], abs=1e-3)
        assert full.loc[method, "rank1"] == pytest.approx(std.loc[method, "rank1"], abs=1e-3)
    cons = _table(smoke_run, TABLES.cam_consistency)
    assert len(cons) == 3 * 4 and 1.0 not in set(cons["query_scale"])
    assert cons["corr_mean"].between(-1, 1).all() and (cons["mse_mean"] >= 0).all()
    fig3 = _table(smoke_run, TABLES.fig3_cam_consistency)
    assert len(fig3) == 3 * 3 and set(fig3["method"]) == set(paper.METHODS)
    # Fig. 3's input panels are the views the profile feeds, and its identities are test identities
    from sisnet.config import get_config

    cfg = get_config("smoke")
    assert set(fig3["full_input_hw"]) == {f"{cfg.img_height}x{cfg.img_width}"}
    assert set(fig3["small_input_hw"]) == {"{}x{}".format(*cfg.small_size)}
    query_names = {p.name for p in (smoke_run["data_root"] / "synthetic-tiny" / "query").iterdir()}
    assert set(fig3["path"]) <= query_names
    agreement = _table(smoke_run, TABLES.fig3_cam_agreement).set_index("method")
    assert list(agreement.index) == list(paper.METHODS) and (agreement["n_images"] == 3).all()
    assert agreement.loc["SiSNet", "corr_mean"] == pytest.approx(fig3[fig3["method"] == "SiSNet"]["corr"].mean())
    on_person = _table(smoke_run, TABLES.cam_on_person)  # every configuration of the grid and seed, both losses
    assert set(zip(on_person["loss"], on_person["method"])) == GRID and len(on_person) == len(GRID)
    assert on_person["person_share_mean"].between(0, 1).all() and on_person["mask_area_mean"].between(0.05, 0.6).all()
    assert on_person["activation_share_mean"].between(0, 1).all() and (on_person["outer_area"] == 0.5).all()
    assert (on_person["coverage_map_share_mean"] > on_person["mask_area_mean"]).all()  # a map that follows the person
    # retrieval with edited queries: every configuration and seed, every edit; unedited queries score exactly the
    # standard protocol of the same runs in Table 2
    reliance = _table(smoke_run, TABLES.person_reliance)
    n_seeds = on_person["seed"].nunique()
    assert set(zip(reliance["loss"], reliance["method"])) == GRID
    assert len(reliance) == len(GRID) * n_seeds * len(report.PERSON_EDITS) and reliance["rank1"].between(0, 100).all()
    runs = _table(smoke_run, TABLES.table2_runs)
    keys = ["loss", "method", "seed"]
    standard = runs[(runs["protocol"] == "standard") & (runs["mode"] == "either")].set_index(keys)
    original = reliance[reliance["query"] == "original"].set_index(keys)
    assert original["rank1"].to_dict() == pytest.approx(standard.loc[original.index, "rank1"].to_dict())
    assert original["mAP"].to_dict() == pytest.approx(standard.loc[original.index, "mAP"].to_dict())
    paired = _table(smoke_run, TABLES.person_reliance_paired)  # S.+T. - S. per method and edit, rank-1 and mAP cost
    assert len(paired) == len(paper.METHODS) * (len(report.PERSON_EDITS) - 1) * 2
    assert (paired["n_seeds"] == n_seeds).all()
    sources = _table(smoke_run, TABLES.cam_cell_sources)
    assert set(zip(sources["loss"], sources["method"])) == GRID
    assert (sources["cell_share_min"] <= sources["cell_share_mean"]).all()
    assert (sources["cell_share_mean"] <= sources["cell_share_max"]).all() and sources["cell_share_max"].le(1).all()
    backbone = _table(smoke_run, TABLES.cam_on_person_backbone).iloc[0]
    assert backbone["weights"] == "random" and backbone["n_images"] == on_person["n_images"].iloc[0]
    drc = _table(smoke_run, TABLES.drc_share).iloc[0]
    assert 0 < drc["grad_share"] < 1 and 0 < drc["loss_share_last_epoch"] < 1
    # the two views' maps over many query images, every configuration of the notebook's loss and every seed
    views = _table(smoke_run, TABLES.two_view_agreement)
    assert set(views["map"]) == set(report.MAP_KINDS) and set(views["loss"]) == {"S.+T."}
    assert len(views) == len(paper.GRID_METHODS) * n_seeds * len(report.MAP_KINDS)
    assert views["corr_mean"].between(-1, 1).all() and (views["mse_mean"] >= 0).all()
    views_summary = _table(smoke_run, TABLES.two_view_agreement_summary)
    assert (views_summary["n_seeds"] == n_seeds).all() and list(dict.fromkeys(views_summary["map"])) == list(report.MAP_KINDS)


def test_convergence_and_validation_sections(smoke_run):
    conv = _table(smoke_run, TABLES.convergence)
    assert set(zip(conv["loss"], conv["method"])) == GRID and set(conv["epoch"]) == {1, 2}
    summary = _table(smoke_run, TABLES.convergence_summary)
    assert {"last_change", "flat"} <= set(summary.columns) and len(summary) == len(GRID)
    nb = json.loads((smoke_run["out"] / "03_ablation.ipynb").read_text())
    text = json.dumps(nb)
    assert "No validation sweep in" in text  # the smoke results have none: the notebook says how to run one


def test_init_comparison_records_the_weights_each_run_started_from(smoke_run):
    runs = _table(smoke_run, TABLES.init_runs)
    assert len(runs) == 2 and list(runs["seed"]) == [0, 0]
    # smoke starts from random weights, so both arms are the same cached Table 2 run
    assert set(runs["weights"]) == {"random"} and runs["run_id"].nunique() == 1
    summary = _table(smoke_run, TABLES.init_comparison).set_index("init")
    assert summary.loc["difference (profile - random)", "rank1_mean"] == 0.0
    t2 = _table(smoke_run, TABLES.table2_runs)
    base = t2[(t2["protocol"] == "standard") & (t2["method"] == "Baseline") & (t2["loss"] == "S.+T.")]
    assert runs["rank1"].iloc[0] == pytest.approx(base["rank1"].item(), abs=1e-6)


def test_footage_notebook_converts_extracts_searches_and_evaluates(smoke_run):
    crops = _table(smoke_run, TABLES.footage_dataset).set_index("split")
    assert list(crops.index) == ["train", "query", "gallery"] and (crops["images"] > 0).all()
    ev = _table(smoke_run, TABLES.footage_eval)
    assert set(ev["method"]) == set(paper.METHODS)
    # three protocols per model: pseudo-cameras, the same track with and without its crops within 2 s
    from sisnet.footage import PROTOCOL_NO_EXCLUSION, PROTOCOL_PSEUDO_CAMERAS

    assert ev.groupby("method")["protocol"].apply(list).map(tuple).unique().tolist() == [
        (PROTOCOL_PSEUDO_CAMERAS, PROTOCOL_NO_EXCLUSION, "same track within 2 s excluded")]
    assert (ev.loc[ev["protocol"] == "same track within 2 s excluded", "junk_per_query"] > 0).all()
    assert ev[["rank1", "mAP"]].stack().between(0, 100).all()
    assert (ev["num_valid_queries"] > 0).all() and (ev["gallery"] == crops.loc["gallery", "images"]).all()
    demo = smoke_run["data_root"] / "demo"
    rendered = _rendered_sequence(smoke_run)
    feats = list(demo.glob(f"{rendered.name}-*.safetensors"))
    assert len(feats) == 1
    from sisnet.extract import load_features

    fs = load_features(feats[0])
    assert len(fs) == crops.loc["gallery", "images"] and fs.meta["mode"] == "either"
    assert all(p.endswith(".jpg") for p in fs.paths)


def _rendered_sequence(run) -> Path:
    """The street sequence notebook 08 rendered (frames in img1/, gt/gt.txt) in the smoke run's data root."""
    found = [p for p in (run["data_root"] / "demo").iterdir() if (p / "img1").is_dir() and (p / "gt" / "gt.txt").is_file()]
    assert len(found) == 1, found
    return found[0]


def test_footage_notebook_runs_from_a_video_file(smoke_run, tmp_path, video_copy, monkeypatch):
    """Notebook 08 alone (papermill, smoke profile) with ``mot_sequence`` a video: the rendered demo sequence encoded
    with PyAV, gt/gt.txt beside it and no seqinfo.ini (the frame rate is the video's). The trained runs come from the
    smoke run's cache (same data root), so only the footage part is computed."""
    from sisnet.reproduce import NOTEBOOK_DIR, _execute

    video = video_copy(_rendered_sequence(smoke_run), tmp_path / "footage", "street-video.mp4", seqinfo=False)
    out = tmp_path / "results" / "smoke" / "synthetic"
    out.mkdir(parents=True)
    params = {"profile": "smoke", "dataset": "synthetic", "data_root": str(smoke_run["data_root"]),
              "results_dir": str(tmp_path / "results"), "seed": 0, "mot_sequence": str(video)}
    monkeypatch.setenv("SISNET_BATCH", "1")  # as sisnet.reproduce runs the kernels
    _execute(NOTEBOOK_DIR / "08_your_images.ipynb", out / "08_your_images.ipynb", params, NOTEBOOK_DIR.parent,
             "python3", False)
    nb = nbformat.read(out / "08_your_images.ipynb", as_version=4)
    assert not nb.metadata["papermill"]["exception"]
    assert str(video) in next(c.source for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
    # the same annotations give the same crops as the frame folder; the video's 10 fps gives the 2 s window
    from_frames = _table(smoke_run, TABLES.footage_dataset).set_index("split")
    from_video = pd.read_csv(TABLES.footage_dataset.path(out / "tables")).set_index("split")
    pd.testing.assert_frame_equal(from_video[["ids", "images"]], from_frames[["ids", "images"]])
    ev = pd.read_csv(TABLES.footage_eval.path(out / "tables"))
    assert set(ev["method"]) == set(paper.METHODS) and (ev["num_valid_queries"] > 0).all()
    excluded = ev[ev["protocol"] == "same track within 2 s excluded"]
    assert len(excluded) == len(paper.METHODS) and (excluded["junk_crops"] > 0).all()
    assert excluded["junk_total"].tolist() == _table(smoke_run, TABLES.footage_eval).query(
        "protocol == 'same track within 2 s excluded'")["junk_total"].tolist()  # the rule depends on times only
    assert (out / "figures" / "footage_frame.png").is_file() and (out / "figures" / "footage_search.png").is_file()
    assert (smoke_run["data_root"] / "demo" / "street-video.mp4-reid" / "mot_index.csv").is_file()


def test_training_runs_are_shared_between_notebooks(smoke_run):
    # Notebooks 02 and 04-08 reuse the eight grid runs of notebook 03 instead of training their own.
    runs = [p for p in (smoke_run["data_root"] / "runs").iterdir() if (p / "history.json").is_file()]
    assert len(runs) == 8


def _stand_in_notebooks(tmp_path: Path, body=lambda name: "print(profile)") -> Path:
    """The companion's notebooks reduced to their parameters cell and one cell ``body(name)``: fast stand-ins."""
    src = Path(__file__).resolve().parent.parent / "notebooks"
    nb_dir = tmp_path / "notebooks"
    nb_dir.mkdir()
    for name in NOTEBOOKS:
        nb = nbformat.read(src / name, as_version=4)
        params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        nb.cells = params + [nbformat.v4.new_code_cell(body(name))]
        nbformat.write(nb, nb_dir / name)
    return nb_dir


def test_a_failing_notebook_stops_the_batch_and_leaves_no_manifest(tmp_path):
    nb_dir = _stand_in_notebooks(tmp_path, lambda name: 'raise ValueError("boom in the second notebook")'
                                 if name.startswith("02") else "print(profile)")
    out = tmp_path / "results" / "smoke" / "synthetic"
    out.mkdir(parents=True)
    (out / "manifest.json").write_text("{}")  # an older complete run
    with pytest.raises(NotebookFailed) as info:
        reproduce("smoke", "synthetic", data_root=tmp_path / "data", results_dir=tmp_path / "results",
                  notebook_dir=nb_dir, cwd=tmp_path, only="01,02,03", progress=False, log=lambda *a: None)
    assert info.value.notebook == "02_training.ipynb"
    assert "boom in the second notebook" in str(info.value.__cause__)
    assert not (out / "manifest.json").exists()
    failed = json.loads((out / "failed.json").read_text())
    assert failed["failed_notebook"] == "02_training.ipynb" and failed["completed"] == ["01_data.ipynb"]
    assert (out / "01_data.ipynb").is_file()
    assert not (out / "02_training.ipynb").exists() and (out / "02_training.FAILED.ipynb").is_file()
    assert not (out / "03_ablation.ipynb").exists()


def test_a_partial_rerun_updates_its_entry_and_keeps_the_whole_set(tmp_path, capfd):
    nb_dir = _stand_in_notebooks(tmp_path)
    kw = dict(data_root=tmp_path / "data", results_dir=tmp_path / "results", notebook_dir=nb_dir, cwd=tmp_path,
              progress=False, log=lambda *a: None)
    full = reproduce("smoke", "synthetic", **kw)
    again = reproduce("smoke", "synthetic", only="08", **kw)
    assert list(again["notebooks"]) == list(NOTEBOOKS)
    assert again["last_run"]["notebooks"] == ["08_your_images.ipynb"]
    for name in NOTEBOOKS[:-1]:  # untouched entries are kept as they were
        assert again["notebooks"][name] == full["notebooks"][name]
    assert again["notebooks"][NOTEBOOKS[-1]]["finished_at"] >= full["notebooks"][NOTEBOOKS[-1]]["finished_at"]
    total = sum(e["wall_seconds"] for e in again["notebooks"].values())
    assert again["wall_seconds_total"] == pytest.approx(total, abs=0.02)
    # the total covers all eight notebooks, not just the one re-run
    assert again["wall_seconds_total"] > again["notebooks"][NOTEBOOKS[-1]]["wall_seconds"]
    # the kernels run over IPC sockets: no "running over TCP without encryption" warning from any of them
    assert "without encryption" not in capfd.readouterr().err


def test_cli_rejects_bad_arguments(capsys):
    assert main(["--profile", "fast"]) == 2
    assert "choose one of" in capsys.readouterr().err
    assert main(["--profile", "smoke", "--only", "99"]) == 2
    assert "--only '99'" in capsys.readouterr().err
