"""The benchmarks' shared measurement helpers (:mod:`sisnet.benchmark`, :mod:`sisnet.benchmark_training`).

A benchmark row has the columns :data:`COLUMNS` (:func:`row`); speed figures are ratios of two callables timed
alternately in the same run (:func:`alternate`), read as medians (:func:`median`).
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable

import numpy as np

__all__ = ["COLUMNS", "GiB", "MiB", "median", "fmt_s", "fmt_bytes", "row", "alternate"]

COLUMNS = ["section", "case", "measured", "reference", "ratio", "goal", "holds"]
GiB = 2**30
MiB = 2**20


def median(xs: list[float]) -> float:
    return float(np.median(np.asarray(xs, dtype=np.float64)))


def fmt_s(seconds: float) -> str:
    return f"{seconds:.3g} s"


def fmt_bytes(n: float) -> str:
    return f"{n / GiB:.2f} GiB" if n >= GiB else f"{n / MiB:.0f} MiB"


def row(section: str, case: str, measured: str, reference: str, ratio: float | None, goal: str, holds: bool | None) -> dict:
    return {
        "section": section,
        "case": case,
        "measured": measured,
        "reference": reference,
        "ratio": None if ratio is None or not math.isfinite(ratio) else round(float(ratio), 3),
        "goal": goal,
        "holds": holds,
    }


def alternate(reference: Callable[[], Any], fast: Callable[[], Any], repeats: int) -> tuple[list[float], list[float], Any, Any]:
    """Time ``reference`` and ``fast`` alternately ``repeats`` times each; returns both time lists and last outputs."""
    t_ref, t_fast = [], []
    out_ref = out_fast = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out_ref = reference()
        t_ref.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        out_fast = fast()
        t_fast.append(time.perf_counter() - t0)
    return t_ref, t_fast, out_ref, out_fast
