"""Faults and bad input: a killed run resumes exactly; unsafe/foreign checkpoints, unwritable folders and
bad image files are refused with clear errors before any work is lost."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from sisnet.config import get_config
from sisnet.engine import CheckpointMismatchError, fit
from sisnet.evaluation import evaluate
from sisnet.runs import load_history, load_model, run_key
from sisnet.data.transforms import BadImageError

REPO = Path(__file__).resolve().parents[1]


def _strip_times(history):
    h = json.loads(json.dumps(history))
    for e in h["epochs"]:
        e.pop("seconds", None)
        e.pop("eval_seconds", None)
    h.pop("wall_seconds", None)
    return h


def test_killed_run_resumes_to_the_same_result(tiny_synthetic_root, tmp_path):
    cfg = get_config("smoke", dataset_dir=str(tiny_synthetic_root), runs_dir=str(tmp_path / "runs"),
                     epochs=4, steps_per_epoch=2, eval_every=0, eval_last=2, drc=True)
    killed_dir, ref_dir = tmp_path / "killed", tmp_path / "reference"
    code = textwrap.dedent(f"""
        import torch
        torch.set_num_threads({torch.get_num_threads()})
        from sisnet.config import config_from_dict
        from sisnet.engine import fit
        fit(config_from_dict({cfg.to_dict()!r}), run_dir={str(killed_dir)!r}, progress=False)
    """)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    ckpt = killed_dir / "last.pt"
    deadline = time.monotonic() + 180
    try:
        while not ckpt.exists():
            if proc.poll() is not None:
                pytest.fail(f"training subprocess ended early: {proc.stdout.read().decode()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail("no checkpoint written within 180 s")
            time.sleep(0.005)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    partial = torch.load(ckpt, weights_only=True)
    assert 1 <= partial["epoch"] < cfg.epochs  # really killed mid-run
    if (killed_dir / "history.json").exists():
        assert load_history(killed_dir)["complete"] is False

    resumed = fit(cfg, run_dir=killed_dir, progress=False)
    reference = fit(cfg, run_dir=ref_dir, progress=False)
    assert resumed["complete"] and reference["complete"]
    assert _strip_times(resumed) == _strip_times(reference)  # identical losses and metrics, bit for bit
    a = torch.load(killed_dir / "last.pt", weights_only=True)["model"]
    b = torch.load(ref_dir / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in b)


class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickled_payload_in_a_checkpoint_is_refused(tiny_synthetic_root, tmp_path):
    marker = tmp_path / "pwned"
    cfg = get_config("smoke", dataset_dir=str(tiny_synthetic_root), runs_dir=str(tmp_path / "runs"))
    run_dir = tmp_path / "runs" / run_key(cfg)
    run_dir.mkdir(parents=True)
    torch.save({"run_id": run_key(cfg), "model": _Payload(marker)}, run_dir / "last.pt")
    # the payload really is live: a plain (unsafe) pickle load would run it
    with pytest.raises(ValueError, match="weights_only=True"):
        load_model(run_dir / "last.pt")
    with pytest.raises(ValueError, match="Refusing to load checkpoint"):
        fit(cfg, progress=False)
    assert not marker.exists()


def test_checkpoint_from_a_different_config_is_refused(tiny_synthetic_root, tmp_path):
    cfg = get_config("smoke", dataset_dir=str(tiny_synthetic_root), epochs=1)
    run_dir = tmp_path / "run"
    fit(cfg, run_dir=run_dir, progress=False)
    other = cfg.replace(lr=1e-3)
    with pytest.raises(CheckpointMismatchError) as err:
        fit(other, run_dir=run_dir, progress=False)
    assert run_key(cfg) in str(err.value) and run_key(other) in str(err.value)
    (run_dir / "history.json").unlink()  # only the checkpoint left: still refused, naming both run ids
    with pytest.raises(CheckpointMismatchError, match="different configuration") as err:
        fit(other, run_dir=run_dir, progress=False)
    assert run_key(cfg) in str(err.value) and run_key(other) in str(err.value)
    # the original checkpoint is untouched and still loads
    model, cfg2 = load_model(run_dir / "last.pt")
    assert cfg2 == cfg


def test_unwritable_runs_folder_fails_before_training(tiny_synthetic_root, tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    cfg = get_config("smoke", dataset_dir=str(tiny_synthetic_root), runs_dir=str(blocker / "runs"))
    import sisnet.data

    monkeypatch.setattr(sisnet.data, "load_dataset", lambda *a, **k: pytest.fail("loaded data before the check"))
    with pytest.raises(PermissionError, match="not writable"):
        fit(cfg, progress=False)


def test_unknown_profile_parameter_and_backbone(tmp_path):
    with pytest.raises(ValueError, match="Unknown profile 'gpu'.*smoke"):
        get_config("gpu")
    with pytest.raises(ValueError, match="Unknown config parameter.*'epoch'.*did you mean"):
        get_config("smoke", epoch=3)
    with pytest.raises(ValueError, match="not a timm model name"):
        get_config("smoke", backbone="resnet_fifty")


def _copy_dataset(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_corrupt_truncated_and_non_image_files_are_listed(tiny_synthetic_root, tmp_path):
    root = _copy_dataset(tiny_synthetic_root, tmp_path / "synthetic")
    train = sorted((root / "bounding_box_train").glob("*.jpg"))
    truncated, not_image = train[0], train[5]
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    not_image.write_text("this is a text file with an image name\n")
    cfg = get_config("smoke", dataset_dir=str(root), runs_dir=str(tmp_path / "runs"))
    with pytest.raises(BadImageError) as err:
        fit(cfg, progress=False)
    msg = str(err.value)
    assert str(truncated) in msg and str(not_image) in msg and "2 of" in msg
    assert {p for p, _ in err.value.files} == {str(truncated), str(not_image)}
    assert not (tmp_path / "runs" / run_key(cfg) / "last.pt").exists()  # refused before training


def test_bad_query_image_is_named_at_evaluation(tiny_synthetic_root, tmp_path):
    root = _copy_dataset(tiny_synthetic_root, tmp_path / "synthetic")
    bad = sorted((root / "query").glob("*.jpg"))[1]
    bad.write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(300))  # JPEG magic, garbage body
    from sisnet.data import load_dataset
    from sisnet.model import build_model

    ds = load_dataset("synthetic", root)
    for cache in (True, False):  # decoded up front, or lazily per item: both name the file
        cfg = get_config("smoke", dataset_dir=str(root), cache_images=cache)
        model = build_model(cfg, ds.num_train_pids)
        with pytest.raises(BadImageError, match=bad.name):
            evaluate(model, ds, cfg, modes=("either",))
