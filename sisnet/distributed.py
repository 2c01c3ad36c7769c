"""Several training processes (``torchrun``): the process group, the main-process guard, and what makes N
processes compute what one process computes on the same global batch.

``python -m sisnet.train`` calls :func:`init_from_env` (one process per GPU, NCCL; gloo on the CPU);
:func:`sisnet.engine.fit` then reads :func:`current` and

- loads ``P / N`` whole identities of every global ``P x K`` batch per process
  (:class:`sisnet.data.sampler.RandomIdentitySampler` with ``rank`` / ``num_replicas``);
- wraps the model in ``DistributedDataParallel`` (:func:`wrap`), after :func:`convert_sync_batchnorm` when
  ``config.sync_bn``;
- mines triplets over the whole global batch (:class:`sisnet.losses.GatheredTripletLoss`: each process's anchors against
  every process's features, gathered with gradients);
- lets only the main process (rank 0) write checkpoints and the history and evaluate; the others wait.

Why the N-process loss equals the one-process loss: every term of the SiSNet loss is a mean over the samples
of the batch of per-sample values (ID, triplet, DRC), so the mean over processes of their local losses is the
global loss, and DDP's gradient average is its gradient, provided no per-sample value depends on samples held
by another process. Two things couple samples: batch-hard mining (solved by gathering the candidates) and
BatchNorm's batch statistics (solved by SyncBatchNorm, ``sync_bn=True``; without it each process normalises
with the statistics of its own ``B / N`` samples, as in most DDP ReID code bases). ``tests/test_distributed.py``
checks the first-step loss of a 2-process run against the 1-process one.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.distributed as dist
from torch import Tensor, nn

__all__ = ["World", "current", "init_from_env", "shutdown", "barrier", "main_first", "mean_over_processes",
           "moments", "gather_with_grad", "is_synced_bn", "CPUSyncBatchNorm", "convert_sync_batchnorm", "wrap"]


@dataclass(frozen=True)
class World:
    """This process's place: ``rank`` of ``size`` processes, ``local_size`` of them on this machine."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes files, evaluates and shows progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def current() -> World:
    """The :class:`World` of the initialised process group; one process (``World()``) when there is none."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return World()
    size = dist.get_world_size()
    return World(rank=dist.get_rank(), size=size, local_rank=int(os.environ.get("LOCAL_RANK", 0)),
                 local_size=int(os.environ.get("LOCAL_WORLD_SIZE", size)))


def init_from_env(device: str = "auto") -> World:
    """Join the process group that ``torchrun`` describes in the environment (``WORLD_SIZE`` > 1).

    On CUDA (``device`` ``auto`` or ``cuda``) each process takes GPU ``LOCAL_RANK`` and the NCCL backend; on the
    CPU, gloo. Without ``torchrun`` (no ``WORLD_SIZE``, or 1) nothing is initialised: one process.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return World()
    if not (dist.is_available() and dist.is_initialized()):
        use_cuda = device != "cpu" and torch.cuda.is_available()
        if use_cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return current()


def shutdown() -> None:
    """Leave the process group (no-op with one process)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(world: World) -> None:
    """Wait until every process gets here (no-op with one process)."""
    if world.distributed:
        dist.barrier()


@contextlib.contextmanager
def main_first(world: World) -> Iterator[None]:
    """Run the block on the main process first and on the others once it is done (downloads, data generation)."""
    if not world.is_main:
        barrier(world)
    try:
        yield
    finally:
        if world.is_main:
            barrier(world)


def mean_over_processes(x: Tensor, world: World) -> Tensor:
    """The element-wise mean of ``x`` over the processes (``x`` itself with one process); not differentiable."""
    if not world.distributed:
        return x
    x = x.detach().clone()
    dist.all_reduce(x)
    return x / world.size


class _AllReduceSum(torch.autograd.Function):
    """Sum over the processes; the gradient of every process's input is the sum of every process's gradient."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        y = x.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(y)
        return y

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        grad = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(grad)
        return grad


