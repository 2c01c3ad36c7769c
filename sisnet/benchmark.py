"""Speed / memory benchmark: ``python -m sisnet.benchmark [--sections eval,rerank,train,extract,loader,gpu]
[--quick] [--repeats 5] [--step-ms MS] [--out results/benchmarks]`` (``--section`` is the same option).

Every speed figure is a *ratio against a reference measured in the same run*: the two are run
alternately (reference, fast, reference, fast, ...) and the median of the repetitions is used, so
machine noise affects both sides alike. Peak memory is measured in a fresh subprocess per case:
the kernel's peak-RSS counter is reset (``/proc/self/clear_refs``) after the inputs are built, so
the figure is the call's own high-water mark (``extra`` = peak minus RSS before the call).

Sections
--------
* ``eval``: :func:`sisnet.metrics.evaluate_rank` vs :func:`reference_evaluate_rank` (the literal
  per-query NumPy evaluator) on Market-sized problems at three model qualities (feature noise 0.9,
  1.5, 2.5: mINP 0.44, 0.06, 0.002; identical results required), its peak extra memory, and
  MSMT17-sized runs of a good and a weak (mINP ~0.1) model (time ratio, peak memory).
* ``rerank``: :func:`sisnet.metrics.re_ranking` vs :func:`reference_re_ranking` (the dense
  published algorithm) on 19,281 images (2048-d, ResNet-50's feature size), each repetition in
  fresh subprocesses (time + peak RSS); then the MSMT17-sized run (93,820 images, 256-d).
* ``train`` / ``extract``: the ``cpu`` profile's model; model-only vs end-to-end steps, SiSNet vs
  baseline step time (with the convolutions' arithmetic ratio beside it, and, in the full run, the same
  ratio at the paper's 256x128 input), feature-extraction images/s in the either-scale and cascaded modes.
* ``loader``: samples/s per data-loader worker at the paper profile's 256x128 (device-fed ``uint8`` path vs
  float32 views made in the worker), the workers needed to feed a step of ``--step-ms`` (measured on a GPU when
  there is one), shared memory per batch, the Market-1501 schedule's time at that step.
* ``gpu``: the paper-profile step on CUDA, fp32 vs bf16 AMP, contiguous vs channels_last, model-only vs
  end-to-end; one "skipped" row without a GPU.

The training sections live in :mod:`sisnet.benchmark_training`; the helpers both use (the table's row, alternate
timing, medians, formats) in :mod:`sisnet.benchmark_common`.

Problems are synthetic (:func:`sisnet.metrics.reference.make_features`): identities with several images in several cameras,
distractors, noisy features, so rank distributions are realistic. ``--quick`` shrinks the
re-ranking cases and repetitions (goals stated for Market size are then not judged).
On cores shared with other busy processes, multi-threaded torch calls slow down erratically;
the table's footnote records the load average so figures can be read in context.

The table (columns ``section, case, measured, reference, ratio, goal, holds``) is printed and
written to ``<out>/benchmarks.csv`` and ``<out>/benchmarks.md``; a run of some sections keeps the
other sections' rows (and the notes of the runs that measured them) from the table already there.
"""
from __future__ import annotations

import argparse
import math
import time
from typing import Any, Callable

import numpy as np

from sisnet.benchmark_common import COLUMNS, alternate, fmt_bytes, fmt_s, median, row
from sisnet.benchmark_training import bench_gpu, bench_loader, bench_train, conv_macs, two_scale_arithmetic
from sisnet.metrics.reference import (  # noqa: F401  (importable from here too)
    make_eval_problem,
    make_features,
    reference_evaluate_rank,
    reference_re_ranking,
)

__all__ = [
    "conv_macs",
    "two_scale_arithmetic",
    "make_eval_problem",
    "make_features",
    "reference_evaluate_rank",
    "main",
]


# --------------------------------------------------------------------------------------------
# Sections and problem sizes (the measurement helpers are in sisnet.benchmark_common)
# --------------------------------------------------------------------------------------------
SECTIONS = ("eval", "rerank", "train", "extract", "loader", "gpu")

