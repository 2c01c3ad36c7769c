"""Tests of the synthetic multi-scale ReID generator and the synthetic MOT sequence renderer."""
from __future__ import annotations

import csv
import dataclasses
import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sisnet.data import synthetic as S

NAME_RE = re.compile(r"^(-1|\d{4})_c(\d)s(\d)_(\d{6})_(\d{2})\.jpg$")
SPLITS = ("bounding_box_train", "query", "bounding_box_test")


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _parse(root: Path) -> dict[str, list[tuple[str, int, int]]]:
    out = {}
    for split in SPLITS:
        rows = []
        for p in sorted((root / split).iterdir()):
            m = NAME_RE.match(p.name)
            assert m, f"unparseable name {split}/{p.name}"
            rows.append((p.name, int(m.group(1)), int(m.group(2))))
        out[split] = rows
    return out


def _sidecar(root: Path) -> list[dict]:
    with open(root / "scales.csv", newline="") as fh:
        return list(csv.DictReader(fh))


# ---------------------------------------------------------------------------------------------- layout
def test_tiny_layout_names_and_protocol(tiny_synthetic_root):
    root = tiny_synthetic_root
    sets = _parse(root)
    train_ids = {pid for _, pid, _ in sets["bounding_box_train"]}
    query_ids = {pid for _, pid, _ in sets["query"]}
    gal = sets["bounding_box_test"]
    # the conftest contract: >= 8 train ids, >= 8 test ids, >= 2 cameras, some junk and distractors
    assert len(train_ids) >= 8 and len(query_ids) >= 8
    assert len({c for rows in sets.values() for _, _, c in rows}) >= 2
    assert sum(pid == -1 for _, pid, _ in gal) >= 2 and sum(pid == 0 for _, pid, _ in gal) >= 2
    # junk / distractors only in the gallery; ids disjoint between train and test
    assert all(pid > 0 for _, pid, _ in sets["bounding_box_train"] + sets["query"])
    assert not train_ids & {pid for _, pid, _ in gal}
    assert query_ids == {pid for _, pid, _ in gal if pid > 0}
    # names unique, images are 128x64 JPEGs
    names = [n for rows in sets.values() for n, _, _ in rows]
    assert len(names) == len(set(names))
    with Image.open(root / "query" / sets["query"][0][0]) as im:
        assert im.format == "JPEG" and im.size == (64, 128)
    # query: at most one image per (id, camera); every query has a gallery match in another camera
    qkeys = [(pid, cam) for _, pid, cam in sets["query"]]
    assert len(qkeys) == len(set(qkeys))
    gal_cams = defaultdict(set)
    for _, pid, cam in gal:
        gal_cams[pid].add(cam)
    for pid, cam in qkeys:
        assert gal_cams[pid] - {cam}, f"query {pid} c{cam} has no cross-camera gallery match"


def test_sidecar_covers_every_image_and_heights_in_range(tiny_synthetic_root):
    root = tiny_synthetic_root
    rows = _sidecar(root)
    on_disk = {(s, n) for s, names in _parse(root).items() for n, _, _ in names}
    keys = [(r["split"], r["name"]) for r in rows]
    assert len(keys) == len(set(keys)) and set(keys) == on_disk
    h = np.array([int(r["height_px"]) for r in rows])
    lo, hi = S.SyntheticConfig().height_px_range
    assert h.min() >= lo and h.max() <= hi
    assert h.max() / h.min() >= 3  # a real spread of scales even in the tiny set
    assert {r["view"] for r in rows} <= set(S.VIEWS)
    kinds = {r["name"]: r["kind"] for r in rows}
    assert all((kinds[n] == "junk") == n.startswith("-1_") for n in kinds)
    assert all((kinds[n] == "distractor") == n.startswith("0000_") for n in kinds)
    meta = json.loads((root / "meta.json").read_text())
    assert meta["config"]["seed"] == 0 and meta["counts"] == {s: len(v) for s, v in _parse(root).items()}