class _AllGather(torch.autograd.Function):
    """Every process's ``x`` concatenated along dim 0 (equal sizes); gradients go back to the process that owns
    each row (summed over the processes that used it)."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        ctx.rows = (dist.get_rank() * x.shape[0], (dist.get_rank() + 1) * x.shape[0])
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        grad = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(grad)  # features are small (B x C): a full all-reduce is simpler than reduce-scatter (gloo)
        return grad[ctx.rows[0] : ctx.rows[1]]


def gather_with_grad(x: Tensor) -> Tensor:
    """Every process's ``x`` (same shape in each) concatenated along dim 0, in rank order, differentiable."""
    return _AllGather.apply(x)


def moments(x: Tensor, dims: list[int], synced: bool) -> tuple[Tensor, Tensor, Tensor]:
    """``(mean, biased variance, count)`` of ``x`` over ``dims``, over every process's ``x`` when ``synced``.

    Synced: one differentiable all-reduce of the sums (gradients flow to every process's samples), in float64
    so the ``E[x^2] - E[x]^2`` form loses nothing. Not synced (or one process): the usual local moments.
    """
    if not synced or not current().distributed:
        return x.mean(dims), x.var(dims, unbiased=False), x.new_tensor(float(x.numel() // x.shape[1]))
    xd = x.double()
    count = xd.new_tensor([float(x.numel() // x.shape[1])])
    stats = _AllReduceSum.apply(torch.cat([xd.sum(dims), (xd * xd).sum(dims), count]))
    c = x.shape[1]
    n = stats[-1].detach()
    mean = stats[:c] / n
    var = (stats[c : 2 * c] / n - mean * mean).clamp(min=0.0)
    return mean.to(x.dtype), var.to(x.dtype), n.to(x.dtype)


def is_synced_bn(module: nn.Module) -> bool:
    """Whether ``module`` normalises with batch statistics over every process (a converted BatchNorm)."""
    return isinstance(module, (nn.SyncBatchNorm, CPUSyncBatchNorm))


class CPUSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """SyncBatchNorm for CPU tensors (gloo), which ``torch.nn.SyncBatchNorm`` refuses.

    Same parameters, buffers and state-dict keys as the BatchNorm it replaces. Training with several processes:
    normalises with the mean and biased variance over every process's samples (:func:`moments`) and updates the
    running statistics with the unbiased variance, as ``BatchNorm`` does on the concatenated batch. Otherwise it
    is a plain BatchNorm. Used for the 2-process CPU test of the DDP path; GPUs use ``torch.nn.SyncBatchNorm``.
    """

    def _check_input_dim(self, x: Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2-D input (got {x.dim()}-D)")

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and current().distributed):
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        mean, var, n = moments(x, dims, synced=True)
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * (n / (n - 1).clamp(min=1)), alpha=m)
        shape = [1, -1] + [1] * (x.dim() - 2)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def convert_sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """Every BatchNorm of ``model`` as a synced one: ``torch.nn.SyncBatchNorm`` on CUDA, :class:`CPUSyncBatchNorm`
    on the CPU. Parameters are moved, not copied (an optimiser built before still holds them)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return _convert_cpu(model)


def _convert_cpu(module: nn.Module) -> nn.Module:
    out = module
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not is_synced_bn(module):
        out = CPUSyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                               module.track_running_stats)
        if module.affine:
            with torch.no_grad():
                out.weight, out.bias = module.weight, module.bias
        out.running_mean, out.running_var = module.running_mean, module.running_var
        out.num_batches_tracked = module.num_batches_tracked
        out.train(module.training)
    for name, child in module.named_children():
        out.add_module(name, _convert_cpu(child))
    return out


def wrap(module: nn.Module, world: World, device: torch.device) -> nn.Module:
    """``module`` in ``DistributedDataParallel`` with several processes (``module`` itself with one)."""
    if not world.distributed:
        return module
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids, gradient_as_bucket_view=True)
