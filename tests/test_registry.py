"""Every result table is declared once (sisnet.report.registry): writers are checked against the declaration,
every committed table matches it, and no table's name is written in more than two files."""
from __future__ import annotations

import ast
import json
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pytest

from sisnet.report import save_table
from sisnet.report.registry import TABLES, declared

ROOT = Path(__file__).resolve().parents[1]


def test_every_committed_table_is_declared_and_has_the_declared_columns():
    checked = 0
    for kind in ("synthetic", "real", "scale"):
        for csv in sorted((ROOT / "results" / "cpu" / kind / "tables").glob("*.csv")):
            table = declared(csv.stem)  # KeyError: a table nobody declared
            assert table.folder == kind, csv
            table.check(pd.read_csv(csv))
            checked += 1
    assert checked >= 45


def test_save_table_refuses_undeclared_names_and_frames_that_differ(tmp_path):
    frame = pd.DataFrame({c: [1.0] for c in TABLES.drc_share.columns})
    csv, md = save_table(tmp_path, TABLES.drc_share.name, frame)
    assert md.read_text().startswith(f"# {TABLES.drc_share.title}\n")  # the declared title by default
    with pytest.raises(ValueError, match="no result table 'drc_shares'.*did you mean drc_share"):
        save_table(tmp_path, "drc_shares", frame)
    with pytest.raises(ValueError, match=r"'drc_share'.*missing columns \['grad_share'\].*undeclared columns \['x'\]"):
        save_table(tmp_path, TABLES.drc_share.name, frame.drop(columns=["grad_share"]).assign(x=1))
    # data-dependent columns match the declared pattern; others do not
    conv = pd.DataFrame({"loss": ["S."], "method": ["Baseline"], "epoch 9": [1.0], "epoch 10": [2.0], "n_seeds": [5]})
    TABLES.convergence_summary.check(conv)
    with pytest.raises(ValueError, match="epochs 10"):
        TABLES.convergence_summary.check(conv.rename(columns={"epoch 10": "epochs 10"}))
    with pytest.raises(AttributeError, match="no result table"):
        TABLES.table_two  # noqa: B018


def _string_constants(source: str) -> set[str]:
    """String literals of ``source``, leaving out ``__all__`` (function names that equal a table's name)."""
    tree = ast.parse(source)
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            skip |= {id(n) for n in ast.walk(node.value)}
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and id(n) not in skip}


#: words that name a table and, as well, something else that must be spelled out: the experiments subcommand that
#: writes the convergence table, and the ProfileSettings field that switches the ImageNet-vs-random comparison on.
#: Their files are counted only where the word sits in a call to save_table / read_table / declared.
OTHER_MEANINGS = {"convergence", "init_comparison"}


def _table_calls(source: str) -> set[str]:
    """String literals passed to a function named save_table, read_table or declared."""
    out = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) in (
                "save_table", "read_table", "declared"):
            out |= {a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)}
    return out


def test_no_table_name_is_written_in_more_than_two_files():
    """Its declaration and at most one other file (the notebook or function that writes it, or one reader):
    every other reader goes through ``TABLES.<name>``."""
    files = [*sorted((ROOT / "sisnet").rglob("*.py")), *sorted((ROOT / "tests").glob("*.py")),
             *sorted((ROOT / "notebooks").glob("*.ipynb"))]
    assert len(files) > 60
    where = defaultdict(set)
    for path in files:
        if path.suffix == ".ipynb":
            cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
            source = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        else:
            source = path.read_text(encoding="utf-8")
        names = (_string_constants(source) - OTHER_MEANINGS) | (_table_calls(source) & OTHER_MEANINGS)
        if path.name == "registry.py":
            names |= _string_constants(source) & OTHER_MEANINGS
        for name in names & set(TABLES):
            where[name].add(path.relative_to(ROOT).as_posix())
    assert all("sisnet/report/registry.py" in where[n] for n in TABLES)
    too_many = {n: sorted(f) for n, f in where.items() if len(f) > 2}
    assert not too_many, too_many