# Problem sizes: (num_query, num_gallery, num_ids, num_cams, feature_dim)
SIZES: dict[str, dict[str, tuple[int, int, int, int, int]]] = {
    "full": {
        "eval_market": (3368, 15913, 751, 6, 64),
        "eval_msmt": (11659, 82161, 3060, 15, 64),
        "rerank_market": (3368, 15913, 751, 6, 2048),
        "rerank_msmt": (11659, 82161, 3060, 15, 256),
    },
    "quick": {
        "eval_market": (3368, 15913, 751, 6, 64),
        "eval_msmt": (2000, 14000, 520, 15, 64),
        "rerank_market": (600, 2800, 140, 6, 256),
        "rerank_msmt": (1200, 8000, 300, 15, 128),
    },
    "tiny": {  # for the unit test: seconds, not minutes
        "eval_market": (120, 600, 40, 4, 32),
        "eval_msmt": (150, 800, 50, 6, 32),
        "rerank_market": (40, 160, 12, 4, 32),
        "rerank_msmt": (60, 240, 20, 6, 32),
    },
}


def _rss_bytes(field: str) -> int | None:
    """``VmRSS`` / ``VmHWM`` of this process from /proc (Linux), in bytes."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter (Linux ``clear_refs`` 5) so the next peak is the call's own."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _child_case(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one case in this (fresh) process: build inputs, then time + peak memory of the call only."""
    import gc
    import resource

    case, size = spec["case"], tuple(spec["size"])
    nq, ng, ids, cams, dim = size
    if case in ("eval", "eval_ref"):
        from sisnet.metrics import evaluate_rank

        p = make_eval_problem(nq, ng, ids, cams, dim=dim, seed=spec.get("seed", 0), noise=spec.get("noise", 0.9))
        fn = evaluate_rank if case == "eval" else reference_evaluate_rank
        call = lambda: fn(p["distmat"], p["q_pids"], p["g_pids"], p["q_camids"], p["g_camids"])  # noqa: E731
        input_bytes = p["distmat"].nbytes
    elif case in ("rerank", "rerank_ref"):
        from sisnet.metrics import re_ranking

        p = make_features(nq, ng, ids, cams, dim=dim, seed=spec.get("seed", 0))
        fn = re_ranking if case == "rerank" else reference_re_ranking
        call = lambda: fn(p["qf"], p["gf"])  # noqa: E731
        input_bytes = p["qf"].nbytes + p["gf"].nbytes
    else:
        raise ValueError(f"unknown child case {case!r}")
    gc.collect()
    base = _rss_bytes("VmRSS")
    exact = _reset_peak_rss() and base is not None
    if not exact:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t0 = time.perf_counter()
    out = call()
    seconds = time.perf_counter() - t0
    peak = _rss_bytes("VmHWM") if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    times = [seconds]
    for _ in range(int(spec.get("repeats", 1)) - 1):  # more timed calls of the same inputs (warm)
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    result: dict[str, Any] = {
        "seconds": seconds,
        "times": times,
        "peak_bytes": peak,
        "base_bytes": base,
        "extra_bytes": max(0, peak - base),
        "input_bytes": input_bytes,
        "peak_exact": exact,
    }
    if case.startswith("eval"):
        result["metrics"] = {"cmc": [float(x) for x in out["cmc"]], "mAP": out["mAP"], "mINP": out["mINP"]}
    elif spec.get("save"):
        np.save(spec["save"], out)
    return result


def _run_child(spec: dict[str, Any], timeout_s: float = 3600) -> dict[str, Any]:
    """Run :func:`_child_case` in a fresh interpreter (memory peaks never mix between cases)."""
    import json
    import os
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "sisnet.benchmark", "--child", json.dumps(spec)]
    env = os.environ.copy()
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # importable without install
    env["PYTHONPATH"] = os.pathsep.join([pkg_parent] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout)[-2000:]
        return {"error": f"exit code {proc.returncode}: {tail.strip().splitlines()[-1] if tail.strip() else ''}",
                "stderr": tail}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------
#: Model qualities of the eval section: feature noise of :func:`make_eval_problem` (Market-sized:
#: mAP / mINP 0.71 / 0.44, 0.24 / 0.06 and 0.03 / 0.002) and, MSMT17-sized, a good model and a weak one
#: at mINP ~0.1 (the paper's MSMT17 level is 0.10-0.14).
EVAL_NOISE = (0.9, 1.5, 2.5)
EVAL_MSMT_NOISE = {"good": 0.9, "weak": 1.15}


