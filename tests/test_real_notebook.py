"""Notebook 09 runs on the committed real-pedestrian tables and its worked examples check what the tables say."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import papermill

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT / "results" / "cpu" / "real"


def test_real_notebook_runs_on_the_committed_tables(tmp_path):
    results = tmp_path / "real"
    shutil.copytree(REAL / "tables", results / "tables")
    shutil.copy(REAL / "manifest.json", results / "manifest.json")
    out = tmp_path / "09.ipynb"
    papermill.execute_notebook(str(ROOT / "notebooks" / "09_real_pedestrians.ipynb"), str(out),
                               parameters={"results_dir": str(results)}, cwd=str(ROOT), progress_bar=False)
    nb = json.loads(out.read_text(encoding="utf-8"))
    text = "".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/markdown", ""))
                   for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", []))
    assert "targets mean by hand" in text and "(table: " in text  # the two worked examples ran their checks
    assert "Primary family on real pedestrians: of 6 claims" in text  # the summary reads the family
    assert (results / "figures" / "real_forest.png").stat().st_size > 10_000
    headings = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]
    assert any("What you will learn" in h for h in headings) and any(h.startswith("## Exercises") for h in headings)
