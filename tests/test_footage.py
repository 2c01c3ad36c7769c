"""sisnet.footage: retrieval on converted footage with same-track near-duplicates as junk."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sisnet.footage import evaluate_footage, footage_index, near_duplicate_mask
from sisnet.report import plot_mot_frame


def _index(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["pid", "sequence", "track_id", "frame", "fps"])


def test_hand_computed_ranking_with_a_two_second_window():
    # one query: track 1 of sequence A at frame 50, 10 fps -> 2 s = 20 frames
    query = _index([(1, "A", 1, 50, 10.0)])
    gallery = _index([
        (1, "A", 1, 53, 10.0),   # 0.3 s away: near-duplicate (junk)
        (1, "A", 1, 44, 10.0),   # 0.6 s: junk
        (2, "A", 2, 50, 10.0),   # another person, same frame: negative
        (1, "A", 1, 80, 10.0),   # 3 s later: a true match
        (3, "B", 1, 50, 10.0),   # track 1 of ANOTHER sequence (another person): negative, not junk
        (1, "A", 1, 70, 10.0),   # exactly 2 s: not closer than the window -> a true match
    ])  # fmt: skip
    dist = np.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]])
    assert near_duplicate_mask(query, gallery).tolist() == [[True, True, False, False, False, False]]
    res = evaluate_footage(dist, query, gallery)
    # ranking without junk: neg(0.3) match(0.4) neg(0.5) match(0.6): hits at 2 and 4
    assert res["rank1"] == 0.0 and res["rank5"] == 1.0
    assert res["mAP"] == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert res["mINP"] == pytest.approx(2 / 4)
    assert res["num_valid_queries"] == 1 and res["junk_per_query"] == 2
    assert (res["junk_crops"], res["junk_total"], res["queries"], res["skipped_queries"]) == (2, 2, 1, 0)
    # a window in frames instead of seconds: 5 frames excludes only the crop 3 frames away
    assert near_duplicate_mask(query, gallery, window_frames=5).tolist() == [[True] + [False] * 5]
    res = evaluate_footage(dist, query, gallery, window_frames=5)
    assert res["rank1"] == 1.0 and res["mAP"] == pytest.approx((1 / 1 + 2 / 3 + 3 / 5) / 3)  # frame 44 is a match
    # no window: every same-track crop is a match (the neighbour at 0.1 is rank 1)
    res = evaluate_footage(dist, query, gallery, window_s=0)
    assert res["rank1"] == 1.0 and res["mAP"] == pytest.approx((1 + 1 + 3 / 4 + 4 / 6) / 4)


def _brute_force(dist, q_pids, g_pids, junk):
    """Reference: per query, stable argsort of the non-junk crops, AP over the same-pid ones."""
    r1, aps = [], []
    for i in range(len(q_pids)):
        order = [j for j in np.argsort(dist[i], kind="stable") if not junk[i, j]]
        hits = np.array([g_pids[j] == q_pids[i] for j in order])
        if not hits.any():
            continue
        positions = np.flatnonzero(hits) + 1
        r1.append(float(hits[0]))
        aps.append(np.mean(np.arange(1, len(positions) + 1) / positions))
    return np.mean(r1), np.mean(aps), len(aps)


def test_matches_a_brute_force_reference_on_random_footage():
    rng = np.random.default_rng(0)
    seq = rng.choice(["S1", "S2"], size=300)
    track = rng.integers(1, 6, size=300)
    pid = np.array([hash((s, t)) % 10_000 for s, t in zip(seq, track)])
    ix = _index(list(zip(pid, seq, track, rng.integers(1, 400, size=300), np.where(seq == "S1", 10.0, 25.0))))
    query, gallery = ix.iloc[:40].reset_index(drop=True), ix.iloc[40:].reset_index(drop=True)
    dist = np.round(rng.random((40, 260)), 2)  # rounded: many exact ties (broken by gallery index)
    junk = near_duplicate_mask(query, gallery, window_s=2.0)
    q_f, g_f = query["frame"].to_numpy(), gallery["frame"].to_numpy()
    fps = query["fps"].to_numpy()
    same = (query["sequence"].to_numpy()[:, None] == gallery["sequence"].to_numpy()) & (
        query["track_id"].to_numpy()[:, None] == gallery["track_id"].to_numpy())
    assert (junk == (same & (np.abs(q_f[:, None] - g_f) < 2.0 * fps[:, None]))).all() and junk.any()
    res = evaluate_footage(dist, query, gallery, window_s=2.0)
    r1, m_ap, n = _brute_force(dist, query["pid"].to_numpy(), gallery["pid"].to_numpy(), junk)
    assert res["num_valid_queries"] == n
    assert res["rank1"] == pytest.approx(r1) and res["mAP"] == pytest.approx(m_ap)


def test_bad_windows_are_refused():
    query = _index([(1, "A", 1, 50, float("nan"))])
    gallery = _index([(1, "A", 1, 80, float("nan"))])
    with pytest.raises(ValueError, match="no frame rate.*window_frames"):
        near_duplicate_mask(query, gallery)
    assert near_duplicate_mask(query, gallery, window_frames=40).tolist() == [[True]]
    with pytest.raises(ValueError, match="not both"):
        near_duplicate_mask(query, gallery, window_s=1, window_frames=4)
    with pytest.raises(ValueError, match=">= 0"):
        near_duplicate_mask(query, gallery, window_s=-1)
    with pytest.raises(ValueError, match=r"distmat is \(2, 1\)"):
        evaluate_footage(np.zeros((2, 1)), query, gallery, window_frames=4)


@pytest.fixture(scope="module")
def street(tmp_path_factory):
    """A rendered 10 s street sequence (10 fps) and its converted ReID crops."""
    from sisnet.data import load_dataset
    from sisnet.data.mot import convert_mot
    from sisnet.data.synthetic import render_mot_sequence

    tmp = tmp_path_factory.mktemp("footage")
    seq = render_mot_sequence(tmp / "STREET", num_frames=100, num_people=6, frame_size=(240, 320), seed=2)
    return seq, load_dataset("synthetic", convert_mot(seq, tmp / "reid", min_height_px=16, frame_stride=3, seed=0))


def test_converted_footage_near_duplicates_inflate_the_pseudo_camera_protocol(street, tmp_path):
    """On rendered footage, a 'matcher' that only recognises crops close in time scores well on the pseudo-camera
    protocol and zero once the same track's crops within 2 s are excluded."""
    import shutil

    from sisnet.data import load_dataset
    from sisnet.metrics import evaluate_rank

    ds = street[1]
    q_ix, g_ix = footage_index(ds)
    assert len(q_ix) == len(ds.query) and len(g_ix) == len(ds.gallery)
    assert (q_ix["fps"] == 10).all()  # the rendered sequence's seqinfo.ini frameRate
    # time distance (s) within a track, 1.99 (a constant) to any other person: finds only crops < 2 s away
    same = (q_ix["track_id"].to_numpy()[:, None] == g_ix["track_id"].to_numpy())
    dist = np.where(same, np.abs(q_ix["frame"].to_numpy()[:, None] - g_ix["frame"].to_numpy()) / 10.0, 1.99)
    q_cams = [r.camid for r in ds.query]
    g_cams = [r.camid for r in ds.gallery]
    market = evaluate_rank(dist, q_ix["pid"], g_ix["pid"], q_cams, g_cams, max_rank=5)
    honest = evaluate_footage(dist, q_ix, g_ix, max_rank=5)
    assert market["cmc"][0] > 0.5  # neighbours across a pseudo-camera boundary are "cross-camera" matches
    assert honest["rank1"] == 0.0 and honest["num_valid_queries"] > 0  # every true match is >= 2 s away
    # with no window, all same-track crops count: the neighbours are rank 1 for every query
    assert evaluate_footage(dist, q_ix, g_ix, window_s=0)["rank1"] == 1.0
    copy = shutil.copytree(ds.root, tmp_path / "copy")
    (copy / "mot_index.csv").unlink()
    with pytest.raises(FileNotFoundError, match="convert_mot"):
        footage_index(load_dataset("synthetic", copy))