def _quality(res: dict) -> str:
    return f"mAP {res['mAP']:.2f}, mINP {res['mINP']:.3f}"


def bench_eval(size_name: str, repeats: int, log: Callable[[str], None]) -> list[dict]:
    """``evaluate_rank`` vs the literal evaluator at three model qualities, memory, MSMT17 weak vs good."""
    from sisnet.metrics import evaluate_rank

    rows = []
    nq, ng, ids, cams, dim = SIZES[size_name]["eval_market"]
    label = f"{nq}x{ng} ({ids} ids + distractors, {cams} cams)"
    at_goal = (nq, ng) == SIZES["full"]["eval_market"][:2]  # the goals are stated for the Market size
    note = "" if at_goal else " (Market-size goal; not judged at this size)"
    diffs, qualities = [], []
    for noise in EVAL_NOISE:
        p = make_eval_problem(nq, ng, ids, cams, dim=dim, seed=0, noise=noise)
        args = (p["distmat"], p["q_pids"], p["g_pids"], p["q_camids"], p["g_camids"])
        evaluate_rank(*args)  # warm-up (thread pools, allocator)
        log(f"eval: {nq}x{ng}, noise {noise}: literal reference vs evaluate_rank, {repeats} alternating repeats")
        t_ref, t_fast, ref, got = alternate(lambda: reference_evaluate_rank(*args), lambda: evaluate_rank(*args), repeats)
        sp_up = median(t_ref) / median(t_fast)
        goal = 10 if noise == EVAL_NOISE[0] else 4
        rows.append(row("eval", f"evaluate_rank time, {label}, noise {noise} ({_quality(ref)})",
                        fmt_s(median(t_fast)), fmt_s(median(t_ref)) + " literal per-query NumPy", sp_up,
                        f"speed-up >= {goal}x" + note, (sp_up >= goal) if at_goal else None))
        diffs.append(max(float(np.abs(np.asarray(got["cmc"]) - np.asarray(ref["cmc"])).max()),
                         abs(got["mAP"] - ref["mAP"]), abs(got["mINP"] - ref["mINP"])))
        qualities.append(f"{noise}: R1 {got['cmc'][0]:.4f}, mAP {got['mAP']:.4f}, mINP {got['mINP']:.4f}")
    rows.append(row("eval", f"max |diff| of CMC/mAP/mINP vs literal, {label}, noise {'/'.join(map(str, EVAL_NOISE))}",
                    f"{max(diffs):.1e} ({'; '.join(qualities)})", "literal per-query NumPy", None, "<= 1e-6",
                    max(diffs) <= 1e-6))
    log("eval: peak extra memory (fresh subprocess)")
    mem = _run_child({"case": "eval", "size": [nq, ng, ids, cams, dim]})
    if "error" in mem:
        rows.append(row("eval", f"peak extra memory, {label}", mem["error"], "", None, "< 2x distmat", False))
    else:
        ratio = mem["extra_bytes"] / mem["input_bytes"]
        rows.append(row("eval", f"peak extra memory, {label}", fmt_bytes(mem["extra_bytes"]),
                        fmt_bytes(mem["input_bytes"]) + " distmat", ratio, "< 2x distmat" + note,
                        (ratio < 2) if at_goal else None))
    return rows + _bench_eval_msmt(size_name, repeats, log)


