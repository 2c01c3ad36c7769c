"""Runs cache keys and resume across devices and precisions, and mixed precision where a CPU can test it.

- ``sisnet.runs.run_key``: the effective precision and the dataset's fingerprint are part of a run's key, so
  a CPU (fp32) run never answers a GPU (bf16/fp16) request and replaced data is never answered from the cache;
- resume: a checkpoint of another precision or other data is refused with a clear message (an fp16
  GradScaler fed an fp32 checkpoint used to crash), a checkpoint resumes on another device, and the fp16
  GradScaler state goes through save and resume;
- AMP on CPU: ``train_step`` under bf16 autocast (SiSNet + DRC + triplet) gives finite float32 losses close to
  float32 training, and the triplet distances stay float32 under autocast.

CUDA itself is not exercised here (no GPU on the test machines); its precision decision is, with
``torch.cuda`` patched.
"""
from __future__ import annotations

import copy
import json
import math
import os
import shutil

import pytest
import torch

import sisnet.engine as engine
from sisnet.config import get_config
from sisnet.data import load_dataset
from sisnet.engine import CheckpointMismatchError, fit
from sisnet.model import build_model
from sisnet.runs import run_key
from sisnet.utils import autocast_dtype, precision_name


def _results(history) -> tuple:
    """What a run computed: per-epoch losses and lr, every evaluation, the weights it started from."""
    epochs = [{k: v for k, v in e.items() if not k.endswith("seconds")} for e in history["epochs"]]
    return epochs, history["evals"], history["weights"], history["run_id"], history["complete"]