def test_on_a_rendered_sequence_the_near_duplicate_no_longer_counts_a_distant_frame_does(street):
    """A 'matcher' whose distance is the time gap within a track: a crop a few frames from the query ranks first.
    It is junk now; the same track's first crop at least 2 s away is the rank-1 true match."""
    from sisnet.footage import describe_exclusion, exclusion_counts

    ds = street[1]
    q_ix, g_ix = footage_index(ds)
    same = q_ix["track_id"].to_numpy()[:, None] == g_ix["track_id"].to_numpy()
    gap_s = np.abs(q_ix["frame"].to_numpy()[:, None] - g_ix["frame"].to_numpy()) / 10.0  # 10 fps
    dist = np.where(same, gap_s, 100.0)
    first = dist.argmin(axis=1)
    near = gap_s[np.arange(len(first)), first] < 2.0
    assert near.all()  # every query's first hit is a near-duplicate of it (the same track, < 2 s away)
    junk = near_duplicate_mask(q_ix, g_ix)
    assert junk[np.arange(len(first)), first].all()  # ... which the rule excludes
    far = same & (gap_s >= 2.0)
    valid = far.any(axis=1)
    assert valid.sum() >= 3 and (~junk[far]).all()  # the distant frames of the track are not excluded
    kept = np.where(junk, np.inf, dist)  # the ranking without the excluded crops
    top = kept.argmin(axis=1)[valid]
    assert (gap_s[valid, top] >= 2.0).all() and same[valid, top].all()  # its first hit: a distant frame, same track
    res = evaluate_footage(dist, q_ix, g_ix, max_rank=5)
    assert res["num_valid_queries"] == valid.sum() and res["skipped_queries"] == (~valid).sum()
    assert res["rank1"] == 1.0  # a distant frame of the same track is the first hit, and it counts
    assert evaluate_footage(dist, q_ix, g_ix, window_s=0, max_rank=5)["rank1"] == 1.0  # (there: the neighbour)
    # what the rule excluded, in counts that do not depend on the distances
    counts = exclusion_counts(q_ix, g_ix)
    assert counts["junk_total"] == junk.sum() and counts["junk_crops"] == junk.any(axis=0).sum() > 0
    assert {k: res[k] for k in counts} == counts
    text = describe_exclusion(counts, "same track within 2 s excluded")
    assert text.startswith(f"same track within 2 s excluded: {counts['junk_crops']} of {len(g_ix)} gallery crops")


