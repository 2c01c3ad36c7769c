"""Paired comparisons across seeds: mean difference, 95 % t-interval and a verdict computed from the interval.

Seed ``s`` of every configuration shares the identity order and the augmentation draws, so two configurations'
results are *paired* by seed: the comparison is made on the per-seed differences ``d_s = a_s - b_s``, not on
the two means and their separate spreads (pairing removes the seed-to-seed variation both share).

For ``n`` seeds with mean difference ``m`` and sample standard deviation ``sd`` (ddof 1), the 95 % interval is
``m +- t_{0.975, n-1} * sd / sqrt(n)`` (Student's t; :func:`scipy.stats.t.ppf`). Every comparison is written so
that a positive difference is what the paper claims (e.g. SiSNet - Baseline), and the verdict is read off
the interval only (:func:`verdict`):

- ``supported``: the whole interval lies above 0;
- ``reversed``: the whole interval lies below 0;
- ``not distinguishable``: the interval contains 0, or cannot be computed (fewer than two seeds).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["PairedDifference", "paired_difference", "verdict", "paired_table", "holm_family", "Comparison", "VERDICTS",
           "CONFIDENCE"]

CONFIDENCE = 0.95
VERDICTS = ("supported", "reversed", "not distinguishable")


def verdict(ci_low: float, ci_high: float) -> str:
    """``supported`` / ``reversed`` / ``not distinguishable`` from a confidence interval (see the module docstring).

    An interval that touches or contains 0, or is NaN, is never called ``supported`` or ``reversed``.
    """
    if any(isinstance(v, float) and math.isnan(v) for v in (ci_low, ci_high)) or ci_low > ci_high:
        return "not distinguishable"
    if ci_low > 0:
        return "supported"
    if ci_high < 0:
        return "reversed"
    return "not distinguishable"


@dataclass(frozen=True)
class PairedDifference:
    """The paired comparison of two configurations over seeds (units of the inputs, e.g. percentage points)."""

    mean_diff: float
    ci_low: float
    ci_high: float
    n_seeds: int
    sd: float
    seeds: tuple[int, ...]

    @property
    def half_width(self) -> float:
        return (self.ci_high - self.ci_low) / 2

    @property
    def verdict(self) -> str:
        return verdict(self.ci_low, self.ci_high)


def paired_difference(a: Mapping[int, float], b: Mapping[int, float], confidence: float = CONFIDENCE) -> PairedDifference:
    """``a - b`` paired by seed: ``a``, ``b`` map seed -> value; only seeds present in both count.

    Raises ``ValueError`` when no seed is shared. With one shared seed the interval is NaN (verdict
    ``not distinguishable``).
    """
    from scipy import stats as sps

    seeds = tuple(sorted(set(a) & set(b)))
    if not seeds:
        raise ValueError(f"paired_difference: no seed in common (a has {sorted(a)}, b has {sorted(b)}).")
    d = np.array([float(a[s]) - float(b[s]) for s in seeds], dtype=np.float64)
    n = len(d)
    mean = float(d.mean())
    if n < 2:
        return PairedDifference(mean, math.nan, math.nan, n, math.nan, seeds)
    sd = float(d.std(ddof=1))
    half = float(sps.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return PairedDifference(mean, mean - half, mean + half, n, sd, seeds)


@dataclass(frozen=True)
class Comparison:
    """``a - b`` where each side is a (loss, method) cell of the grid; positive = what the paper claims.

    ``name`` labels the row, e.g. ``"SiSNet - Baseline"``; ``loss`` is the loss the row is reported under
    (for a comparison across losses, the label of both, e.g. ``"S.+T. - S."``).
    """

    name: str
    loss: str
    a: tuple[str, str]
    b: tuple[str, str]


def paired_table(
    per_run: pd.DataFrame,
    comparisons: Sequence[Comparison],
    metrics: Sequence[str] = ("rank1", "mAP"),
    confidence: float = CONFIDENCE,
) -> pd.DataFrame:
    """One row per (comparison, protocol, metric): ``loss, comparison, protocol, metric, mean_diff, ci_low,
    ci_high, n_seeds, verdict``.

    ``per_run`` has one row per (loss, method, seed, protocol) with the metrics as columns (e.g. the output of
    :func:`sisnet.report.measure_protocols`). Comparisons whose cells are missing from ``per_run`` are skipped.
    """
    missing = [c for c in ("loss", "method", "seed", "protocol", *metrics) if c not in per_run.columns]
    if missing:
        raise ValueError(f"paired_table: columns {missing} are missing; the frame has {list(per_run.columns)}.")
    rows = []
    for protocol in dict.fromkeys(per_run["protocol"]):
        sub = per_run[per_run["protocol"] == protocol]
        for comp in comparisons:
            side = {}
            for key, (loss, method) in (("a", comp.a), ("b", comp.b)):
                cell = sub[(sub["loss"] == loss) & (sub["method"] == method)]
                if cell["seed"].duplicated().any():
                    raise ValueError(f"paired_table: {loss} {method} has several rows per seed under {protocol!r}.")
                side[key] = cell.set_index("seed")
            if not len(side["a"]) or not len(side["b"]):
                continue
            for m in metrics:
                res = paired_difference(side["a"][m].to_dict(), side["b"][m].to_dict(), confidence)
                rows.append({"loss": comp.loss, "comparison": comp.name, "protocol": protocol, "metric": m,
                             "mean_diff": res.mean_diff, "ci_low": res.ci_low, "ci_high": res.ci_high,
                             "n_seeds": res.n_seeds, "verdict": res.verdict})
    return pd.DataFrame(rows, columns=["loss", "comparison", "protocol", "metric", "mean_diff", "ci_low", "ci_high",
                                       "n_seeds", "verdict"])


def holm_family(rows: pd.DataFrame, alpha: float = 1 - CONFIDENCE) -> pd.DataFrame:
    """Holm's step-down adjustment over one pre-registered family of paired comparisons.

    ``rows``: one row per claim with ``mean_diff``, ``ci_low``, ``ci_high`` and ``n_seeds`` (a :func:`paired_table`
    slice). Each claim is a two-sided paired t-test of ``mean_diff = 0`` with ``n_seeds - 1`` degrees of freedom
    (its standard error is read back from the unadjusted interval). Added columns:

    - ``p_value``: the unadjusted two-sided p-value;
    - ``p_holm``: Holm's adjusted p-value, ``max_{j <= i} min(1, (m - j + 1) p_(j))`` over the claims sorted by p;
    - ``ci_low_holm`` / ``ci_high_holm``: the interval at the level Holm's step ``i`` tests, ``1 - alpha / (m - i + 1)``,
      held at the first step that rejects nothing (so that an adjusted interval excludes 0 exactly when
      ``p_holm < alpha``);
    - ``verdict_holm``: :func:`verdict` of the adjusted interval.

    Claims whose interval cannot be computed (one seed) get NaN and ``not distinguishable``; they count in ``m``.
    """
    from scipy import stats as sps

    out = rows.copy().reset_index(drop=True)
    m = len(out)
    n = out["n_seeds"].astype(float).to_numpy()
    dof = np.maximum(n - 1, 1)
    t_crit = sps.t.ppf(0.5 + CONFIDENCE / 2, dof)
    se = ((out["ci_high"] - out["ci_low"]).to_numpy(dtype=float) / 2) / t_crit
    with np.errstate(divide="ignore", invalid="ignore"):
        t_stat = np.abs(out["mean_diff"].to_numpy(dtype=float)) / se
    p = np.where(np.isfinite(t_stat), 2 * sps.t.sf(t_stat, dof), np.nan)
    p = np.where((se == 0) & (out["mean_diff"].to_numpy(dtype=float) != 0), 0.0, p)
    order = np.argsort(np.where(np.isnan(p), np.inf, p), kind="stable")
    p_holm = np.full(m, np.nan)
    level = np.full(m, np.nan)
    running, stopped_at = 0.0, None
    for step, i in enumerate(order, start=1):
        if np.isnan(p[i]):
            continue
        running = max(running, min(1.0, (m - step + 1) * p[i]))
        p_holm[i] = running
        if stopped_at is None and p[i] > alpha / (m - step + 1):
            stopped_at = step
        level[i] = alpha / (m - (stopped_at or step) + 1)
    half = sps.t.ppf(1 - level / 2, dof) * se
    mean = out["mean_diff"].to_numpy(dtype=float)
    out["p_value"], out["p_holm"] = p, p_holm
    out["ci_low_holm"], out["ci_high_holm"] = mean - half, mean + half
    out["verdict_holm"] = [verdict(lo, hi) for lo, hi in zip(out["ci_low_holm"], out["ci_high_holm"])]
    return out
