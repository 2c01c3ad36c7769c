"""sisnet.data.mot: MOTChallenge -> Market-1501 layout conversion rules."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from sisnet.data import load_dataset
from sisnet.data.mot import MotFormatError, convert_mot, read_mot_annotations

W_PX, H_PX = 120, 100
# Mean absolute pixel error (0-255) allowed between a crop cut from a video frame and the same crop cut from
# the frame folder: codec loss on the noisy rendered frames plus a second JPEG encoding of the crop.
CROP_ERROR_MAX = 6.0


def _gradient_frame(frame_no: int = 0) -> Image.Image:
    """Frame whose red channel is 2*x and green channel 2*y, so a crop's content tells where it was cut.
    (Blue differs per frame: GIF writers merge identical consecutive frames.)"""
    ys, xs = np.mgrid[0:H_PX, 0:W_PX]
    arr = np.stack([2 * xs, 2 * ys, np.full_like(xs, 40 * frame_no)], axis=-1).astype(np.uint8)
    return Image.fromarray(arr)


def _write_seq(seq_dir, gt_text: str, num_frames: int = 6, video: str | None = None) -> None:
    (seq_dir / "gt").mkdir(parents=True)
    (seq_dir / "gt" / "gt.txt").write_text(gt_text)
    frames = [_gradient_frame(i) for i in range(num_frames)]
    if video:
        frames[0].save(seq_dir / video, save_all=True, append_images=frames[1:], duration=100)
    else:
        (seq_dir / "img1").mkdir()
        for f, im in enumerate(frames, start=1):
            im.save(seq_dir / "img1" / f"{f:06d}.png")


# MOT16/17/20 rows: frame,id,x,y,w,h,conf,class,visibility (1-based boxes); messy on purpose.
MOT17_GT = "\n".join(
    [f"{f},1,11,21,20,40,1,1,1.0" for f in range(1, 7)]            # inside the image
    + [f"{f}, 2, -9.0, -4, 30, 50, 1, 1, 0.8," for f in range(1, 7)]  # spaces, trailing comma, clipped
    + [f"{f},3,61,11,20,60,{0 if f <= 2 else 1},1,1" for f in range(1, 7)]  # conf 0 on frames 1-2
    + [f"{f},4,31,31,20,40,1,7,1" for f in range(1, 7)]             # class 7 (static person): dropped
    + [f"{f},5,81,41,20,50,1,1,{0.1 if f % 2 else 0.5}" for f in range(1, 7)]  # low visibility on odd frames
    + [f"{f},6,91,5,10,10,1,1,1" for f in range(1, 7)]              # 10 px high: below min height
    + [f"{f},7,101,51,30,60,1,1,1.0" for f in range(1, 7)]          # runs off the bottom-right corner
    + ["3,-1,5,5,20,40,1,1,1", ""]                                  # a detection row and a blank line
) + "\n"


@pytest.fixture
def mot17_seq(tmp_path):
    seq = tmp_path / "MOT17-XX"
    _write_seq(seq, MOT17_GT)
    return seq


def test_ignore_rules_and_crop_boxes(mot17_seq, tmp_path):
    out = convert_mot([mot17_seq], tmp_path / "out", min_height_px=20, frame_stride=1, min_visibility=0.25,
                      crop_size=None, test_fraction=0.5, seed=0)
    idx = pd.read_csv(out / "mot_index.csv")
    kept = {(int(t), int(f)) for t, f in zip(idx["track_id"], idx["frame"])}
    expected = ({(1, f) for f in range(1, 7)} | {(2, f) for f in range(1, 7)} | {(3, f) for f in range(3, 7)}
                | {(5, f) for f in (2, 4, 6)} | {(7, f) for f in range(1, 7)})
    assert kept == expected
    boxes = idx.drop_duplicates("track_id").set_index("track_id")[["x0", "y0", "x1", "y1"]]
    assert boxes.loc[1].tolist() == [10, 20, 30, 60]       # 1-based (11, 21) -> 0-based 10, 20
    assert boxes.loc[2].tolist() == [0, 0, 20, 45]         # (-10, -5, 20, 45) clipped at the top-left
    assert boxes.loc[7].tolist() == [100, 50, W_PX, H_PX]  # (100, 50, 130, 110) clipped at the bottom-right
    assert (idx["height_px"] == idx["y1"] - idx["y0"]).all()
    # the stored crops are exactly those pixels (native size, content from the gradient frame)
    for row in idx.itertuples():
        with Image.open(out / row.split / row.name) as im:
            assert im.size == (row.x1 - row.x0, row.y1 - row.y0)
            arr = np.asarray(im.convert("RGB"), dtype=np.float64)
        assert arr[..., 0].mean() / 2 == pytest.approx((row.x0 + row.x1 - 1) / 2, abs=0.6)
        assert arr[..., 1].mean() / 2 == pytest.approx((row.y0 + row.y1 - 1) / 2, abs=0.6)
    # scale sidecar: native (clipped) height of every crop
    scales = pd.read_csv(out / "scales.csv")
    assert list(scales.columns) == ["split", "name", "height_px"]
    merged = scales.merge(idx, on=["split", "name"], suffixes=("", "_idx"))
    assert len(merged) == len(idx) == len(scales)
    assert (merged["height_px"] == merged["height_px_idx"]).all()


def test_visibility_threshold_and_frame_stride(mot17_seq, tmp_path):
    out = convert_mot([mot17_seq], tmp_path / "o1", min_height_px=20, frame_stride=1, min_visibility=0.0,
                      crop_size=None)
    idx = pd.read_csv(out / "mot_index.csv")
    assert set(idx.loc[idx["track_id"] == 5, "frame"]) == set(range(1, 7))  # threshold 0 keeps all of id 5
    out = convert_mot([mot17_seq], tmp_path / "o2", min_height_px=20, frame_stride=2, min_visibility=0.25,
                      crop_size=None)
    idx = pd.read_csv(out / "mot_index.csv")
    assert set(idx["frame"]) == {1, 3, 5}
    assert 5 not in set(idx["track_id"])  # its only visible frames are even: gone with stride 2 (then 0 crops)


def test_mot15_format_hand_written(tmp_path):
    # MOT15 gt: frame,id,bb_left,bb_top,w,h,flag,x,y,z  (world coordinates -1); flag 0 = ignore
    rows = [f"{f},1,11,21,20.5,40,1,-1,-1,-1" for f in range(1, 5)]
    rows += [f"{f},2,41,11,25,60,{0 if f == 4 else 1},-1,-1,-1," for f in range(1, 5)]
    rows += [f"{f}.0,3.0,71,31,20,40,1,-1,-1,-1" for f in range(1, 5)]
    seq = tmp_path / "TUD-Campus"
    _write_seq(seq, "\n".join(rows) + "\n\n", num_frames=4)
    df, fmt = read_mot_annotations(seq / "gt" / "gt.txt")
    assert fmt == "mot15" and len(df) == 12 and df["visibility"].isna().all()
    out = convert_mot([seq], tmp_path / "out", min_height_px=20, frame_stride=1, min_visibility=0.9, crop_size=None)
    idx = pd.read_csv(out / "mot_index.csv")
    # flag 0 row dropped; the visibility threshold does not apply to MOT15 (no such column)
    assert sorted(zip(idx["track_id"], idx["frame"])) == sorted(
        [(1, f) for f in range(1, 5)] + [(2, f) for f in range(1, 4)] + [(3, f) for f in range(1, 5)]
    )
    assert idx.loc[idx["track_id"] == 1, "x1"].iloc[0] == 31  # round(11 + 20.5) - 1 = 31 (round half to even)
    # forcing the MOT17 layout on a MOT15 file is refused with a pointer to fmt=
    with pytest.raises(MotFormatError, match="fmt='mot15'"):
        read_mot_annotations(seq / "gt" / "gt.txt", fmt="mot17")


def test_bad_annotation_files_are_refused_clearly(tmp_path):
    gt = tmp_path / "gt.txt"
    gt.write_text("frame,id,x,y,w,h,conf,class,vis\n1,1,1,1,10,10,1,1,1\n")
    with pytest.raises(MotFormatError, match="line 1.*not a number"):
        read_mot_annotations(gt)
    gt.write_text("1,1,1,1,10,10,1,1,1\n2,1,1,1,10,10,1,1\n")
    with pytest.raises(MotFormatError, match="line 2 has 8 values"):
        read_mot_annotations(gt)
    gt.write_text("1,1,1,1,10,10,1,1\n")
    with pytest.raises(MotFormatError, match="8 columns.*fmt="):
        read_mot_annotations(gt)
    with pytest.raises(FileNotFoundError, match="gt/gt.txt"):
        read_mot_annotations(tmp_path / "missing.txt")


def test_split_cameras_and_loadability_on_rendered_sequences(tmp_path):
    from sisnet.data.synthetic import render_mot_sequence

    seqs = [
        render_mot_sequence(tmp_path / f"SYN-0{i}", num_frames=24, num_people=5, frame_size=(240, 320), seed=i)
        for i in (1, 2)
    ]
    out = convert_mot(seqs, tmp_path / "reid", min_height_px=16, frame_stride=2, min_visibility=0.2,
                      test_fraction=0.5, pseudo_cameras=3, seed=3)
    idx = pd.read_csv(out / "mot_index.csv")
    gt = pd.concat([read_mot_annotations(s / "gt" / "gt.txt")[0].assign(sequence=s.name) for s in seqs])
    # globally unique ids: (sequence, track) <-> pid is a bijection, pids 1..N
    pairs = idx[["sequence", "track_id", "pid"]].drop_duplicates()
    assert len(pairs) == pairs["pid"].nunique() == len(pairs[["sequence", "track_id"]].drop_duplicates())
    assert sorted(pairs["pid"]) == list(range(1, len(pairs) + 1))
    assert set(pairs["sequence"]) == {"SYN-01", "SYN-02"}
    # every crop comes from a gt row of its own sequence and track, at a kept frame, clipped inside the image
    key = set(zip(gt["sequence"], gt["id"], gt["frame"]))
    assert all(k in key for k in zip(idx["sequence"], idx["track_id"], idx["frame"]))
    assert (idx["frame"] % 2 == 1).all()  # frame stride 2 from the first annotated frame (1)
    assert ((idx["x0"] >= 0) & (idx["y0"] >= 0) & (idx["x1"] <= 320) & (idx["y1"] <= 240)).all()
    assert (idx["height_px"] >= 16).all() and (idx["visibility"] >= 0.2).all()
    # identities are in train xor test; query ids are test ids
    train_ids = set(idx.loc[idx["split"] == "bounding_box_train", "pid"])
    test_ids = set(idx.loc[idx["split"] != "bounding_box_train", "pid"])
    assert train_ids and test_ids and not (train_ids & test_ids)
    assert abs(len(test_ids) - 0.5 * len(pairs)) <= 0.5
    # pseudo-cameras are consecutive time segments of each track, of near-equal size
    for _, grp in idx.groupby("pid"):
        grp = grp.sort_values("frame")
        assert list(grp["cam"]) == sorted(grp["cam"])
        sizes = grp["cam"].value_counts()
        assert sizes.max() - sizes.min() <= 1 and len(sizes) == min(3, len(grp))
    # one query per (test id, camera) for ids seen by >= 2 cameras; the rest in the gallery
    q = idx[idx["split"] == "query"]
    assert not q.duplicated(["pid", "cam"]).any()
    for pid in test_ids:
        cams = idx.loc[idx["pid"] == pid, "cam"].nunique()
        assert len(q[q["pid"] == pid]) == (cams if cams >= 2 else 0)
    # loadable by the dataset reader, with matching counts and the scale sidecar
    ds = load_dataset("synthetic", out)
    assert len(ds.train) == (idx["split"] == "bounding_box_train").sum()
    assert len(ds.query) == len(q) and len(ds.gallery) == (idx["split"] == "bounding_box_test").sum()
    assert ds.num_train_pids == len(train_ids)
    assert {r.pid for r in ds.query} <= test_ids
    import json

    meta = json.loads((out / "meta.json").read_text())
    assert meta["counts"]["train"] == {"images": len(ds.train), "ids": len(train_ids)}
    assert meta["counts"]["query"]["images"] == len(ds.query) and meta["counts"]["gallery"]["images"] == len(ds.gallery)
    scales = ds.scales()
    assert scales is not None and len(scales) == len(idx)
    with Image.open(ds.train[0].path) as im:
        assert im.size == (64, 128)  # Market-sized crops by default
    # same seed -> same dataset; sequence_as_camera gives sequence 2 its own cameras
    out2 = convert_mot(seqs, tmp_path / "reid2", min_height_px=16, frame_stride=2, min_visibility=0.2,
                       test_fraction=0.5, pseudo_cameras=3, seed=3, sequence_as_camera=True)
    idx2 = pd.read_csv(out2 / "mot_index.csv")
    assert (idx2["split"] == idx["split"]).all() and (idx2["pid"] == idx["pid"]).all()
    assert set(idx2.loc[idx2["sequence"] == "SYN-02", "cam"]) <= {4, 5, 6}
    assert set(idx2.loc[idx2["sequence"] == "SYN-01", "cam"]) <= {1, 2, 3}


def test_gif_video_input(tmp_path):
    gt = "\n".join(f"{f},{t},{10 + 30 * t},11,20,40,1,1,1" for f in range(1, 5) for t in (1, 2)) + "\n"
    seq = tmp_path / "vid"
    _write_seq(seq, gt, num_frames=4, video="clip.gif")
    out = convert_mot([seq], tmp_path / "out", min_height_px=20, frame_stride=1, crop_size=None)
    idx = pd.read_csv(out / "mot_index.csv")
    assert len(idx) == 8
    for row in idx.itertuples():
        with Image.open(out / row.split / row.name) as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.float64)
        assert arr[..., 0].mean() / 2 == pytest.approx((row.x0 + row.x1 - 1) / 2, abs=1.0)
        assert arr[..., 2].mean() == pytest.approx(40 * (row.frame - 1), abs=3.0)  # frame k is the k-th GIF frame


# ------------------------------------------------------------------------------------------ video files
@pytest.fixture(scope="module")
def rendered_seq(tmp_path_factory):
    from sisnet.data.synthetic import render_mot_sequence

    return render_mot_sequence(tmp_path_factory.mktemp("render") / "SYN-V", num_frames=12, num_people=4,
                               frame_size=(144, 176), seed=5)


def _mean_abs(a: Image.Image | str, b: Image.Image | str) -> float:
    arrays = [np.asarray(Image.open(x) if isinstance(x, (str, Path)) else x, dtype=np.float64) for x in (a, b)]
    assert arrays[0].shape == arrays[1].shape
    return float(np.abs(arrays[0] - arrays[1]).mean())


@pytest.mark.parametrize("name,codec", [("clip.mp4", "libx264"), ("clip.avi", "mpeg4"), ("clip.mkv", "libx264"),
                                        ("clip.webm", "libvpx"), ("clip.mov", "mpeg4")])
def test_video_gives_the_frame_folders_crops(rendered_seq, tmp_path, name, codec, video_copy):
    video = video_copy(rendered_seq, tmp_path / "SYN-V", name, codec)
    kw = dict(min_height_px=16, frame_stride=2, min_visibility=0.2, crop_size=None, seed=1)
    ref = convert_mot(rendered_seq / "img1", tmp_path / "from_frames", **kw)  # the frame folder itself
    # the sequence folder (its one video is found) and the video file itself are the same input
    outs = [convert_mot(tmp_path / "SYN-V", tmp_path / "from_folder", **kw),
            convert_mot(video, tmp_path / "from_video", **kw)]
    ref_idx = pd.read_csv(ref / "mot_index.csv")
    assert set(ref_idx["frame"]) == {1, 3, 5, 7, 9, 11} and len(ref_idx) > 10
    assert (ref_idx["fps"] == 10).all()  # from seqinfo.ini
    for out in outs:
        idx = pd.read_csv(out / "mot_index.csv")
        pd.testing.assert_frame_equal(idx, ref_idx)  # same crops: boxes, ids, splits, names
        errors = [_mean_abs(out / row.split / row.name, ref / row.split / row.name) for row in idx.itertuples()]
        assert max(errors) < CROP_ERROR_MAX, (name, max(errors))  # codec loss only
    # frame k of the video is frame k of the folder, not a neighbour (people move between frames)
    from sisnet.data.mot import FrameSource

    src, folder = FrameSource(video), FrameSource(rendered_seq)
    assert src.size == (176, 144) and src.fps == 10 and src.seq_dir == video.parent
    assert src.name == folder.name == "SYN-V" and FrameSource(rendered_seq / "img1").frames == folder.frames
    decoded = dict(src.iter_frames([7, 2, 12, 7]))
    assert sorted(decoded) == [2, 7, 12]
    for k, im in decoded.items():
        same = _mean_abs(im, folder.frames[k])
        assert same < 3.0
        for j in (k - 1, k + 1):
            if j in folder.frames:
                assert same < 0.7 * _mean_abs(im, folder.frames[j]), (k, j)


def test_video_errors_name_the_file_and_the_reason(rendered_seq, tmp_path, video_copy):
    video = video_copy(rendered_seq, tmp_path / "SYN-V", "clip.mp4", "libx264")
    # gt.txt refers to frames past the video's end
    gt = tmp_path / "SYN-V" / "gt" / "gt.txt"
    gt.write_text(gt.read_text() + "40,1,11,11,30,60,1,1,1\n")
    with pytest.raises(MotFormatError, match=r"clip\.mp4 has 12 frames.*\[40\]"):
        convert_mot(video, tmp_path / "o1", min_height_px=16, frame_stride=1)
    # a file that is no video: the message names it and FFmpeg's reason
    bad = tmp_path / "BAD"
    (bad / "gt").mkdir(parents=True)
    shutil.copy(rendered_seq / "gt" / "gt.txt", bad / "gt" / "gt.txt")
    (bad / "clip.mp4").write_bytes(b"\x00" * 64)
    with pytest.raises(MotFormatError, match=r"Cannot open video .*BAD/clip\.mp4: \w+Error"):
        convert_mot(bad, tmp_path / "o2", min_height_px=16)
    # a video cut in the middle (an interrupted download)
    cut = tmp_path / "CUT"
    full = video_copy(rendered_seq, cut, "clip.mp4", "libx264")
    full.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(MotFormatError, match=r"CUT/clip\.mp4"):
        convert_mot(cut, tmp_path / "o3", min_height_px=16, frame_stride=1)
    # several videos in one folder: pass one of them
    shutil.copy(video, tmp_path / "SYN-V" / "other.avi")
    with pytest.raises(MotFormatError, match="pass the video file itself"):
        convert_mot(tmp_path / "SYN-V", tmp_path / "o4", min_height_px=16)
    # a file that is not a video at all
    with pytest.raises(MotFormatError, match="not a video"):
        convert_mot(gt, tmp_path / "o5", min_height_px=16)


def test_cli_converts_a_video_file(rendered_seq, tmp_path, capsys, video_copy):
    from sisnet.data.mot import _main

    video = video_copy(rendered_seq, tmp_path / "SYN-V", "clip.mp4", "libx264")
    assert _main([str(video), "--out", str(tmp_path / "reid"), "--min-height-px", "16", "--frame-stride", "3"]) == 0
    out = capsys.readouterr().out
    ds = load_dataset("synthetic", tmp_path / "reid")
    assert "wrote" in out and len(ds.gallery) > 0
    # the summary says what the footage evaluation's near-duplicate rule excludes (seqinfo.ini: 10 fps -> 20 frames)
    from sisnet.footage import exclusion_counts, footage_index

    counts = exclusion_counts(*footage_index(ds))
    assert 0 < counts["junk_crops"] <= counts["junk_total"] and counts["gallery"] == len(ds.gallery)
    assert (f"window_s=2): same track within 2 s excluded: {counts['junk_crops']} of {len(ds.gallery)} gallery "
            f"crops excluded for at least one query ({counts['junk_total']} query-gallery pairs") in out
    assert f"{counts['skipped_queries']} of {len(ds.query)} queries have no true match left" in out
    assert _main([str(tmp_path / "nothing.mp4"), "--out", str(tmp_path / "x")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_argument_and_folder_errors(mot17_seq, tmp_path):
    with pytest.raises(ValueError, match="pseudo_cameras must be >= 2"):
        convert_mot([mot17_seq], tmp_path / "o", pseudo_cameras=1)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        convert_mot([tmp_path / "nope"], tmp_path / "o")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x.txt").write_text("x")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        convert_mot([mot17_seq], busy, min_height_px=20)
    out = convert_mot([mot17_seq], busy, min_height_px=20, frame_stride=1, overwrite=True)
    assert not (out / "x.txt").exists() and (out / "scales.csv").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no leftovers
    with pytest.raises(MotFormatError, match="No crop survives"):
        convert_mot([mot17_seq], tmp_path / "o3", min_height_px=500)
