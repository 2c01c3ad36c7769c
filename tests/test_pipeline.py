"""Two-scale input pipeline: PK sampler structure and the shared augmentation of the two views."""
from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from sisnet.config import get_config
from sisnet.data.sampler import RandomIdentitySampler
from sisnet.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    EvalTransform,
    TwoScaleDataset,
    TwoScaleTransform,
    degrade,
)

# 10 identities; identity 9 has a single image (must be sampled with replacement), identity 0 has 7.
PIDS = [0] * 7 + [1] * 4 + [2] * 4 + [3] * 5 + [4] * 4 + [5] * 4 + [6] * 6 + [7] * 4 + [8] * 4 + [9] * 1


def _batches(sampler):
    flat = list(sampler)
    n = sampler.P * sampler.K
    assert len(flat) == len(sampler) and len(flat) % n == 0
    return [flat[i : i + n] for i in range(0, len(flat), n)]


def test_pk_sampler_structure():
    sampler = RandomIdentitySampler(PIDS, P=3, K=4, seed=0)
    sampler.set_epoch(1)
    batches = _batches(sampler)
    # usual epoch length: sum over ids of max(n, K) rounded down to a multiple of K, in whole batches of P*K
    usable = sum(max(n, 4) // 4 * 4 for n in Counter(PIDS).values())
    assert len(batches) == usable // 12
    for b in batches:
        pids = [PIDS[i] for i in b]
        counts = Counter(pids)
        assert len(counts) == 3 and set(counts.values()) == {4}
        # identity-grouped: K consecutive indices share a pid
        assert all(len(set(pids[j : j + 4])) == 1 for j in range(0, 12, 4))


def test_pk_sampler_small_identity_and_seeding():
    seen9 = 0
    for epoch in range(6):
        s = RandomIdentitySampler(PIDS, P=3, K=4, seed=0)
        s.set_epoch(epoch)
        for b in _batches(s):
            chunk9 = [i for i in b if PIDS[i] == 9]
            if chunk9:
                seen9 += 1
                assert chunk9 == [len(PIDS) - 1] * 4  # the single image, repeated (with replacement)
    assert seen9 > 0
    a = RandomIdentitySampler(PIDS, 3, 4, seed=0)
    b = RandomIdentitySampler(PIDS, 3, 4, seed=0)
    a.set_epoch(2), b.set_epoch(2)
    assert list(a) == list(b)
    b.set_epoch(3)
    assert list(a) != list(b)
    c = RandomIdentitySampler(PIDS, 3, 4, seed=1)
    c.set_epoch(2)
    assert list(a) != list(c)


def test_pk_sampler_steps_per_epoch_and_errors():
    s = RandomIdentitySampler(PIDS, P=3, K=4, seed=0, steps_per_epoch=7)  # more than one round
    s.set_epoch(0)
    assert len(_batches(s)) == 7
    with pytest.raises(ValueError, match="P <= 10"):
        RandomIdentitySampler(PIDS, P=11, K=2)
    seeded = RandomIdentitySampler(PIDS, P=3, K=4, seed=0, with_sample_seeds=True)
    plain = RandomIdentitySampler(PIDS, P=3, K=4, seed=0)
    assert [i for i, _ in seeded] == list(plain)


def _asymmetric_image(h=64, w=32):
    img = torch.zeros(3, h, w, dtype=torch.uint8)
    img[:, :, : w // 2] = 255  # left half white, right half black
    return img


def _denorm(x):
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return x * std + mean


@pytest.mark.parametrize("small_view, small_hw", [("native", (32, 16)), ("degrade", (64, 32))])
def test_two_views_sizes(small_view, small_hw):
    cfg = get_config("smoke", small_view=small_view)
    full, small = TwoScaleTransform(cfg.view_spec())(_asymmetric_image(), random.Random(0))
    assert full.shape == (3, 64, 32) and full.dtype == torch.float32
    assert small.shape == (3, *small_hw)
    # an image of another size is resized first
    full2, small2 = TwoScaleTransform(cfg.view_spec())(torch.zeros(3, 128, 64, dtype=torch.uint8), random.Random(0))
    assert full2.shape == (3, 64, 32) and small2.shape == (3, *small_hw)


def _white_centroid(x):
    """Centroid (row, col) of the bright pixels of a (3, H, W) image, as fractions of H and W."""
    m = (x.mean(0) > 0.5).float()
    h, w = m.shape
    rows = (torch.arange(h).float() + 0.5) / h
    cols = (torch.arange(w).float() + 0.5) / w
    return float((m.sum(1) * rows).sum() / m.sum()), float((m.sum(0) * cols).sum() / m.sum())


def test_two_views_share_flip_crop_and_erasing():
    cfg = get_config("smoke", flip_prob=1.0, pad_px=0, erasing_prob=0.0)
    full, small = TwoScaleTransform(cfg.view_spec())(_asymmetric_image(), random.Random(0))
    f, s = _denorm(full), _denorm(small)
    # flipped: the white half is now on the right, in BOTH views
    assert f[:, :, :16].mean() < 0.05 and f[:, :, 16:].mean() > 0.95
    assert s[:, :, :6].mean() < 0.05 and s[:, :, 10:].mean() > 0.95
    # the crop offset is shared: with padding, the black border appears on the same side in both views
    cfg = get_config("smoke", flip_prob=0.0, pad_px=10, erasing_prob=0.0)
    white = torch.full((3, 64, 32), 255, dtype=torch.uint8)
    shifted = 0
    for seed in range(20):
        full, small = TwoScaleTransform(cfg.view_spec())(white, random.Random(seed))
        cf, cs = _white_centroid(_denorm(full)), _white_centroid(_denorm(small))
        assert abs(cf[0] - cs[0]) < 0.05 and abs(cf[1] - cs[1]) < 0.05, (seed, cf, cs)
        shifted += abs(cf[0] - 0.5) > 0.02 or abs(cf[1] - 0.5) > 0.02
    assert shifted >= 10  # the random crop really moved the content for most seeds
    # erasing happens before the small view is made: the erased box (zeros = ImageNet mean) is in both
    cfg = get_config("smoke", flip_prob=0.0, pad_px=0, erasing_prob=1.0, small_view="degrade")
    full, small = TwoScaleTransform(cfg.view_spec())(white, random.Random(3))
    erased = full.abs().sum(0) == 0
    assert erased.any()
    assert (small.abs().sum(0)[erased]).mean() < full.abs().sum(0)[~erased].mean() * 0.5


def test_augmentation_depends_only_on_the_sample_seed_not_on_workers():
    cfg = get_config("smoke", img_height=32, img_width=16, P=2, K=2, steps_per_epoch=3)
    images = torch.randint(0, 256, (12, 3, 32, 16), dtype=torch.uint8)
    records = [(f"img{i}.jpg", i // 3, i % 2) for i in range(12)]
    ds = TwoScaleDataset(records, TwoScaleTransform(cfg.view_spec()), images=images)

    def epoch_batches(workers):
        sampler = RandomIdentitySampler([r[1] for r in records], 2, 2, seed=5, steps_per_epoch=3, with_sample_seeds=True)
        sampler.set_epoch(1)
        loader = DataLoader(ds, batch_size=4, sampler=sampler, num_workers=workers, drop_last=True)
        return list(loader)

    torch.manual_seed(0)
    a = epoch_batches(0)
    torch.manual_seed(123)  # the global RNG must not matter
    b = epoch_batches(2)
    assert len(a) == len(b) == 3
    for (fa, sa, pa, ca), (fb, sb, pb, cb) in zip(a, b):
        assert torch.equal(fa, fb) and torch.equal(sa, sb) and torch.equal(pa, pb) and torch.equal(ca, cb)
        assert fa.shape == (4, 3, 32, 16) and sa.shape == (4, 3, 16, 8)


def test_eval_transform_and_query_degradation():
    cfg = get_config("smoke")
    img = torch.randint(0, 256, (3, 64, 32), dtype=torch.uint8)
    full, small = EvalTransform(cfg.view_spec())(img)
    assert full.shape == (3, 64, 32) and small.shape == (3, 32, 16)
    assert torch.allclose(_denorm(full) * 255, img.float(), atol=1e-3)  # no augmentation at test time
    dfull, dsmall = EvalTransform(cfg.view_spec(), query_scale=0.25)(img)
    assert dfull.shape == full.shape and dsmall.shape == small.shape
    assert torch.allclose(dfull, degrade(full, 0.25))
    assert not torch.allclose(dfull, full, atol=0.1)  # high frequencies are gone
    assert torch.allclose(dfull.mean(), full.mean(), atol=0.05)  # but the image is the same
    with pytest.raises(ValueError, match="query_scale"):
        EvalTransform(cfg.view_spec(), query_scale=0)


def test_device_fed_halves_equal_the_one_image_transform():
    """Batches leave the workers as uint8 + erasing boxes; finishing them (normally on the GPU) gives the same
    views as the per-image transform, bit for bit on the CPU."""
    cfg = get_config("smoke", erasing_prob=1.0, pad_px=5, small_view="native")
    t = TwoScaleTransform(cfg.view_spec())
    imgs = torch.randint(0, 256, (6, 3, 64, 32), dtype=torch.uint8)
    prepared = [t.prepare(img, random.Random(s)) for s, img in enumerate(imgs)]
    assert all(p[0].dtype == torch.uint8 and p[1].shape == (4,) for p in prepared)
    full, small = t.finish(torch.stack([p[0] for p in prepared]), torch.stack([p[1] for p in prepared]))
    for s, img in enumerate(imgs):
        f1, s1 = t(img, random.Random(s))
        assert torch.equal(full[s], f1) and torch.equal(small[s], s1)
    assert t.finish(torch.stack([p[0] for p in prepared]), None, small=False)[1] is None  # Baseline: no second view
    e = EvalTransform(cfg.view_spec(), query_scale=0.5)
    ef, es = e.finish(imgs)
    assert torch.equal(ef[2], e(imgs[2])[0]) and torch.equal(es[2], e(imgs[2])[1])


def test_shifted_crop_and_erasing_boxes_match_pad_crop_and_slicing():
    from torch.nn import functional as F

    from sisnet.data.transforms import _shifted_crop, erase_boxes

    img = torch.randint(1, 256, (3, 20, 12), dtype=torch.uint8)
    p = 4
    for top in range(2 * p + 1):
        for left in range(2 * p + 1):
            ref = F.pad(img, (p, p, p, p))[:, top : top + 20, left : left + 12]
            assert torch.equal(_shifted_crop(img, top - p, left - p), ref)
    x = torch.randn(3, 3, 20, 12)
    boxes = torch.tensor([[2, 3, 5, 4], [0, 0, 0, 0], [15, 9, 5, 3]])
    ref = x.clone()
    for b, (t_, l_, h, w) in enumerate(boxes.tolist()):
        ref[b, :, t_ : t_ + h, l_ : l_ + w] = 0.0
    assert torch.equal(erase_boxes(x.clone(), boxes), ref)


def test_train_loader_ships_uint8_and_the_device_finishes_the_views(tiny_synthetic_root):
    from sisnet.data import load_dataset
    from sisnet.engine import build_train_loader, device_views

    cfg = get_config("smoke", dataset_dir=str(tiny_synthetic_root))
    ds = load_dataset("synthetic", tiny_synthetic_root)
    loader = build_train_loader(cfg, ds)
    loader.sampler.set_epoch(1)
    images, boxes, pids, camids = next(iter(loader))
    assert images.dtype == torch.uint8 and images.shape == (8, 3, 64, 32) and boxes.shape == (8, 4)
    full, small = device_views((images, boxes, pids, camids), cfg, torch.device("cpu"))
    # the same samples through the float path of the dataset (transform on the CPU, per image)
    float_ds = TwoScaleDataset(ds.train, TwoScaleTransform(cfg.view_spec()), images=loader.dataset.images)
    keys = list(loader.sampler)[:8]
    ref = [float_ds[k] for k in keys]
    assert torch.equal(full, torch.stack([r[0] for r in ref])) and torch.equal(small, torch.stack([r[1] for r in ref]))
    baseline = cfg.replace(siamese=False, drc=False)
    assert device_views((images, boxes, pids, camids), baseline, torch.device("cpu"))[1] is None


def test_auto_workers_are_sized_to_the_machine_and_shared_memory(monkeypatch):
    from sisnet.data import loader

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert loader.resolve_workers(3, cpu, 1) == 3 and loader.resolve_workers("auto", cpu, 1) == 0
    monkeypatch.setattr(loader, "_usable_cores", lambda: 32)
    monkeypatch.setattr(loader, "_shared_memory_bytes", lambda: 2**40)
    assert loader.resolve_workers("auto", cuda, 6_291_456) == loader.MAX_AUTO_WORKERS
    assert loader.resolve_workers("auto", cuda, 6_291_456, local_processes=8) == 3  # 32 cores / 8 processes - 1
    monkeypatch.setattr(loader, "_shared_memory_bytes", lambda: 64 * 2**20)  # a container's default /dev/shm
    assert loader.resolve_workers("auto", cuda, 6_291_456) == 2  # 2 workers x 2 batches x 6.3 MB <= 32 MB
    opts = loader.loader_options("auto", cuda, 6_291_456)
    assert opts["pin_memory"] and opts["persistent_workers"] and opts["prefetch_factor"] == loader.PREFETCH
    assert loader.loader_options(0, cpu, 1) == {"num_workers": 0, "pin_memory": False}
    with pytest.raises(ValueError, match="'auto'"):
        get_config("paper", num_workers="many")
    assert get_config("paper").num_workers == "auto"


def test_triplet_loss_without_host_sync_matches_margin_ranking_and_gathered_in_one_process():
    from torch.nn import functional as F

    from sisnet.losses import GatheredTripletLoss, TripletLoss

    g = torch.Generator().manual_seed(1)
    x = torch.randn(12, 8, generator=g)
    t = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3])
    d = TripletLoss.pairwise_distance(x)
    same = t[:, None] == t[None, :]
    d_ap = d.masked_fill(~same, float("-inf")).max(1).values
    d_an = d.masked_fill(same, float("inf")).min(1).values
    ref = F.margin_ranking_loss(d_an, d_ap, torch.ones(12), margin=0.3)
    assert torch.allclose(TripletLoss(0.3)(x, t), ref, atol=1e-6)
    assert torch.equal(GatheredTripletLoss(0.3)(x, t), TripletLoss(0.3)(x, t))  # one process: nothing to gather
    one_id = TripletLoss(0.3)(x.requires_grad_(), torch.zeros(12, dtype=torch.long))
    assert one_id.item() == 0.0 and one_id.requires_grad  # no negative anywhere: zero loss that has a graph
