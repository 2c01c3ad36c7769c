"""Evaluation: CMC / mAP / mINP (Market-1501 protocol), distances, k-reciprocal re-ranking."""
from sisnet.metrics.distance import compute_distance
from sisnet.metrics.rank import evaluate_features, evaluate_rank
from sisnet.metrics.rerank import re_ranking

__all__ = ["evaluate_rank", "evaluate_features", "compute_distance", "re_ranking"]
