"""Notebook 10 runs on the committed scale-study tables and its worked example checks what the tables say."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import papermill
import pytest

ROOT = Path(__file__).resolve().parent.parent
SCALE = ROOT / "results" / "cpu" / "scale"


@pytest.mark.skipif(not (SCALE / "manifest.json").is_file(), reason="the scale study's results are not committed")
def test_scale_notebook_runs_on_the_committed_tables(tmp_path):
    results = tmp_path / "scale"
    shutil.copytree(SCALE / "tables", results / "tables")
    shutil.copy(SCALE / "manifest.json", results / "manifest.json")
    out = tmp_path / "10.ipynb"
    papermill.execute_notebook(str(ROOT / "notebooks" / "10_scale_study.ipynb"), str(out),
                               parameters={"results_dir": str(results)}, cwd=str(ROOT), progress_bar=False)
    nb = json.loads(out.read_text(encoding="utf-8"))
    text = "".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/markdown", ""))
                   for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", []))
    assert "in scale_paired.csv" in text and "(table: " in text  # the worked example ran its checks
    assert "Primary family on the controlled scale study: of 6 claims" in text
    assert (results / "figures" / "scale_forest.png").stat().st_size > 10_000
