"""README's results block is what the committed results produce (no hand-typed numbers that can drift)."""
from __future__ import annotations

import shutil
from pathlib import Path

from sisnet.report.readme import END, START, readme_block, results_block, update_readme

ROOT = Path(__file__).resolve().parent.parent


def test_committed_readme_block_equals_the_generator_output(monkeypatch):
    monkeypatch.chdir(ROOT)  # the block names the results folder relative to the project root
    assert readme_block(ROOT / "README.md") == results_block("results", "cpu", "synthetic"), (
        "README.md's results block is stale: run `python -m sisnet.reproduce --update-readme`.")


def test_update_rewrites_only_the_block(tmp_path, monkeypatch):
    results = tmp_path / "results"
    shutil.copytree(ROOT / "results" / "cpu" / "synthetic" / "tables", results / "cpu" / "synthetic" / "tables")
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nintro\n\n{START}\nold numbers: 99.9\n{END}\n\n## After\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert update_readme(readme, "results") is True
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("# Title\n\nintro\n\n") and text.endswith(f"{END}\n\n## After\n")
    assert "99.9" not in text and "### Table 2" in text and "No complete run" in text  # no manifest copied
    assert update_readme(readme, "results") is False  # idempotent
