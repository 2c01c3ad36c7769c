"""k-reciprocal re-ranking (placeholder; implemented below)."""
from __future__ import annotations


def re_ranking(qf, gf, k1: int = 20, k2: int = 6, lambda_value: float = 0.3):
    raise NotImplementedError
