"""python -m sisnet.benchmark at a tiny size: the table is produced with the expected columns.

No timing assertions (timings are machine noise); only structure, correctness flags and files.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sisnet import benchmark, benchmark_common
from sisnet.metrics import reference
from sisnet.metrics import evaluate_rank


def test_literal_reference_agrees_with_evaluate_rank():
    p = reference.make_eval_problem(80, 400, 30, 4, dim=16, seed=2)
    args = (p["distmat"], p["q_pids"], p["g_pids"], p["q_camids"], p["g_camids"])
    ref = reference.reference_evaluate_rank(*args, max_rank=10)
    got = evaluate_rank(*args, max_rank=10)
    np.testing.assert_allclose(got["cmc"], ref["cmc"], atol=1e-12)
    assert got["mAP"] == pytest.approx(ref["mAP"], abs=1e-12)
    # the synthetic problem is realistic: distractors, several cameras, first hits not all at rank 1
    assert (p["g_pids"] == 0).sum() > 0 and len(np.unique(p["g_camids"])) == 4
    assert 0.3 < ref["cmc"][0] < 0.99


def test_dense_rerank_reference_agrees_with_sparse():
    from sisnet.metrics import re_ranking

    f = reference.make_features(30, 120, 10, 3, dim=16, seed=4)
    np.testing.assert_allclose(re_ranking(f["qf"], f["gf"]), reference.reference_re_ranking(f["qf"], f["gf"]), atol=1e-5)


def test_benchmark_cli_tiny(tmp_path, tiny_synthetic_root, capsys):
    out = tmp_path / "bench"
    rows = benchmark.main([
        "--size", "tiny", "--repeats", "1", "--rerank-repeats", "1", "--threads", "1", "--out", str(out),
        "--dataset-dir", str(tiny_synthetic_root),
    ])
    df = pd.read_csv(out / "benchmarks.csv")
    assert list(df.columns) == ["section", "case", "measured", "reference", "ratio", "goal", "holds"]
    assert set(df["section"]) == {"eval", "rerank", "train", "extract", "loader", "gpu"}
    assert len(df) == len(rows) >= 12
    md = (out / "benchmarks.md").read_text()
    assert md.count("\n|") >= len(rows) + 1 and "| section | case |" in md
    printed = capsys.readouterr().out
    assert "benchmarks.csv" in printed and "ratio" in printed
    by_case = {r["case"]: r for r in rows}
    # correctness rows must hold even at tiny size (they compare results, not times)
    diff_rows = [r for c, r in by_case.items() if "max |diff|" in c]
    assert len(diff_rows) == 2 and all(r["holds"] for r in diff_rows)
    # every ratio that is reported is a positive finite number
    ratios = [r["ratio"] for r in rows if r["ratio"] is not None]
    assert ratios and all(np.isfinite(x) and x > 0 for x in ratios)


def test_benchmark_cli_errors(tmp_path):
    with pytest.raises(SystemExit):
        benchmark.main(["--sections", "eval,bogus", "--out", str(tmp_path)])
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(PermissionError, match="not writable"):
        benchmark.main(["--sections", "eval", "--size", "tiny", "--out", str(target / "sub")])


def test_conv_macs_counts_real_taps():
    import torch
    from torch import nn

    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1),  # 8x4 out from 16x8: 8*4*8*3*9
        nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=8),  # depthwise, dilated: 8*4*8*1*9
        nn.Conv2d(8, 16, 1),  # 8*4*16*8
    )
    expected = 8 * 4 * 8 * 3 * 9 + 8 * 4 * 8 * 9 + 8 * 4 * 16 * 8
    assert benchmark.conv_macs(net, (16, 8)) == expected
    net.train()
    benchmark.conv_macs(net, (16, 8))
    assert net.training  # the mode is restored
    assert not any(m._forward_hooks for m in net)  # hooks are removed
    assert torch.is_grad_enabled()


def test_write_table_keeps_sections_not_run(tmp_path):
    row = lambda section, case: benchmark_common.row(section, case, "1 s", "2 s", 2.0, "reported", None)  # noqa: E731
    benchmark.write_table([row("eval", "old eval"), row("rerank", "old rerank"), row("train", "old train")], str(tmp_path))
    first_note = [ln for ln in (tmp_path / "benchmarks.md").read_text().splitlines() if ln.startswith("_sections")]
    assert len(first_note) == 1 and first_note[0].startswith("_sections eval, rerank, train, extract, loader, gpu: ")
    benchmark.write_table([row("eval", "new eval")], str(tmp_path), sections=("eval",))
    df = pd.read_csv(tmp_path / "benchmarks.csv")
    assert list(df["case"]) == ["new eval", "old rerank", "old train"]  # section order kept
    md = (tmp_path / "benchmarks.md").read_text()
    assert "old eval" not in md and "| rerank | old rerank |" in md
    notes = [ln for ln in md.splitlines() if ln.startswith("_sections")]
    assert notes[0].startswith("_sections eval: ") and notes[1].startswith("_sections rerank, train: ")
    assert notes[1].split(": ", 1)[1] == first_note[0].split(": ", 1)[1]  # the earlier run's note, unchanged


def test_loader_section_reports_per_worker_rate_and_workers_needed(tmp_path):
    rows = benchmark.main(["--section", "loader", "--size", "tiny", "--repeats", "1", "--step-ms", "20",
                           "--out", str(tmp_path)])
    cases = [r["case"] for r in rows]
    per_worker = [r for r in rows if r["case"].startswith("samples/s per worker")]
    assert len(per_worker) == 2 and all("256x128" in r["case"] and r["ratio"] > 0 for r in per_worker)
    workers = [r for r in rows if r["case"].startswith("workers to feed a 20.0 ms step (given with --step-ms)")]
    assert len(workers) == 2 and all("3200 samples/s needed" in r["measured"] for r in workers)  # 64 / 20 ms
    assert any("Market-1501" in c and "202 steps" in r["measured"] for c, r in zip(cases, rows))  # 12,936 // 64
    assert any(c.startswith("device half") for c in cases)


def test_gpu_section_skips_without_a_gpu_and_its_code_runs_on_the_cpu(tmp_path):
    import torch

    from sisnet.benchmark_training import bench_gpu

    if not torch.cuda.is_available():
        rows = benchmark.main(["--section", "gpu", "--size", "tiny", "--out", str(tmp_path)])
        assert len(rows) == 1 and rows[0]["measured"] == "skipped: no CUDA GPU on this machine"
    rows = bench_gpu("tiny", 1, lambda msg: None, device=torch.device("cpu"))  # smoke size, same code path
    assert len(rows) == 5 and all(r["section"] == "gpu" for r in rows)
    assert rows[-1]["case"].startswith("end-to-end step vs model-only") and rows[-1]["ratio"] > 0
