"""The checks on synthetic data as ``python -m sisnet.experiments <check>``: their command lines, their bad-input
errors, and the validation sweep's tables (written after each choice, merged from parts)."""
from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from sisnet.experiments.__main__ import CHECKS, main
from sisnet.experiments.checks import command_line, read_overrides


def test_the_checks_are_subcommands_of_the_experiments_not_flags_of_the_notebook_runner(capsys):
    from sisnet import reproduce

    assert set(CHECKS) == {"validate", "convergence", "triplet-schedule", "other-view"}
    for flag in ("--validate", "--convergence", "--triplet-schedule", "--other-view", "--overrides"):
        with pytest.raises(SystemExit):
            reproduce.main([flag])
        assert "unrecognized arguments" in capsys.readouterr().err
    for name in CHECKS:  # each check's help names the command that runs it
        with pytest.raises(SystemExit):
            main([name, "--help"])
        assert f"python -m sisnet.experiments {name}" in capsys.readouterr().out.replace("\n", " ")


def test_the_command_column_is_the_exact_command_line():
    assert command_line(["validate", "--choices", "DRC weight lambda", "--profile", "cpu"]) == (
        "python -m sisnet.experiments validate --choices 'DRC weight lambda' --profile cpu")


def test_bad_overrides_and_choices_fail_before_any_set_up_and_say_what_to_give(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a check that got as far as setting up would write under ./results
    missing = tmp_path / "none.json"
    assert main(["convergence", "--overrides", str(missing)]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "validation_chosen.json" in err
    (tmp_path / "list.json").write_text("[1, 2]")
    assert main(["other-view", "--overrides", str(tmp_path / "list.json")]) == 2
    assert "JSON object" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("{lr: 1}")
    assert main(["triplet-schedule", "--overrides", str(tmp_path / "bad.json")]) == 2
    assert "is not JSON" in capsys.readouterr().err
    assert main(["validate", "--choices", "learning rate,no such choice"]) == 2
    err = capsys.readouterr().err
    assert "['no such choice'] not in the sweep" in err and "DRC weight lambda" in err
    assert not (tmp_path / "results").exists()
    (tmp_path / "ok.json").write_text('{"milestones": [4], "lr": 0.001}')
    assert read_overrides(tmp_path / "ok.json") == {"milestones": (4,), "lr": 0.001}  # as TrainConfig takes it


def test_the_sweep_writes_its_tables_and_merges_from_parts(tiny_synthetic_root, tmp_path):
    from sisnet.experiments import validate
    from sisnet.report import setup
    from sisnet.report.validation import Candidate, Choice

    data_root = tmp_path / "data"
    shutil.copytree(tiny_synthetic_root, data_root / "synthetic-tiny")
    lr = Choice("learning rate", (Candidate("Adam 0.001", {"lr": 1e-3}), Candidate("Adam 0.01", {"lr": 1e-2})),
                (("Baseline", "S."),))
    drc = Choice("DRC weight", (Candidate("lambda 1", {"drc_weight": 1.0}),), (("SiSNet+DRC", "S."),))
    parts = []
    for k, sweep in enumerate(([lr], [drc])):
        ctx = setup("smoke", "synthetic", data_root, tmp_path / f"part{k}", chdir=False)
        base = None if k == 0 else json.loads((parts[0][0] / validate.CHOSEN_FILE).read_text())
        chosen = validate.run(ctx, overrides=base, command=f"cmd {k}", sweep=sweep, seeds=(0,), log=None)
        choices = pd.read_csv(ctx.tables_dir / "validation_choices.csv")
        runs = pd.read_csv(ctx.tables_dir / "validation_runs.csv")
        assert (choices["command"] == f"cmd {k}").all() and (runs["command"] == f"cmd {k}").all()
        assert choices["chosen"].sum() == 1 and len(runs) == len(sweep[0].candidates)
        winner = json.loads(choices.loc[choices["chosen"], "overrides"].iloc[0])
        assert chosen == {**(base or {}), **winner}  # the winner's overrides, merged onto the ones given
        assert json.loads((ctx.tables_dir / validate.CHOSEN_FILE).read_text()) == chosen
        parts.append((ctx.tables_dir, f"machine {k}"))
    whole = setup("smoke", "synthetic", data_root, tmp_path / "whole", chdir=False)
    merged = validate.merge_sweeps(whole, parts)
    assert list(merged["choice"]) == ["learning rate", "learning rate", "DRC weight"]
    assert list(merged["where"]) == ["machine 0", "machine 0", "machine 1"]
    assert list(merged["command"]) == ["cmd 0", "cmd 0", "cmd 1"]  # each row keeps the command of its part
    assert (whole.tables_dir / validate.CHOSEN_FILE).read_text() == (parts[1][0] / validate.CHOSEN_FILE).read_text()
