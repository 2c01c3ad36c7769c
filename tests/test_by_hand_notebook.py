"""Notebook 00 (SiSNet by hand) runs offline in seconds, and its hand-made DRC loss is checked against DRCLoss."""
from __future__ import annotations

import json
import time
from pathlib import Path

import papermill
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "00_sisnet_by_hand.ipynb"


def _outputs_text(nb: dict) -> str:
    return "".join("".join(o.get("text", "")) for c in nb["cells"] if c["cell_type"] == "code"
                   for o in c.get("outputs", []))


@pytest.mark.parametrize("profile", ["cpu", "smoke"])  # small_view "degrade" (cpu) and "native" (smoke)
def test_by_hand_notebook_runs_and_asserts_the_drc_loss(tmp_path, profile):
    out = tmp_path / "00.ipynb"
    start = time.perf_counter()
    papermill.execute_notebook(str(NOTEBOOK), str(out), parameters={"profile": profile, "results_dir": str(tmp_path)},
                               cwd=str(ROOT), progress_bar=False)
    assert time.perf_counter() - start < 120  # well under a minute on an idle core; slack for a busy machine
    nb = json.loads(out.read_text(encoding="utf-8"))
    errors = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c["outputs"] if o["output_type"] == "error"]
    assert not errors
    sources = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    check = [s for s in sources if "DRCLoss(" in s and "assert abs(" in s and "< 1e-6" in s]
    assert len(check) == 1, "one cell asserts the hand-made DRC loss equals DRCLoss to 1e-6"
    text = _outputs_text(nb)
    assert "sisnet.losses.DRCLoss" in text and "equal to 1e-6" in text
    assert "raw CAMs equal sisnet.cam.raw_cam" in text
    figure = tmp_path / profile / "synthetic" / "figures" / "by_hand_cam.png"
    assert figure.stat().st_size > 5_000


def test_by_hand_notebook_is_committed_stripped_and_teaches():
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c["outputs"] and c["execution_count"] is None for c in code)
    assert "parameters" in code[0]["metadata"].get("tags", [])
    markdown = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]
    assert "## What you will learn" in markdown[0]
    quotes = [m for m in markdown if "> *Paper:*" in m]
    assert len(quotes) >= 3 and all("Our reading" in m or "our reading" in m.lower() for m in quotes[1:])
