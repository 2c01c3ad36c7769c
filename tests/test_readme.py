"""README's generated blocks and the claims files are what the committed results produce; README answers first."""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from sisnet.report.readme import BLOCKS, answer_block, claims_markdown, readme_block, update_readme, use_block
from sisnet.report.registry import HOLM_COLUMNS, TABLES

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def test_committed_readme_blocks_and_claims_equal_the_generator_output(monkeypatch):
    monkeypatch.chdir(ROOT)  # the blocks name the results folders relative to the project root
    for start, end, make in BLOCKS:
        assert readme_block(README, start, end) == make("results", "cpu", "synthetic"), (
            f"README.md's {start} block is stale: run `python -m sisnet.reproduce --update-readme`.")
    for kind in ("synthetic", "real"):
        assert (ROOT / "results" / "cpu" / kind / "claims.md").read_text(encoding="utf-8") == \
            claims_markdown("results", "cpu", kind), f"results/cpu/{kind}/claims.md is stale: --update-readme"


def test_readme_is_short_and_answers_in_its_first_40_lines():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) < 300, len(lines)
    longest = max(range(len(lines)), key=lambda i: len(lines[i]))
    assert len(lines[longest]) < 400, f"README.md line {longest + 1} has {len(lines[longest])} characters"
    top = "\n".join(lines[:40])
    assert "<!-- ANSWER-END -->" in top  # the whole answer is in the first 40 lines
    for kind, table in (("synthetic", TABLES.table2_paired), ("real", TABLES.real_paired)):
        assert f"results/cpu/{kind}/claims.md" in top
    experiments = [kind for kind in ("synthetic", "real", "scale") if (ROOT / "results" / "cpu" / kind / "claims.md").is_file()]
    for comparison in ("SiSNet - Baseline+LR aug.", "SiSNet+DRC - SiSNet", "SiSNet - Baseline (S.+T.)"):
        assert top.count(f"| {comparison}") == len(experiments), comparison  # one row per experiment
    assert "of the gradient" in top and "augmentation control" in top


def test_generated_text_speaks_to_the_reader_only(monkeypatch):
    monkeypatch.chdir(ROOT)
    text = answer_block() + use_block() + "".join(claims_markdown("results", "cpu", k) for k in ("synthetic", "real"))
    text += BLOCKS[2][2]("results", "cpu", "synthetic")
    for word in ("issue", "goal"):
        assert word not in text.lower(), word


def _scale_fixture(results: Path) -> None:
    """A tiny stand-in for the scale study's folder: two primary claims (one decided) and one exploratory."""
    tables = results / "cpu" / "scale" / "tables"
    tables.mkdir(parents=True)
    rows = pd.DataFrame({"family": ["primary", "primary", "exploratory"], "loss": "S.+T.",
                         "comparison": ["SiSNet - Baseline+LR aug.", "SiSNet+DRC - SiSNet", "SiSNet - Baseline"],
                         "protocol": ["scale bins, standard"] * 3, "metric": "mAP", "mean_diff": [4.0, 0.2, 9.9],
                         "ci_low": [2.5, -1.0, 8.0], "ci_high": [5.5, 1.4, 11.8], "n_seeds": 8,
                         "verdict": ["supported", "not distinguishable", "supported"], "p_value": [0.001, 0.7, 0.0],
                         "p_holm": [0.002, 0.7, None], "ci_low_holm": [2.1, -1.3, None], "ci_high_holm": [5.9, 1.7, None],
                         "verdict_holm": ["supported", "not distinguishable", None], "command": "cmd"})
    assert tuple(rows.columns) == HOLM_COLUMNS
    rows.to_csv(tables / "scale_paired.csv", index=False)
    (tables.parent / "figures").mkdir()
    (tables.parent / "figures" / "scale_forest.png").write_bytes(b"png")
    pd.DataFrame([{"wall_seconds": 3725.0, "load_average_start": "1.0 1.0 1.0", "load_average_end": "2.0 2.0 2.0",
                   "seeds": "0-7", "workers": 2, "lr": 0.001, "epochs": 12}]).to_csv(tables / "scale_settings.csv", index=False)


def test_the_scale_study_is_rendered_when_its_folder_exists_and_skipped_cleanly_when_not(tmp_path, monkeypatch):
    results = tmp_path / "results"
    for kind in ("synthetic", "real"):
        shutil.copytree(ROOT / "results" / "cpu" / kind / "tables", results / "cpu" / kind / "tables")
    monkeypatch.chdir(tmp_path)
    without = answer_block("results", "cpu")
    assert "scale study" not in without.lower() and claims_markdown("results", "cpu", "scale") is None
    _scale_fixture(results)
    text = answer_block("results", "cpu")
    assert "**Controlled scale study** (`results/cpu/scale/`, notebook 10): generated far/near people, seeds 0-7, lr 0.001" in text
    assert "62 min 5 s" in text and "1.0 1.0 1.0 at its start" in text
    assert "[Forest plot](results/cpu/scale/figures/scale_forest.png)" in text
    # the primary family alone is tallied and tabled; the decided claim is named in the take-away
    assert "Primary family: of 2 claims, 1 supported, 0 reversed, 1 not distinguishable (Holm-adjusted)." in text
    assert "| SiSNet - Baseline+LR aug. (S.+T.) | +4.0 [+2.1, +5.9] **supported** |" in text
    assert "+9.9" not in text and "SiSNet - Baseline+LR aug. scale bins, standard **supported**" in text
    claims = claims_markdown("results", "cpu", "scale")
    assert "Exploratory (1 comparisons" in claims and "+9.9 points, 95 % [+8.0, +11.8]" in claims
    readme = tmp_path / "README.md"
    shutil.copy(README, readme)
    update_readme(readme, "results")
    lines = readme.read_text(encoding="utf-8").splitlines()
    assert "<!-- ANSWER-END -->" in lines[:40] and (results / "cpu" / "scale" / "claims.md").is_file()


def test_update_rewrites_only_the_blocks_and_is_idempotent(tmp_path, monkeypatch):
    results = tmp_path / "results"
    shutil.copytree(ROOT / "results" / "cpu" / "synthetic" / "tables", results / "cpu" / "synthetic" / "tables")
    (start, end, _), (s2, e2, _) = BLOCKS[0], BLOCKS[2]
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\n{start}\nold: 99.9\n{end}\n\nkept\n\n{s2}\nold\n{e2}\n\n## After\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert update_readme(readme, "results") is True
    text = readme.read_text(encoding="utf-8")
    assert text.startswith(f"# Title\n\n{start}\n## The answer\nEach experiment") and text.endswith(f"{e2}\n\n## After\n")
    assert "99.9" not in text and "\nkept\n" in text and "### Table 2" in text and "No complete run" in text
    assert (results / "cpu" / "synthetic" / "claims.md").is_file()
    assert update_readme(readme, "results") is False  # idempotent
    readme.write_text(f"# Title\n\n{start}\nno end marker\n", encoding="utf-8")
    try:
        update_readme(readme, "results")
    except ValueError as err:
        assert "README.md must hold exactly one" in str(err)
    else:
        raise AssertionError("a README with one marker must be refused")