@pytest.fixture
def fake_cuda(monkeypatch):
    """Pretend CUDA exists (for the precision decision and the run key only; nothing runs on it)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    state = {"bf16": True}
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: state["bf16"])
    return state


# ----------------------------------------------------------------------------------------- the run key
def test_precision_follows_amp_and_device(fake_cuda):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert [precision_name(a, cpu) for a in ("auto", "off", "bf16", "fp16")] == ["fp32", "fp32", "bf16", "fp16"]
    assert [precision_name(a, cuda) for a in ("auto", "off", "bf16", "fp16")] == ["bf16", "fp32", "bf16", "fp16"]
    fake_cuda["bf16"] = False  # e.g. a V100: auto is fp16 (+ GradScaler)
    assert precision_name("auto", cuda) == "fp16" and autocast_dtype("auto", cuda) == torch.float16
    assert precision_name("bf16", torch.device("meta")) == "fp32"  # other devices: no autocast


def test_a_cpu_run_never_answers_a_gpu_request(tiny_synthetic_root, fake_cuda):
    ds = load_dataset("synthetic", tiny_synthetic_root)
    cfg = get_config("smoke", dataset_dir=str(tiny_synthetic_root))
    on_cpu = run_key(cfg, ds, "cpu")
    assert run_key(cfg, ds, "cuda") != on_cpu  # amp="auto": fp32 on CPU, bf16 on CUDA
    fake_cuda["bf16"] = False
    assert run_key(cfg, ds, "cuda") != on_cpu  # fp16 on CUDA without bf16
    # the same effective precision is the same run, whatever asked for it: a run may move between machines
    assert run_key(cfg.replace(amp="off"), ds, "cuda") == on_cpu == run_key(cfg.replace(amp="off"), ds, "cpu")
    assert run_key(cfg.replace(amp="bf16"), ds, "cpu") == run_key(cfg.replace(amp="bf16"), ds, "cuda")
    # device="auto" resolves like fit does (here CUDA "exists")
    assert run_key(cfg.replace(device="auto"), ds) == run_key(cfg, ds, "cuda")


def test_replaced_data_is_a_different_run(tiny_synthetic_root, tmp_path):
    from sisnet.data.synthetic import META_FILE

    assert META_FILE == "meta.json"  # what ReIDDataset.fingerprint reads without importing the generator
    root = tmp_path / "synthetic"
    shutil.copytree(tiny_synthetic_root, root)
    cfg = get_config("smoke", dataset_dir=str(root))

    def key():
        return run_key(cfg, load_dataset("synthetic", root), "cpu")

    base = key()
    assert key() == base  # deterministic; also memoised per loaded dataset
    ds = load_dataset("synthetic", root)
    assert ds.fingerprint() is ds.fingerprint() and len(ds.fingerprint()) == 16
    # a synthetic set is identified by its generator record and file sizes: regenerating it (new mtimes,
    # same bytes) keeps its runs ...
    for p in root.rglob("*.jpg"):
        os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 10**9))
    assert key() == base
    # ... another generator seed or version is other data
    meta = json.loads((root / META_FILE).read_text())
    meta["config"]["seed"] += 1
    (root / META_FILE).write_text(json.dumps(meta))
    assert key() != base
    # replaced images under the same folder: another run (here a real dataset, without the generator record)
    (root / META_FILE).unlink()
    real = key()
    train = sorted((root / "bounding_box_train").glob("*.jpg"))
    train[0].write_bytes(train[1].read_bytes())  # another image under the same name
    assert key() != real
    before = key()
    p = train[2]
    os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 1))  # same bytes, rewritten: treated as new
    assert key() != before


def test_notebooks_and_fit_use_the_same_run_folder(tiny_synthetic_root, tmp_path):
    from sisnet import report

    data_root = tmp_path / "data"
    shutil.copytree(tiny_synthetic_root, data_root / "synthetic-tiny")
    ctx = report.setup("smoke", "synthetic", data_root, tmp_path / "results", chdir=False)
    run = report.train(ctx, "Baseline", "S.", progress=False)
    cfg = report.grid_config(ctx, "Baseline", "S.")
    assert run.run_dir == report.run_folder(ctx, cfg) == data_root / "runs" / run.history["run_id"]
    assert run.history["run_id"] == run_key(cfg, report.load(ctx))


# ----------------------------------------------------------------------------------- resume and precision
def _stop_after_epoch(monkeypatch, epoch: int) -> None:
    """Make fit stop (as if killed) right after the checkpoint of ``epoch`` is written."""
    real = engine.save_checkpoint

    def save_then_stop(*args, **kwargs):
        real(*args, **kwargs)
        if args[6] == epoch:  # save_checkpoint(ckpt, history, model, opt, sched, scaler, epoch, ...)
            raise KeyboardInterrupt

    monkeypatch.setattr(engine, "save_checkpoint", save_then_stop)


def test_a_checkpoint_of_another_precision_is_refused_not_crashed_on(tiny_synthetic_root, tmp_path, monkeypatch):
    cfg = get_config("smoke", dataset_dir=str(tiny_synthetic_root), device="cpu", epochs=2, eval_last=1)
    run_dir = tmp_path / "run"
    _stop_after_epoch(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        fit(cfg, run_dir=run_dir, progress=False)
    monkeypatch.undo()
    # resuming this fp32 checkpoint in fp16 used to crash inside GradScaler.load_state_dict ("The source state
    # dict is empty"); resuming it in bf16 would silently mix precisions
    for amp, want in (("fp16", "fp16"), ("bf16", "bf16")):
        with pytest.raises(CheckpointMismatchError, match=f"trained in fp32 \\(on cpu\\), but this run would "
                                                          f"train in {want}") as err:
            fit(cfg.replace(amp=amp), run_dir=run_dir, progress=False)
        assert "amp='off'" in str(err.value)
    (run_dir / "history.json").unlink()  # the checkpoint alone says it too
    with pytest.raises(CheckpointMismatchError, match="trained in fp32"):
        fit(cfg.replace(amp="fp16"), run_dir=run_dir, progress=False)
    # the last guard: an fp16 GradScaler is never fed another precision's (empty) state
    with pytest.raises(CheckpointMismatchError, match="no fp16 GradScaler state"):
        engine._restore_scaler(torch.amp.GradScaler("cpu", enabled=True), {}, run_dir / "last.pt")
    # the same precision resumes (and finishes) normally
    h = fit(cfg.replace(amp="off"), run_dir=run_dir, progress=False)
    assert h["complete"] and h["precision"] == "fp32" and [e["epoch"] for e in h["epochs"]] == [1, 2]


def test_a_checkpoint_of_other_data_is_refused(tiny_synthetic_root, tmp_path):
    root = tmp_path / "synthetic"
    shutil.copytree(tiny_synthetic_root, root)
    cfg = get_config("smoke", dataset_dir=str(root), epochs=1)
    fit(cfg, run_dir=tmp_path / "run", progress=False)
    train = sorted((root / "bounding_box_train").glob("*.jpg"))
    train[0].write_bytes(train[1].read_bytes())
    with pytest.raises(CheckpointMismatchError, match="trained on other data"):
        fit(cfg, run_dir=tmp_path / "run", progress=False)


def test_a_checkpoint_resumes_on_another_device(tiny_synthetic_root, tmp_path, monkeypatch):
    """A run checkpointed on CUDA resumes on the CPU (and the history says where it trained).

    Without a GPU the checkpoint's tensors are CPU tensors marked as written on CUDA; what makes the real
    case work is ``torch.load(map_location="cpu")`` and ``Optimizer.load_state_dict`` moving the state to
    the parameters' device, both used by fit.
    """
    cfg = get_config("smoke", dataset_dir=str(tiny_synthetic_root), device="cpu", epochs=2, eval_last=1)
    reference = fit(cfg, run_dir=tmp_path / "reference", progress=False)
    run_dir = tmp_path / "moved"
    _stop_after_epoch(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        fit(cfg, run_dir=run_dir, progress=False)
    monkeypatch.undo()
    ckpt = torch.load(run_dir / "last.pt", weights_only=True)
    assert ckpt["devices"] == ["cpu"] and ckpt["precision"] == "fp32"
    ckpt["devices"] = ["cuda"]
    history = json.loads(ckpt["history"])
    history["devices"] = ["cuda"]
    ckpt["history"] = json.dumps(history)
    torch.save(ckpt, run_dir / "last.pt")
    (run_dir / "history.json").write_text(json.dumps(history))
    resumed = fit(cfg, run_dir=run_dir, progress=False)
    assert resumed["devices"] == ["cuda", "cpu"] and resumed["complete"]
    assert _results(resumed) == _results(reference)  # the same run, bit for bit, as the uninterrupted one


# The first fp16 steps overflow at GradScaler's initial scale 2**16 and are skipped while it backs off; torch
# then warns that the LR scheduler stepped before the optimizer. Expected here.
@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before `optimizer.step\\(\\)`")
def test_fp16_grad_scaler_state_goes_through_save_and_resume(tiny_synthetic_root, tmp_path, monkeypatch):
    # fp16 on a CPU runs ~15x slower than fp32 (no native kernels): one step per epoch of a small Baseline
    cfg = get_config("smoke", dataset_dir=str(tiny_synthetic_root), device="cpu", amp="fp16", epochs=2,
                     steps_per_epoch=1, eval_every=0, eval_last=1, siamese=False, img_height=32, img_width=16,
                     pad_px=1)
    reference = fit(cfg, run_dir=tmp_path / "reference", progress=False)
    assert reference["precision"] == "fp16"
    ref_scaler = torch.load(tmp_path / "reference" / "last.pt", weights_only=True)["scaler"]
    _stop_after_epoch(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        fit(cfg, run_dir=tmp_path / "killed", progress=False)
    monkeypatch.undo()
    mid = torch.load(tmp_path / "killed" / "last.pt", weights_only=True)["scaler"]
    fresh = torch.amp.GradScaler("cpu", enabled=True).state_dict()
    # after a step the state differs from a fresh scaler's (growth tracker, or a backed-off scale):
    # a resume that dropped it would end elsewhere
    assert mid and mid != fresh
    resumed = fit(cfg, run_dir=tmp_path / "killed", progress=False)
    assert torch.load(tmp_path / "killed" / "last.pt", weights_only=True)["scaler"] == ref_scaler
    assert _results(resumed) == _results(reference)


# ------------------------------------------------------------------------------------------ AMP on CPU
# Tolerances for one training step from the same weights and batch, bf16 autocast vs float32 (relative):
# measured over seeds 0-3 x {Baseline, SiSNet, SiSNet+DRC native, SiSNet+DRC degrade}, smoke profile
# (resnet18, 64x32), the worst were id 5.4e-5, triplet 3.6e-3, DRC 2.0e-2 (min-max normalised CAM
# differences amplify bf16's 2^-9 relative rounding of the feature maps), total 1.5e-3. The bounds are
# about 3x those.
BF16_RTOL = {"id": 2e-4, "triplet": 1e-2, "drc": 6e-2, "total": 5e-3}


@pytest.mark.parametrize("small_view", ["native", "degrade"])
def test_train_step_under_bf16_autocast_on_cpu(tiny_synthetic_root, monkeypatch, small_view):
    ds = load_dataset("synthetic", tiny_synthetic_root)
    cfg32 = get_config("smoke", dataset_dir=str(tiny_synthetic_root), drc=True, triplet=True, small_view=small_view)
    cfg16 = cfg32.replace(amp="bf16")
    assert autocast_dtype(cfg16.amp, torch.device("cpu")) == torch.bfloat16
    torch.manual_seed(0)
    m32 = build_model(cfg32, ds.num_train_pids)
    m16 = copy.deepcopy(m32)
    loader = engine.build_train_loader(cfg32, ds)
    loader.sampler.set_epoch(1)
    batch = next(iter(loader))

    seen = {}
    real = engine.config_losses

    def spy(model, out_full, out_small, targets, config, *rest):
        seen["feature_map"] = out_full.feature_map.dtype
        seen["losses"] = out = real(model, out_full, out_small, targets, config, *rest)
        return out

    monkeypatch.setattr(engine, "config_losses", spy)
    l32 = engine.train_step(m32, engine.build_optimizer(cfg32, m32)[0], batch, cfg32)
    assert seen["feature_map"] == torch.float32
    l16 = engine.train_step(m16, engine.build_optimizer(cfg16, m16)[0], batch, cfg16)
    l32, l16 = ({k: float(v) for k, v in losses.items()} for losses in (l32, l16))  # device tensors: no host sync
    assert seen["feature_map"] == torch.bfloat16  # autocast really ran the backbone in bf16
    # every loss term is reduced in float32 (CE casts its logits, triplet and CAM/DRC disable autocast)
    assert {k: v.dtype for k, v in seen["losses"].items()} == dict.fromkeys(("id", "triplet", "drc", "total"),
                                                                            torch.float32)
    for k, rtol in BF16_RTOL.items():
        assert math.isfinite(l16[k]) and l16[k] > 0, (k, l16)
        assert l16[k] == pytest.approx(l32[k], rel=rtol), (k, l16[k], l32[k])
    # the step updated float32 weights with finite values
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in m16.parameters())
    assert not torch.equal(m16.classifier.weight, m32.classifier.weight)


def test_triplet_distances_stay_float32_under_autocast():
    from sisnet.losses import TripletLoss

    torch.manual_seed(0)
    feats = (torch.randn(16, 512) * 0.5 + 0.3).to(torch.bfloat16).float()  # bf16-valued, magnitudes ~10
    targets = torch.arange(8).repeat_interleave(2)
    plain = TripletLoss(0.3)(feats, targets)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        auto = TripletLoss(0.3)(feats, targets)
        dist = TripletLoss.pairwise_distance(feats)
    assert auto.dtype == dist.dtype == torch.float32
    # the same features give the same loss: the x @ x.T of the distance is not rounded to bf16 (it was: 0.6 %)
    assert auto.item() == pytest.approx(plain.item(), rel=1e-6)
    assert dist.diagonal().max().item() < 0.05  # float32 cancellation at |x|^2 ~ 170; bf16 gave ~0.5
