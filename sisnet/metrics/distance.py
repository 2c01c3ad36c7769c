"""Query-gallery distance matrices (cosine / Euclidean), chunked matmul in float32."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["compute_distance", "METRICS"]

METRICS = ("cosine", "euclidean")


def _features(x: Any, name: str) -> torch.Tensor:
    t = x.detach() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    if t.ndim != 2:
        raise ValueError(f"{name} must be 2-D (num_images, feature_dim); got shape {tuple(t.shape)}.")
    if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64, torch.int16, torch.int8, torch.uint8)):
        raise TypeError(f"{name} must be real-valued features; got dtype {t.dtype}.")
    return t.to(device="cpu", dtype=torch.float32)


def compute_distance(
    qf: Any, gf: Any, metric: str = "cosine", *, chunk_rows: int = 4096
) -> np.ndarray:
    """Distance between every query and gallery feature.

    Args:
        qf: ``(Q, D)`` query features (torch or numpy).
        gf: ``(G, D)`` gallery features.
        metric: ``"cosine"`` -> ``1 - cos(q, g)`` in ``[0, 2]`` (features L2-normalised here);
            ``"euclidean"`` -> squared Euclidean distance ``|q|^2 + |g|^2 - 2 q.g`` clamped at 0
            (the torchreid convention; the ranking is the same as for the plain Euclidean distance).
        chunk_rows: queries per matmul chunk (bounds temporaries to ``chunk_rows x G``).

    Returns:
        ``(Q, G)`` float32 numpy array.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}; got {metric!r}.")
    q = _features(qf, "qf")
    g = _features(gf, "gf")
    if q.shape[1] != g.shape[1]:
        raise ValueError(
            f"qf and gf have different feature dims ({q.shape[1]} vs {g.shape[1]}); extract both with the same model/mode."
        )
    if not (torch.isfinite(q).all() and torch.isfinite(g).all()):
        raise ValueError("features contain NaN or inf; check the model output before computing distances.")
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1; got {chunk_rows}.")
    out = np.empty((q.shape[0], g.shape[0]), dtype=np.float32)
    out_t = torch.from_numpy(out)
    if metric == "cosine":
        g = torch.nn.functional.normalize(g, dim=1)
        gt = g.t().contiguous()
        for a in range(0, q.shape[0], chunk_rows):
            qc = torch.nn.functional.normalize(q[a : a + chunk_rows], dim=1)
            torch.mm(qc, gt, out=out_t[a : a + chunk_rows])
            out_t[a : a + chunk_rows].neg_().add_(1.0)
    else:
        g2 = (g * g).sum(1)
        gt = g.t().contiguous()
        for a in range(0, q.shape[0], chunk_rows):
            qc = q[a : a + chunk_rows]
            blk = out_t[a : a + chunk_rows]
            torch.mm(qc, gt, out=blk)
            blk.mul_(-2.0).add_(g2[None, :]).add_((qc * qc).sum(1)[:, None]).clamp_(min=0.0)
    return out