def _bench_eval_msmt(size_name: str, repeats: int, log: Callable[[str], None]) -> list[dict]:
    """MSMT17-sized: a good and a weak model, each in fresh subprocesses, alternately (time, peak memory)."""
    nq, ng, ids, cams, dim = SIZES[size_name]["eval_msmt"]
    label = f"{nq}x{ng} ({ids} ids, {cams} cams)"
    at_goal = (nq, ng) == SIZES["full"]["eval_msmt"][:2]  # the goals are stated for the MSMT17 size
    note = "" if at_goal else " (MSMT17-size goal; not judged at this size)"
    rounds = 2 if size_name == "full" else 1
    res: dict[str, list[dict]] = {"good": [], "weak": []}
    for r in range(rounds):
        for quality, noise in EVAL_MSMT_NOISE.items():
            log(f"eval: MSMT17-sized {label}, {quality} model (noise {noise}), round {r + 1}/{rounds} (fresh subprocess)")
            out = _run_child({"case": "eval", "size": [nq, ng, ids, cams, dim], "noise": noise,
                              "repeats": max(1, min(3, repeats))})
            if "error" in out:
                return [row("eval", f"MSMT17-sized evaluate_rank, {label}", out["error"], "", None,
                            "runs within 24 GB", False)]
            res[quality].append(out)
    t = {q: median([x for o in outs for x in o["times"]]) for q, outs in res.items()}
    m = {q: outs[0]["metrics"] for q, outs in res.items()}
    ratio = t["weak"] / t["good"]
    rows = [
        row("eval", f"MSMT17-sized evaluate_rank time, good model (noise {EVAL_MSMT_NOISE['good']}, {_quality(m['good'])}), {label}",
            fmt_s(t["good"]), "", None, "reported", None),
        row("eval", f"MSMT17-sized evaluate_rank, weak-model time / good-model time (weak: noise {EVAL_MSMT_NOISE['weak']}, "
            f"{_quality(m['weak'])}), {label}", fmt_s(t["weak"]) + " weak", fmt_s(t["good"]) + " good", ratio,
            "<= 3x" + note, (ratio <= 3) if at_goal else None),
    ]
    worst = max((o for outs in res.values() for o in outs), key=lambda o: o["peak_bytes"])
    extra = worst["extra_bytes"] / worst["input_bytes"]
    rows.append(row("eval", f"MSMT17-sized peak memory, {label}",
                    f"{fmt_bytes(worst['peak_bytes'])} total, {fmt_bytes(worst['extra_bytes'])} extra",
                    fmt_bytes(worst["input_bytes"]) + " distmat", extra, "total < 24 GB; extra < 2x distmat",
                    worst["peak_bytes"] < 24e9 and (extra < 2 or not at_goal)))
    return rows


def bench_rerank(size_name: str, repeats: int, log: Callable[[str], None]) -> list[dict]:
    import os
    import tempfile

    rows = []
    nq, ng, ids, cams, dim = SIZES[size_name]["rerank_market"]
    label = f"{nq + ng} images ({nq} q + {ng} g, {dim}-d)"
    t_ref, t_fast, p_ref, p_fast = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        f_ref, f_fast = os.path.join(tmp, "ref.npy"), os.path.join(tmp, "fast.npy")
        for r in range(repeats):
            log(f"rerank: {label} dense reference vs re_ranking, repeat {r + 1}/{repeats} (fresh subprocesses)")
            a = _run_child({"case": "rerank_ref", "size": [nq, ng, ids, cams, dim], "save": f_ref if r == 0 else None})
            b = _run_child({"case": "rerank", "size": [nq, ng, ids, cams, dim], "save": f_fast if r == 0 else None})
            for res, ts, ps in ((a, t_ref, p_ref), (b, t_fast, p_fast)):
                if "error" in res:
                    raise RuntimeError(f"re-ranking benchmark case failed: {res['error']}\n{res.get('stderr', '')}")
                ts.append(res["seconds"])
                ps.append(res["peak_bytes"])
        diff = float(np.abs(np.load(f_ref) - np.load(f_fast)).max())
    sp_up = median(t_ref) / median(t_fast)
    at_goal = size_name == "full"  # the goals are stated for the Market-sized problem
    note = "" if at_goal else " (Market-size goal; not judged at this size)"
    rows.append(row("rerank", f"re_ranking time, {label}", fmt_s(median(t_fast)), fmt_s(median(t_ref)) + " dense",
                    sp_up, "speed-up >= 3x" + note, (sp_up >= 3) if at_goal else None))
    peak = max(p_fast)
    rows.append(row("rerank", f"re_ranking peak memory (process RSS), {label}", fmt_bytes(peak),
                    fmt_bytes(max(p_ref)) + " dense", peak / max(p_ref), "< 4 GB" + note,
                    (peak < 4e9) if at_goal else None))
    rows.append(row("rerank", f"max |diff| vs dense reference, {label}", f"{diff:.1e}", "dense (float32)", None,
                    "<= 1e-5", diff <= 1e-5))
    nq, ng, ids, cams, dim = SIZES[size_name]["rerank_msmt"]
    label = f"{nq + ng} images ({nq} q + {ng} g, {dim}-d)"
    log(f"rerank: MSMT17-sized {label} (fresh subprocess)")
    res = _run_child({"case": "rerank", "size": [nq, ng, ids, cams, dim]})
    if "error" in res:
        rows.append(row("rerank", f"MSMT17-sized re_ranking, {label}", res["error"], "", None, "completes within 24 GB", False))
    else:
        rows.append(row("rerank", f"MSMT17-sized re_ranking time, {label}", fmt_s(res["seconds"]), "", None,
                        "completes (time reported)", True))
        dense_bytes = 4 * 4 * (nq + ng) ** 2  # dist, argsort (int32), V, V_qe at float32
        rows.append(row("rerank", f"MSMT17-sized re_ranking peak memory (process RSS), {label}",
                        fmt_bytes(res["peak_bytes"]), f"~{fmt_bytes(dense_bytes)} dense (4 N x N arrays, estimate)",
                        res["peak_bytes"] / dense_bytes, "completes within 24 GB", res["peak_bytes"] < 24e9))
    return rows


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------
def write_table(rows: list[dict], out_dir: str, sections: tuple[str, ...] = SECTIONS) -> tuple[str, str]:
    """Write ``benchmarks.csv`` and ``benchmarks.md`` (atomically) into ``out_dir``; returns the paths.

    The rows of sections not in ``sections`` (not run this time) are kept from the table already in
    ``out_dir``, with the note (date, machine, load average) of the run that measured them.
    """
    import os

    import pandas as pd

    from sisnet.utils import atomic_write, ensure_writable_dir

    ensure_writable_dir(out_dir, "benchmark output folder (--out)")
    csv_path, md_path = os.path.join(out_dir, "benchmarks.csv"), os.path.join(out_dir, "benchmarks.md")
    notes = [(tuple(s for s in SECTIONS if s in sections), _run_note())]
    if set(SECTIONS) - set(sections) and os.path.exists(csv_path):
        kept = [r for r in pd.read_csv(csv_path).to_dict("records") if r["section"] not in sections]
        kept_sections = tuple(s for s in SECTIONS if any(r["section"] == s for r in kept))
        rows = list(rows) + kept
        notes += _earlier_notes(md_path, kept_sections)
    order = {s: i for i, s in enumerate(SECTIONS)}
    df = pd.DataFrame(sorted(rows, key=lambda r: order.get(r["section"], len(order))), columns=COLUMNS)
    with atomic_write(csv_path, "w", encoding="utf-8", newline="") as fh:
        df.to_csv(fh, index=False)
    with atomic_write(md_path, "w", encoding="utf-8") as fh:
        fh.write(_markdown(df, notes))
    return csv_path, md_path


