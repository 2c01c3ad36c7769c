"""Query-gallery distance matrices (cosine / Euclidean), chunked matmul in float32."""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import torch

__all__ = ["compute_distance", "check_features", "distance_blocks", "METRICS"]

METRICS = ("cosine", "euclidean")


def _features(x: Any, name: str, device: torch.device | str = "cpu") -> torch.Tensor:
    t = x.detach() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    if t.ndim != 2:
        raise ValueError(f"{name} must be 2-D (num_images, feature_dim); got shape {tuple(t.shape)}.")
    if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64, torch.int16, torch.int8, torch.uint8)):
        raise TypeError(f"{name} must be real-valued features; got dtype {t.dtype}.")
    return t.to(device=device, dtype=torch.float32)


def check_features(qf: Any, gf: Any, metric: str, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Validated ``(Q, D)`` / ``(G, D)`` float32 feature tensors on ``device`` for :func:`distance_blocks`."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}; got {metric!r}.")
    q = _features(qf, "qf", device)
    g = _features(gf, "gf", device)
    if q.shape[1] != g.shape[1]:
        raise ValueError(
            f"qf and gf have different feature dims ({q.shape[1]} vs {g.shape[1]}); extract both with the same model/mode."
        )
    if not (torch.isfinite(q).all() and torch.isfinite(g).all()):
        raise ValueError("features contain NaN or inf; check the model output before computing distances.")
    return q, g


def distance_blocks(
    q: torch.Tensor, g: torch.Tensor, metric: str, chunk_rows: int, out: torch.Tensor | None = None
) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield ``(a, D[a : a + chunk_rows])``: the distance rows of one query chunk, on the features' device.

    ``q``/``g`` come from :func:`check_features`. With ``out`` (a ``(Q, G)`` float32 tensor) the blocks
    are written into its rows and the yielded blocks are views of it.
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1; got {chunk_rows}.")
    if metric == "cosine":
        g = torch.nn.functional.normalize(g, dim=1)
    else:
        g2 = (g * g).sum(1)
    gt = g.t().contiguous()
    for a in range(0, q.shape[0], chunk_rows):
        qc = q[a : a + chunk_rows]
        if metric == "cosine":
            qc = torch.nn.functional.normalize(qc, dim=1)
        blk = torch.mm(qc, gt) if out is None else torch.mm(qc, gt, out=out[a : a + chunk_rows])
        if metric == "cosine":
            blk.neg_().add_(1.0)
        else:
            blk.mul_(-2.0).add_(g2[None, :]).add_((qc * qc).sum(1)[:, None]).clamp_(min=0.0)
        yield a, blk


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
        ``(Q, G)`` float32 numpy array (computed on the CPU; for CUDA see
        :func:`sisnet.metrics.evaluate_features`, which never brings the matrix to the host).
    """
    q, g = check_features(qf, gf, metric)
    out = np.empty((q.shape[0], g.shape[0]), dtype=np.float32)
    for _ in distance_blocks(q, g, metric, chunk_rows, out=torch.from_numpy(out)):
        pass
    return out
