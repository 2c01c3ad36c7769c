"""Notebooks 09 and 10 run on their experiments' committed tables, and their worked examples check what the tables say."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import papermill
import pytest

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results" / "cpu"


def _run_on_committed(kind: str, notebook: str, tmp_path: Path) -> tuple[Path, dict, str]:
    """Execute ``notebooks/<notebook>`` on a copy of ``results/cpu/<kind>``'s tables and manifest: the copy's folder,
    the executed notebook and the text of its outputs."""
    results = tmp_path / kind
    shutil.copytree(RESULTS / kind / "tables", results / "tables")
    shutil.copy(RESULTS / kind / "manifest.json", results / "manifest.json")
    out = tmp_path / notebook
    papermill.execute_notebook(str(ROOT / "notebooks" / notebook), str(out), parameters={"results_dir": str(results)},
                               cwd=str(ROOT), progress_bar=False)
    nb = json.loads(out.read_text(encoding="utf-8"))
    text = "".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/markdown", ""))
                   for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", []))
    return results, nb, text


def test_real_notebook_runs_on_the_committed_tables(tmp_path):
    results, nb, text = _run_on_committed("real", "09_real_pedestrians.ipynb", tmp_path)
    assert "targets mean by hand" in text and "(table: " in text  # the two worked examples ran their checks
    assert "Primary family on real pedestrians: of 6 claims" in text  # the summary reads the family
    assert (results / "figures" / "real_forest.png").stat().st_size > 10_000
    headings = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]
    assert any("What you will learn" in h for h in headings) and any(h.startswith("## Exercises") for h in headings)


@pytest.mark.skipif(not (RESULTS / "scale" / "manifest.json").is_file(), reason="the scale study's results are not committed")
def test_scale_notebook_runs_on_the_committed_tables(tmp_path):
    results, _, text = _run_on_committed("scale", "10_scale_study.ipynb", tmp_path)
    assert "in scale_paired.csv" in text and "(table: " in text  # the worked example ran its checks
    assert "Primary family on the controlled scale study: of 6 claims" in text
    assert (results / "figures" / "scale_forest.png").stat().st_size > 10_000