def test_evaluate_models_reports_both_protocols(street):
    """A (random) model's pseudo-camera row is the library's standard evaluation; the other row excludes."""
    from types import SimpleNamespace

    from sisnet.config import get_config
    from sisnet.evaluation import evaluate
    from sisnet.model import build_model
    from sisnet.footage import PROTOCOL_NO_EXCLUSION, PROTOCOL_PSEUDO_CAMERAS, evaluate_models

    ds = street[1]
    config = get_config("smoke")
    model = build_model(config, num_classes=4, pretrained=False).eval()
    table = evaluate_models({"random": SimpleNamespace(model=model, config=config, loss="S.", seed=0)}, ds)
    assert list(table["protocol"]) == [PROTOCOL_PSEUDO_CAMERAS, PROTOCOL_NO_EXCLUSION, "same track within 2 s excluded"]
    standard = evaluate(model, ds, config, modes=("either",), rerank=False)["either"]
    market = table.iloc[0]
    assert market["rank1"] == pytest.approx(100 * standard["rank1"]) and market["mAP"] == pytest.approx(100 * standard["mAP"])
    assert table["junk_per_query"].iloc[1] == 0 and table["junk_per_query"].iloc[2] > 0
    assert table["junk_crops"].isna().iloc[0] and 0 < table["junk_crops"].iloc[2] <= table["junk_total"].iloc[2]
    assert (table["queries"] == len(ds.query)).all()
    assert (table["gallery"] == len(ds.gallery)).all()
    assert evaluate_models({"random": SimpleNamespace(model=model, config=config, loss="S.", seed=0)}, ds,
                           window_frames=6)["protocol"].iloc[2] == "same track within 6 frames excluded"


def test_plot_mot_frame_reads_a_frame_folder_or_a_video(street, tmp_path, video_copy):
    import matplotlib.pyplot as plt
    from PIL import Image

    seq = street[0]
    fig = plot_mot_frame(seq, frame=12)
    assert "frame 12" in fig.axes[0].get_title() and len(fig.axes[0].patches) > 0
    plt.close(fig)
    video = video_copy(seq, tmp_path / "STREET-V", "street.mp4", seqinfo=False, num_frames=15)
    fig = plot_mot_frame(video, frame=12)
    image = fig.axes[0].images[0].get_array()
    assert image.shape == (240, 320, 3) and "frame 12" in fig.axes[0].get_title()
    assert np.abs(image.astype(float) - np.asarray(Image.open(seq / "img1" / "000012.jpg"), float)).mean() < 4
    plt.close(fig)
