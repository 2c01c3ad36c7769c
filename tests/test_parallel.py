"""Runs trained in worker processes give the same numbers whatever the number of workers."""
from __future__ import annotations

import json

from sisnet.config import get_config
from sisnet.parallel import default_workers, train_in_workers


def _numbers(run_dir):
    h = json.loads((run_dir / "history.json").read_text())
    epochs = [{k: v for k, v in e.items() if not k.endswith("seconds")} for e in h["epochs"]]
    return epochs, h["evals"]


def test_worker_count_does_not_change_results(tiny_synthetic_root, tmp_path):
    configs = [get_config("smoke", dataset_dir=str(tiny_synthetic_root), siamese=False, seed=1),
               get_config("smoke", dataset_dir=str(tiny_synthetic_root), drc=True, seed=2)]
    one = [tmp_path / "one" / str(i) for i in range(len(configs))]
    two = [tmp_path / "two" / str(i) for i in range(len(configs))]
    train_in_workers([(c, d, True) for c, d in zip(configs, one)], workers=1, threads=1)
    train_in_workers([(c, d, True) for c, d in zip(configs, two)], workers=2, threads=1)
    for a, b in zip(one, two):
        assert _numbers(a) == _numbers(b)  # bit-identical losses and metrics, not just close
    # and the two configurations did differ (the comparison is not vacuous)
    assert _numbers(one[0]) != _numbers(one[1])


def test_default_workers_fill_the_cores():
    import os

    cores = len(os.sched_getaffinity(0))
    assert default_workers(1) == cores and default_workers(None) == 1 and default_workers(cores * 4) == 1


def test_grid_cells_trained_in_workers_match_the_kernel_and_are_labelled_honestly(tiny_synthetic_root, tmp_path):
    import shutil

    from sisnet.report import setup
    from sisnet.report.runs import train, train_cells

    data = tmp_path / "data"
    shutil.copytree(tiny_synthetic_root, data / "synthetic-tiny")
    ctx = setup("smoke", "synthetic", data_root=data, results_dir=tmp_path / "results", chdir=False)
    cells = [("Baseline", "S.", 0, {}), ("SiSNet+DRC", "S.+T.", 0, {})]
    lines = []
    first = train_cells(ctx, cells, log=lines.append)
    assert [r.trained for r in first] == [True, True] and sum("(trained;" in ln for ln in lines) == 2
    again = train_cells(ctx, cells, log=lines.append)
    assert [r.trained for r in again] == [False, False] and sum("(cached;" in ln for ln in lines) == 2
    # the same cell trained again in this process (force) gives the numbers the worker gave
    from_workers = [_numbers(run.run_dir) for run in first]
    for (method, loss, seed, _), numbers in zip(cells, from_workers):
        redo = train(ctx, method, loss, seed, force=True)
        assert redo.trained and _numbers(redo.run_dir) == numbers