def test_load_dataset_reads_generated_set(tiny_synthetic_root):
    from sisnet.data import load_dataset

    ds = load_dataset("synthetic", tiny_synthetic_root)
    sets = _parse(tiny_synthetic_root)
    assert len(ds.train) == len(sets["bounding_box_train"])
    assert len(ds.query) == len(sets["query"])
    # junk (-1) is dropped by the protocol, distractors (0) are kept
    assert len(ds.gallery) == sum(pid != -1 for _, pid, _ in sets["bounding_box_test"])
    assert {r.pid for r in ds.train} == set(range(ds.num_train_pids))
    sc = ds.scales()
    assert sc is not None and len(sc) == len(ds.train) + len(ds.query) + len(ds.gallery)
    # parent folder form: root/.. holding synthetic/
    assert len(load_dataset("synthetic", tiny_synthetic_root.parent).query) == len(ds.query)


# ---------------------------------------------------------------------------------------------- determinism
def test_same_seed_same_bytes_other_seed_differs_and_workers_do_not_matter(tmp_path, tiny_synthetic_root):
    again = S.generate(tmp_path / "again", size="tiny", seed=0, workers=2)
    assert _files(again) == _files(tiny_synthetic_root)
    other = S.generate(tmp_path / "other", size="tiny", seed=1)
    a, b = _files(tiny_synthetic_root), _files(other)
    common = set(a) & set(b)
    assert sum(a[k] == b[k] for k in common) < 0.05 * max(1, len(common))
    assert a["scales.csv"] != b["scales.csv"]


# ---------------------------------------------------------------------------------------------- idempotence
def test_idempotent_and_clear_errors(tmp_path, tiny_synthetic_root):
    before = {p: p.stat().st_mtime_ns for p in tiny_synthetic_root.rglob("*")}
    assert S.generate(tiny_synthetic_root, size="tiny", seed=0) == tiny_synthetic_root
    assert {p: p.stat().st_mtime_ns for p in tiny_synthetic_root.rglob("*")} == before
    # same folder, other config -> clear error naming the fix
    with pytest.raises(FileExistsError, match=r"different configuration.*(another out_dir|delete)"):
        S.generate(tiny_synthetic_root, size="tiny", seed=1)
    # a foreign, non-empty folder
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=r"another out_dir.*delete"):
        S.generate(foreign, size="tiny")
    assert (foreign / "notes.txt").read_text() == "mine"
    # an empty existing folder is fine
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (S.generate(empty, size="tiny", num_junk=1, num_distractor_ids=1) / "meta.json").is_file()
    # bad arguments
    with pytest.raises(ValueError, match="choose one of"):
        S.generate(tmp_path / "x", size="huge")
    with pytest.raises(ValueError, match="valid fields"):
        S.generate(tmp_path / "x", size="tiny", num_ids=3)
    with pytest.raises(ValueError, match="cams_per_id"):
        S.generate(tmp_path / "x", size="tiny", cams_per_id=(2, 9))
    with pytest.raises(ValueError, match="camera_cast"):
        S.generate(tmp_path / "x", size="tiny", camera_cast=1.5)
    assert not (tmp_path / "x").exists()


def test_killed_generation_never_looks_complete(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = S.writer._render_chunk

    def dying(args):
        calls["n"] += 1
        if calls["n"] > 20:
            raise KeyboardInterrupt("simulated kill")
        return real(args)

    monkeypatch.setattr(S.writer, "_render_chunk", dying)  # where generate looks it up
    out = tmp_path / "syn"
    with pytest.raises(KeyboardInterrupt):
        S.generate(out, size="tiny")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # the temporary sibling is gone too


# ---------------------------------------------------------------------------------------------- scale cues
def test_render_person_height_is_exact():
    idn = S.make_identity(0, 3)
    for h in (13, 24, 57, 100, 200):
        for view in S.VIEWS:
            img = S.render_person(idn, h, view, np.random.default_rng(h))
            assert img.mode == "RGBA" and img.height == h
            x0, y0, x1, y1 = img.getchannel("A").getbbox()
            assert y0 == 0 and y1 >= h - 1 and x1 - x0 < 0.6 * h
    with pytest.raises(ValueError, match="view"):
        S.render_person(idn, 50, "top", np.random.default_rng(0))


def _logo_contrast(idn: S.Identity, height_px: int, view: str = "front") -> float:
    """Largest per-pixel colour change that the logo alone causes in the stored 128x64 crop."""
    cam = S.camera_model(0, 0)
    no_logo = dataclasses.replace(idn, logo=None)
    a, _ = S.render_capture(idn, cam, np.random.default_rng(7), height_px=height_px, view=view)
    b, _ = S.render_capture(no_logo, cam, np.random.default_rng(7), height_px=height_px, view=view)
    return float(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32)).max())


