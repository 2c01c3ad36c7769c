"""Several processes: ``torchrun --nproc_per_node=2 -m sisnet.train`` (gloo, CPU) computes what one process computes.

What makes the 2-process loss equal to the 1-process loss on the same global batch (sisnet.distributed's doc):
each process loads half of every global PK batch (whole identities, the same images and augmentation), the
batch-hard triplet loss mines each anchor's positives and negatives among the features gathered from both
processes, and BatchNorm normalises with the statistics of the whole global batch -- which needs SyncBN
(``sync_bn=True``): with per-process BatchNorm statistics the first-step loss of this configuration differs by
about 0.3 (measured), because every feature depends on which other samples share its BatchNorm batch. DRC is on,
so its CAM scale (the BNNeck's batch statistics) is synced too. With those, every loss term is a mean over
samples of per-sample values, so the mean of the two processes' losses is the global loss and DDP's gradient
average is its gradient.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sisnet import engine
from sisnet.data.sampler import RandomIdentitySampler
from sisnet.engine import fit
from sisnet.runs import load_history, run_key
from sisnet.train import command, parse_overrides, train_config

REPO = Path(__file__).resolve().parents[1]
LOSS_KEYS = ("loss_total", "loss_id", "loss_triplet", "loss_drc")
# Two epochs of one step each: epoch e's recorded loss is the loss of step e.
OVERRIDES = {"epochs": 2, "steps_per_epoch": 1, "drc": True, "sync_bn": True}


def _data_root(path: Path, synthetic: Path) -> Path:
    """A data root whose smoke-profile synthetic folder is the session's tiny set."""
    (path / "synthetic-tiny").parent.mkdir(parents=True, exist_ok=True)
    (path / "synthetic-tiny").symlink_to(synthetic, target_is_directory=True)
    return path


def _run(cmd: list[str]) -> str:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]),
               OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout


def _max_diff(a: dict, b: dict) -> float:
    return max(abs(a[k] - b[k]) for k in LOSS_KEYS)


