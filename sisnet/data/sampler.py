"""PK identity sampler: every batch holds P identities x K images each.

Hand-written because neither torch nor torchvision ships an identity-balanced sampler (the
batch-hard triplet loss needs K >= 2 images of each of P identities in every batch); the algorithm
is the one ReID code bases call ``RandomIdentitySampler``:

1. for each identity, shuffle its image indices; an identity with fewer than K images is padded
   by sampling with replacement up to K; cut the list into chunks of K (an incomplete last chunk
   is dropped);
2. repeatedly pick P distinct identities that still have chunks, at random, and emit one chunk of
   each (P*K indices = one batch), until fewer than P identities have chunks left.

Epoch length (the usual definition): ``sum over identities of max(n_i, K) rounded down to a
multiple of K``, rounded down to whole batches of ``P*K``. When step 2 runs out of identities before
that length is reached, a fresh round (step 1 again, same epoch RNG) continues the epoch, so every
epoch yields exactly ``len(sampler)`` indices.

Randomness comes only from ``numpy.random.default_rng((seed, epoch))``: the order of an epoch is a
pure function of ``(seed, epoch)``, which is what makes a resumed run identical to an uninterrupted
one (``set_epoch`` before iterating).

Several processes (``torchrun``, DistributedDataParallel): with ``num_replicas=N`` each process gets whole
identity groups of every global batch, ``P / N`` identities x ``K`` images: process ``r`` gets the ``r``-th
``1/N`` of the batch (identities ``r*P/N .. (r+1)*P/N - 1`` of it). Every process computes the same global
order and the same sample seeds, so the processes' batches, put together, are exactly the single-process
batch (same images, same augmentation), and the global batch stays ``P x K``.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

__all__ = ["RandomIdentitySampler"]


class RandomIdentitySampler(Sampler):
    """Yield dataset indices in batches of ``P`` identities x ``K`` images.

    Args:
        pids: identity label of every training sample (index i -> pids[i]).
        P: identities per batch. K: images per identity.
        seed: base seed; the epoch's order depends only on ``(seed, epoch)``.
        steps_per_epoch: if given, each epoch is exactly this many batches (rounds repeat as needed).
        with_sample_seeds: yield ``(index, sample_seed)`` pairs instead of plain indices; the dataset
            seeds that sample's augmentation with ``sample_seed`` so augmentation is also a pure
            function of ``(seed, epoch, position)``, independent of data-loader workers.
        rank, num_replicas: this process's share of each batch (see the module doc); ``P`` must be a
            multiple of ``num_replicas``. Load with ``batch_size = P * K // num_replicas``.
    """

    def __init__(
        self,
        pids: Sequence[int],
        P: int,
        K: int,
        seed: int = 0,
        steps_per_epoch: int | None = None,
        with_sample_seeds: bool = False,
        rank: int = 0,
        num_replicas: int = 1,
    ) -> None:
        self.pids = [int(p) for p in pids]
        self.P, self.K, self.seed = int(P), int(K), int(seed)
        self.rank, self.num_replicas = int(rank), int(num_replicas)
        if self.num_replicas < 1 or not 0 <= self.rank < self.num_replicas:
            raise ValueError(f"rank={rank} must lie in [0, num_replicas={num_replicas}).")
        if self.P % self.num_replicas:
            raise ValueError(
                f"P={self.P} identities per batch cannot be split into whole identity groups over {self.num_replicas} "
                f"processes; use a P that is a multiple of {self.num_replicas} (e.g. --set P=...)."
            )
        self.with_sample_seeds = with_sample_seeds
        self.epoch = 0
        self.index_by_pid: dict[int, list[int]] = defaultdict(list)
        for i, pid in enumerate(self.pids):
            self.index_by_pid[pid].append(i)
        self.unique_pids = sorted(self.index_by_pid)
        if len(self.unique_pids) < self.P:
            raise ValueError(
                f"The training set has {len(self.unique_pids)} identities but P={self.P} identities per batch "
                f"were asked for; use P <= {len(self.unique_pids)} (get_config(..., P=...))."
            )
        usual = sum(max(len(v), self.K) // self.K * self.K for v in self.index_by_pid.values())
        self.batches_per_epoch = steps_per_epoch if steps_per_epoch is not None else usual // (self.P * self.K)
        if self.batches_per_epoch < 1:
            raise ValueError(
                f"P x K = {self.P} x {self.K} is larger than one epoch of the training set "
                f"({usual} usable images); lower P or K."
            )

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order the next ``__iter__`` yields (0- or 1-based, caller's choice)."""
        self.epoch = int(epoch)

    @property
    def local_batch_size(self) -> int:
        """Samples of each batch that this process loads: ``P * K / num_replicas``."""
        return self.P * self.K // self.num_replicas

    def __len__(self) -> int:
        return self.batches_per_epoch * self.local_batch_size

    def _one_round(self, rng: np.random.Generator) -> list[list[int]]:
        chunks: dict[int, list[list[int]]] = {}
        for pid in self.unique_pids:
            idxs = np.asarray(self.index_by_pid[pid])
            if len(idxs) < self.K:
                idxs = rng.choice(idxs, size=self.K, replace=True)
            else:
                idxs = rng.permutation(idxs)
            n = len(idxs) // self.K * self.K
            chunks[pid] = [idxs[i : i + self.K].tolist() for i in range(0, n, self.K)]
        batches = []
        available = [p for p in self.unique_pids if chunks[p]]
        while len(available) >= self.P:
            chosen = rng.choice(len(available), size=self.P, replace=False)
            batch: list[int] = []
            for j in chosen:
                batch.extend(chunks[available[j]].pop())
            batches.append(batch)
            available = [p for p in available if chunks[p]]
        return batches

    def batches(self) -> list[list[int]]:
        """The epoch's batches (each a list of ``P*K`` indices, identity-grouped)."""
        rng = np.random.default_rng([self.seed, self.epoch])
        out: list[list[int]] = []
        while len(out) < self.batches_per_epoch:
            out.extend(self._one_round(rng))
        return out[: self.batches_per_epoch]

    def __iter__(self) -> Iterator[int] | Iterator[tuple[int, int]]:
        batches = self.batches()
        flat = [i for b in batches for i in b]
        seeds: list[int] | None = None
        if self.with_sample_seeds:  # drawn for the whole global order, so a sample's seed is the same in every split
            seed_rng = np.random.default_rng([self.seed, self.epoch, 1])
            seeds = seed_rng.integers(0, 2**62, size=len(flat)).tolist()
        if self.num_replicas > 1:
            n, first = self.local_batch_size, self.rank * self.local_batch_size
            mine = [b * self.P * self.K + first + j for b in range(len(batches)) for j in range(n)]
            flat = [flat[p] for p in mine]
            seeds = [seeds[p] for p in mine] if seeds is not None else None
        if seeds is None:
            yield from flat
        else:
            yield from zip(flat, seeds)
