"""README's results block is what the committed results produce (no hand-typed numbers that can drift)."""
from __future__ import annotations

import shutil
from pathlib import Path

from sisnet.report.readme import END, REAL_END, REAL_START, START, readme_block, real_block, results_block, update_readme

ROOT = Path(__file__).resolve().parent.parent


def test_committed_readme_block_equals_the_generator_output(monkeypatch):
    monkeypatch.chdir(ROOT)  # the block names the results folder relative to the project root
    assert readme_block(ROOT / "README.md") == results_block("results", "cpu", "synthetic"), (
        "README.md's results block is stale: run `python -m sisnet.reproduce --update-readme`.")


def test_committed_real_block_equals_the_generator_output(monkeypatch):
    monkeypatch.chdir(ROOT)
    assert readme_block(ROOT / "README.md", REAL_START, REAL_END) == real_block("results", "cpu"), (
        "README.md's real-pedestrian block is stale: run `python -m sisnet.reproduce --update-readme`.")


def test_real_block_without_results_says_how_to_make_them(tmp_path):
    assert "python -m sisnet.experiments real" in real_block(tmp_path, "cpu")


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


def test_time_section_reads_the_quick_manifest_and_estimates_the_default_seeds(tmp_path):
    import json

    import pandas as pd

    from sisnet.report.readme import _minutes, _time_section

    assert _minutes(119.6) == "2 min 0 s" and _minutes(61.2) == "1 min 1 s"
    assert _time_section(tmp_path, "cpu", "synthetic", None) == []  # no quick run: nothing said
    quick = tmp_path / "quick" / "cpu" / "synthetic"
    quick.mkdir(parents=True)
    (quick / "manifest.json").write_text(json.dumps({
        "wall_seconds_total": 600.0, "parameters": {"seeds": [4]}, "commit": "abc",
        "notebooks": {"01_data.ipynb": {"wall_seconds": 20.0}, "03_ablation.ipynb": {"wall_seconds": 580.0}},
        "platform": {"usable_cores": 2}, "load_average": {"start": "load average 1", "end": "load average 2"}}))
    cost = pd.DataFrame({"mean_seconds": [100.0, 140.0]})  # one seed of the grid: 240 s of run wall time
    text = _time_section(tmp_path, "cpu", "synthetic", cost)[0]
    assert "--quick --seed 4" in text and "took 10 min 0 s" in text
    # the cpu profile's 5 seeds: 600 s + 4 more seeds x 240 s / 2 workers = 1080 s
    assert "5 seeds: about 18 min 0 s" in text


def test_time_section_reports_a_timed_make_reproduce_instead_of_the_estimate(tmp_path):
    import json

    import pandas as pd

    from sisnet.report.readme import _time_section

    quick = tmp_path / "quick" / "cpu" / "synthetic"
    quick.mkdir(parents=True)
    (quick / "manifest.json").write_text(json.dumps({
        "wall_seconds_total": 600.0, "parameters": {"seeds": [4]}, "commit": "abc",
        "notebooks": {"01_data.ipynb": {"wall_seconds": 600.0}}, "platform": {"usable_cores": 2}}))
    scratch = tmp_path / "scratch" / "cpu" / "synthetic"
    scratch.mkdir(parents=True)
    (scratch / "manifest.json").write_text(json.dumps({
        "wall_seconds_total": 3000.0, "notebooks": {"01_data.ipynb": {"wall_seconds": 10.0},
                                                    "03_ablation.ipynb": {"wall_seconds": 2990.0}}}))
    timing = {"command": "make reproduce PROFILE=cpu DATASET=synthetic", "procedure": "fresh clone", "exit_status": 0,
              "commit": "0123456789abcdef",
              "wall_seconds": 3100, "install_seconds": 95, "usable_cores": 2,
              "load_average": {"start": "0.50 0.60 0.70", "end": "1.90 1.95 2.00"}}
    (scratch / "timing.json").write_text(json.dumps(timing))
    cost = pd.DataFrame({"mean_seconds": [100.0, 140.0]})
    text = _time_section(tmp_path, "cpu", "synthetic", cost)[0]
    assert "`make reproduce PROFILE=cpu DATASET=synthetic` (fresh clone) took 51 min 40 s in all" in text
    assert "`make install` 1 min 35 s" in text and "the notebooks 50 min 0 s (01 10 s, 03 2990 s)" in text
    assert "0.50 0.60 0.70 at its start" in text and "commit `0123456789ab`" in text
    assert "an estimate" not in text  # measured: the estimate from the quick run is not repeated
    assert "--quick --seed 4" in text  # the quick run is still reported
    (scratch / "timing.json").write_text(json.dumps({**timing, "exit_status": 2}))
    assert "FAILED (exit status 2) after 51 min 40 s" in _time_section(tmp_path, "cpu", "synthetic", cost)[0]
    (scratch / "manifest.json").unlink()  # a failed notebook leaves no manifest: the paragraph still renders
    failed = _time_section(tmp_path, "cpu", "synthetic", cost)[0]
    assert "after 51 min 40 s in all: `make install` 1 min 35 s;" in failed and "the notebooks" not in failed.split("--quick")[0]