def test_pk_batches_split_into_whole_identities_and_put_together_again():
    pids = [i // 5 for i in range(60)]
    one = RandomIdentitySampler(pids, 4, 3, seed=7, with_sample_seeds=True)
    one.set_epoch(3)
    whole = list(one)
    parts = []
    for rank in range(2):
        s = RandomIdentitySampler(pids, 4, 3, seed=7, with_sample_seeds=True, rank=rank, num_replicas=2)
        s.set_epoch(3)
        parts.append(list(s))
        assert len(parts[-1]) == len(s) == len(whole) // 2 and s.local_batch_size == 6
    for b in range(len(whole) // 12):
        halves = [parts[r][b * 6 : (b + 1) * 6] for r in range(2)]
        assert halves[0] + halves[1] == whole[b * 12 : (b + 1) * 12]  # same images, same sample seeds
        for half in halves:  # whole identity groups: 2 identities x K=3
            labels = [pids[i] for i, _ in half]
            assert len(set(labels)) == 2 and all(labels.count(p) == 3 for p in set(labels))
    with pytest.raises(ValueError, match="multiple of 3"):
        RandomIdentitySampler(pids, 4, 3, rank=0, num_replicas=3)


def test_command_and_overrides_build_the_same_run(tmp_path):
    assert parse_overrides(["epochs=3", "sync_bn=True", "milestones=(2, 3)", "backbone=resnet18", "pretrained='auto'"]) \
        == {"epochs": 3, "sync_bn": True, "milestones": (2, 3), "backbone": "resnet18", "pretrained": "auto"}
    with pytest.raises(ValueError, match="key=value"):
        parse_overrides(["epochs"])
    overrides = {"seed": 2, "milestones": (2,), "drc": True, "pretrained": False}
    cmd = command("smoke", "synthetic", tmp_path, overrides, nproc=4, force=True)
    assert cmd[:5] == [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=4"]
    assert cmd[5:8] == ["-m", "sisnet.train", "--profile"] and "--force" in cmd
    sets = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--set"]
    again = train_config("smoke", "synthetic", tmp_path, parse_overrides(sets))
    assert again == train_config("smoke", "synthetic", tmp_path, overrides)  # the same run
    assert command("smoke", "synthetic", tmp_path, nproc=1)[:3] == [sys.executable, "-m", "sisnet.train"]
    with pytest.raises(ValueError, match="nproc"):
        command("smoke", "synthetic", tmp_path, nproc=0)


def test_notebook_runs_launch_torchrun_with_the_notebooks_config(tmp_path, monkeypatch):
    from sisnet.report import setup
    from sisnet.report.runs import grid_config, launch_command

    monkeypatch.setenv("SISNET_NPROC", "2")
    ctx = setup("smoke", "synthetic", data_root=tmp_path / "data", results_dir=tmp_path / "results", chdir=False)
    assert ctx.nproc == 2
    overrides = {"siamese": True, "drc": True, "triplet": True, "seed": 3}
    cmd = launch_command(ctx, overrides)
    assert "--nproc_per_node=2" in cmd and cmd[cmd.index("--data-root") + 1] == str(ctx.data_root)
    sets = parse_overrides([cmd[i + 1] for i, a in enumerate(cmd) if a == "--set"])
    launched = train_config("smoke", "synthetic", ctx.data_root, sets)
    assert launched == grid_config(ctx, "SiSNet+DRC", "S.+T.", 3)  # the run the notebook reads


def test_torchrun_two_processes_match_one_process_and_resume(tiny_synthetic_root, tmp_path, monkeypatch):
    # One process, in this process: the reference losses of steps 1 and 2.
    ref = fit(train_config("smoke", "synthetic", _data_root(tmp_path / "one", tiny_synthetic_root), OVERRIDES),
              progress=False)

    # Two processes from scratch.
    root = _data_root(tmp_path / "two", tiny_synthetic_root)
    cfg = train_config("smoke", "synthetic", root, OVERRIDES)
    _run(command("smoke", "synthetic", root, OVERRIDES, nproc=2))
    histories = sorted((root / "runs").glob("*/history.json"))
    assert [h.parent.name for h in histories] == [run_key(cfg, world_size=2)]  # one history, written by rank 0
    two = load_history(histories[0])
    assert two["complete"] and two["processes"] == 2 and [e["epoch"] for e in two["epochs"]] == [1, 2]
    assert len(two["evals"]) == len(ref["evals"])  # evaluated by rank 0 only
    first = _max_diff(two["epochs"][0], ref["epochs"][0])
    second = _max_diff(two["epochs"][1], ref["epochs"][1])
    print(f"\nfirst-step loss |2 processes - 1 process| = {first:.2e}; second step (after one DDP update) {second:.2e}")
    assert first <= 1e-5
    assert second <= 1e-4  # also checks the gradient average: the step-2 loss depends on the step-1 update

    # Resume under DDP: a one-process run stopped after epoch 1, continued by two processes.
    root = _data_root(tmp_path / "resume", tiny_synthetic_root)
    cfg = train_config("smoke", "synthetic", root, OVERRIDES)
    run_dir = root / "runs" / run_key(cfg)

    class Stop(Exception):
        pass

    real_save = engine.save_checkpoint

    def save_then_stop(*args, **kwargs):
        real_save(*args, **kwargs)
        raise Stop

    monkeypatch.setattr(engine, "save_checkpoint", save_then_stop)
    with pytest.raises(Stop):
        fit(cfg, progress=False)
    monkeypatch.undo()
    stopped = load_history(run_dir)
    assert not stopped["complete"] and [e["epoch"] for e in stopped["epochs"]] == [1]
    _run(command("smoke", "synthetic", root, OVERRIDES, nproc=2))
    resumed = load_history(run_dir)
    assert resumed["complete"] and resumed["processes"] == 2 and [e["epoch"] for e in resumed["epochs"]] == [1, 2]
    assert resumed["epochs"][0] == stopped["epochs"][0]
    # step 2 starts from the checkpoint's weights and optimizer state, in both processes: the one-process loss
    assert _max_diff(resumed["epochs"][1], ref["epochs"][1]) <= 1e-5
    assert int(torch.load(run_dir / "last.pt", weights_only=True)["epoch"]) == 2


def test_reproduce_passes_nproc_to_the_kernels(monkeypatch):
    from sisnet import reproduce

    with pytest.raises(ValueError, match="nproc"):
        reproduce.reproduce("smoke", nproc=0)
    monkeypatch.delenv("SISNET_NPROC", raising=False)
    with reproduce._kernel_env("SISNET_NPROC", "4"):
        assert os.environ["SISNET_NPROC"] == "4"  # what papermill's kernels inherit, read by report.setup
    assert "SISNET_NPROC" not in os.environ