def _run_note() -> str:
    """Date, CPU, usable cores and load average, for the table's footnote."""
    from sisnet.provenance import load_average, machine

    m = machine()
    return f"{time.strftime('%Y-%m-%d %H:%M:%S')}, {m['processor']}, {m['usable_cores']} usable cores, {load_average()}"


def _earlier_notes(md_path: str, kept: tuple[str, ...]) -> list[tuple[tuple[str, ...], str]]:
    """The run notes of an existing ``benchmarks.md`` that concern the ``kept`` sections."""
    import re

    try:
        with open(md_path, encoding="utf-8") as fh:
            lines = [ln.strip() for ln in fh if ln.startswith("_") and ln.strip().endswith("_")]
    except OSError:
        return []
    notes = []
    for line in lines:
        m = re.fullmatch(r"_sections ([a-z, ]+): (.*)\._", line)
        if m:
            secs = tuple(s for s in kept if s in m.group(1).split(", "))
            if secs:
                notes.append((secs, m.group(2)))
        elif "usable cores" in line:  # one note for the whole table (a run of every section)
            notes.append((kept, line[1:].split(". ratio =")[0]))
    return notes


def _markdown(df, notes: list[tuple[tuple[str, ...], str]]) -> str:
    def cell(v: Any) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return ""
        if isinstance(v, (bool, np.bool_)):
            return "yes" if v else "NO"
        return str(v).replace("|", "\\|")

    head = "| " + " | ".join(COLUMNS) + " |\n| " + " | ".join("---" for _ in COLUMNS) + " |\n"
    body = "".join("| " + " | ".join(cell(r[c]) for c in COLUMNS) + " |\n" for r in df.to_dict("records"))
    meta = "".join(f"\n_sections {', '.join(secs)}: {info}._\n" for secs, info in notes)
    meta += "\n_ratio = reference / measured for times (speed-up), measured / reference otherwise._\n"
    return "# sisnet benchmark\n\n" + head + body + meta