def test_small_cue_visible_when_large_and_blurred_away_when_small():
    # an identity whose logo contrasts strongly with its (plain) top
    idn = next(i for i in (S.make_identity(0, k) for k in range(1, 500))
               if i.logo is not None and i.top_texture == "plain" and abs(sum(i.logo) - sum(i.top)) > 300)
    large, small = _logo_contrast(idn, 256), _logo_contrast(idn, 24)
    assert large > 100, large
    assert small < 0.4 * large, (small, large)
    # the logo is on the chest: invisible from the back
    assert _logo_contrast(idn, 256, view="back") == 0.0


# ---------------------------------------------------------------------------------------------- MOT
def test_mot_sequence(tmp_path):
    seq = S.render_mot_sequence(tmp_path / "SYN-01", num_frames=30, num_people=5, seed=3)
    ini = (seq / "seqinfo.ini").read_text()
    for line in ("name=SYN-01", "imDir=img1", "frameRate=10", "seqLength=30", "imWidth=640", "imHeight=480",
                 "imExt=.jpg"):
        assert line in ini
    frames = sorted((seq / "img1").glob("*.jpg"))
    assert [f.name for f in frames] == [f"{i:06d}.jpg" for i in range(1, 31)]
    gt = np.loadtxt(seq / "gt" / "gt.txt", delimiter=",", ndmin=2)
    assert gt.shape[1] == 9
    frame, tid, x, y, w, h, conf, cls, vis = gt.T
    assert frame.min() >= 1 and frame.max() <= 30 and (conf == 1).all() and (cls == 1).all()
    assert ((vis >= 0) & (vis <= 1)).all() and (vis < 0.999).any() and (vis > 0.999).any()
    # every box overlaps the image (1-based coordinates) and ids are unique per frame
    assert ((x + w > 1) & (y + h > 1) & (x <= 640) & (y <= 480)).all()
    assert len({(a, b) for a, b in zip(frame, tid)}) == len(frame)
    # some track changes its height by more than 2x
    ratios = [h[tid == t].max() / h[tid == t].min() for t in np.unique(tid)]
    assert max(ratios) > 2.0
    # boxes hold what was drawn: pixels that differ from the (median) background lie inside that frame's boxes
    # (luminance sum on every 2nd pixel keeps the median cheap)
    imgs = np.stack([np.asarray(Image.open(f), np.int16)[::2, ::2].sum(-1) for f in frames])
    bg = np.median(imgs, axis=0)
    inside_frac = []
    for f in range(1, 31):
        fg = np.abs(imgs[f - 1] - bg) > 90
        mask = np.zeros((480, 640), dtype=bool)
        for r in gt[frame == f]:
            x0, y0 = int(r[2]) - 1, int(r[3]) - 1
            mask[max(0, y0):max(0, y0 + int(r[5])), max(0, x0):max(0, x0 + int(r[4]))] = True
        mask = mask[::2, ::2]
        if fg.sum() > 20:
            inside_frac.append((fg & mask).sum() / fg.sum())
    assert inside_frac and np.mean(inside_frac) > 0.97
    with pytest.raises(FileExistsError, match="new out_dir"):
        S.render_mot_sequence(seq, num_frames=2)