def main(argv: list[str] | None = None) -> list[dict]:
    """Run the benchmark CLI (see ``--help``); returns the table rows (list of dicts)."""
    parser = argparse.ArgumentParser(prog="python -m sisnet.benchmark", description="Speed/memory benchmark of sisnet's evaluation, re-ranking, training and extraction; "
                                     "every speed figure is a ratio against a reference run alternately in the same run.")
    parser.add_argument("--sections", "--section", default=",".join(SECTIONS),
                        help=f"comma-separated subset of {','.join(SECTIONS)} (default: all); the rows of the "
                             "sections not run are kept from the existing table in --out")
    parser.add_argument("--step-ms", type=float, default=None,
                        help="loader: the training step time (ms) to size the workers for (default: measured on a GPU, "
                        "else an assumed 20 ms)")
    parser.add_argument("--quick", action="store_true", help="smaller problems and fewer repeats (a minute or two on an idle 2-core machine)")
    parser.add_argument("--size", choices=sorted(SIZES), default=None, help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=None, help="alternating repetitions per timing (default 5; quick 3)")
    parser.add_argument("--rerank-repeats", type=int, default=None,
                        help="repetitions of the (slow) dense re-ranking reference (default 2; quick 2)")
    parser.add_argument("--out", default="results/benchmarks", help="output folder for benchmarks.csv / .md")
    parser.add_argument("--dataset-dir", default="data/synthetic", help="the synthetic dataset folder for train/extract")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads for every case (default: torch's default, all cores)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    import os

    import torch

    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads must be >= 1")
        prev_threads, prev_env = torch.get_num_threads(), os.environ.get("SISNET_BENCH_THREADS")
        torch.set_num_threads(args.threads)
        os.environ["SISNET_BENCH_THREADS"] = str(args.threads)  # read by the child processes
        try:
            return _main(args, parser)
        finally:
            torch.set_num_threads(prev_threads)
            if prev_env is None:
                os.environ.pop("SISNET_BENCH_THREADS", None)
            else:
                os.environ["SISNET_BENCH_THREADS"] = prev_env
    if os.environ.get("SISNET_BENCH_THREADS"):
        torch.set_num_threads(int(os.environ["SISNET_BENCH_THREADS"]))
    return _main(args, parser)


def _main(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[dict]:
    import json
    import sys

    if args.child is not None:
        print(json.dumps(_child_case(json.loads(args.child))))
        return []
    sections = tuple(s.strip() for s in args.sections.split(",") if s.strip())
    bad = [s for s in sections if s not in SECTIONS]
    if bad or not sections:
        parser.error(f"unknown section(s) {bad}; choose from {','.join(SECTIONS)}")
    size = args.size or ("quick" if args.quick else "full")
    repeats = args.repeats or (3 if size != "full" else 5)
    rr_repeats = args.rerank_repeats or 2
    if repeats < 1 or rr_repeats < 1:
        parser.error("--repeats and --rerank-repeats must be >= 1")
    if args.step_ms is not None and not args.step_ms > 0:
        parser.error("--step-ms must be > 0")

    def log(msg: str) -> None:
        print(f"[benchmark {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    from sisnet.utils import ensure_writable_dir

    ensure_writable_dir(args.out, "benchmark output folder (--out)")  # fail before any work
    rows: list[dict] = []
    if "eval" in sections:
        rows += bench_eval(size, repeats, log)
    if "rerank" in sections:
        rows += bench_rerank(size, rr_repeats, log)
    if "train" in sections or "extract" in sections:
        rows += bench_train(size, repeats, args.dataset_dir, log,
                            tuple(s for s in sections if s in ("train", "extract")))
    if "loader" in sections:
        rows += bench_loader(size, repeats, args.step_ms, log)
    if "gpu" in sections:
        rows += bench_gpu(size, repeats, log)
    csv_path, md_path = write_table(rows, args.out, sections)
    import pandas as pd

    with pd.option_context("display.max_colwidth", 80, "display.width", 250):
        print(pd.DataFrame(rows, columns=COLUMNS).to_string(index=False))
    print(f"\nwritten: {csv_path}, {md_path}")
    return rows


if __name__ == "__main__":
    main()
