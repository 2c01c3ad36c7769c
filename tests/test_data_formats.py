"""sisnet.data: the dataset formats, checked on tiny fixture trees in each real on-disk layout."""
from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from sisnet.data import (
    DATASET_NAMES,
    SCALE_SIDECAR,
    DatasetFormatError,
    Record,
    ReIDDataset,
    load_dataset,
)
from sisnet.data.formats import PUBLISHED_COUNTS as REAL_PUBLISHED_COUNTS

_JPEG: bytes | None = None


def _jpeg_bytes() -> bytes:
    """One real 8x4 JPEG (H x W), encoded once and written under many names."""
    global _JPEG
    if _JPEG is None:
        buf = io.BytesIO()
        Image.new("RGB", (4, 8), (200, 30, 60)).save(buf, format="JPEG")
        _JPEG = buf.getvalue()
    return _JPEG


def _write_images(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(_jpeg_bytes())


# --- Market-1501 fixture --------------------------------------------------------------------------------
# train: pids 7, 2, 5 (unsorted on purpose) + one junk (-1) + one distractor (0) that must be dropped
MARKET_TRAIN = [
    "0007_c1s1_000151_01.jpg",
    "0007_c3s1_000176_02.jpg",
    "0002_c2s1_000301_01.jpg",
    "0002_c1s1_000451_03.jpg",
    "0005_c6s2_001251_01.jpg",
    "-1_c1s1_000401_03.jpg",
    "0000_c4s1_000501_01.jpg",
]
MARKET_QUERY = ["0002_c1s1_001051_00.jpg", "0005_c5s3_002101_00.jpg", "0000_c2s1_000101_00.jpg"]
MARKET_GALLERY = [
    "0002_c2s1_001101_01.jpg",
    "0005_c4s3_002201_02.jpg",
    "0000_c1s1_000001_03.jpg",  # distractor: kept in the gallery
    "0000_c6s4_000002_01.jpg",  # distractor: kept in the gallery
    "-1_c3s1_000003_01.jpg",  # junk: dropped
]


def make_market(parent: Path, folder: str = "Market-1501-v15.09.15", train=MARKET_TRAIN,
                query=MARKET_QUERY, gallery=MARKET_GALLERY) -> Path:
    root = parent / folder
    _write_images(root / "bounding_box_train", list(train))
    _write_images(root / "query", list(query))
    _write_images(root / "bounding_box_test", list(gallery))
    return root


DUKE_TRAIN = ["0001_c2_f0046182.jpg", "0001_c8_f0046999.jpg", "0004_c1_f0000111.jpg"]
DUKE_QUERY = ["0005_c1_f0053158.jpg"]
DUKE_GALLERY = ["0005_c7_f0054001.jpg", "0010_c3_f0100000.jpg"]


def make_duke(parent: Path) -> Path:
    return make_market(parent, "DukeMTMC-reID", DUKE_TRAIN, DUKE_QUERY, DUKE_GALLERY)


# --- MSMT17 fixture -------------------------------------------------------------------------------------
MSMT_TRAIN = [("0003/0003_000_05_0303morning_0040_0.jpg", 3), ("0000/0000_000_01_0303morning_0015_0.jpg", 0),
              ("0000/0000_001_15_0303noon_0100_1.jpg", 0)]
MSMT_VAL = [("0003/0003_001_02_0303afternoon_0500_0.jpg", 3), ("0009/0009_000_12_0304morning_0001_0.jpg", 9)]
MSMT_QUERY = [("0000/0000_000_03_0113morning_0015_0.jpg", 0), ("0042/0042_002_14_0113noon_0777_2.jpg", 42)]
MSMT_GALLERY = [("0000/0000_005_07_0113morning_0200_0.jpg", 0), ("0042/0042_010_10_0113noon_0800_0.jpg", 42),
                ("0100/0100_000_04_0113noon_0900_0.jpg", 100)]


def make_msmt(parent: Path, version: str = "V1", query=MSMT_QUERY) -> Path:
    root = parent / f"MSMT17_{version}"
    train_dir, test_dir = ("train", "test") if version == "V1" else ("mask_train_v2", "mask_test_v2")
    for items, image_dir, list_name in ((MSMT_TRAIN, train_dir, "list_train.txt"),
                                        (MSMT_VAL, train_dir, "list_val.txt"),
                                        (query, test_dir, "list_query.txt"),
                                        (MSMT_GALLERY, test_dir, "list_gallery.txt")):
        for rel, _ in items:
            _write_images((root / image_dir / rel).parent, [Path(rel).name])
        (root / list_name).write_text("".join(f"{rel} {pid}\n" for rel, pid in items))
        (root / image_dir).mkdir(parents=True, exist_ok=True)
    return root


def _by_name(records: list[Record]) -> dict[str, Record]:
    return {os.path.basename(r.path): r for r in records}


# --- market1501 -----------------------------------------------------------------------------------------

def test_market_counts_junk_distractors_and_camids(tmp_path):
    folder = make_market(tmp_path / "market1501")
    ds = load_dataset("market1501", tmp_path / "market1501")
    assert isinstance(ds, ReIDDataset) and ds.name == "market1501"
    assert ds.root == folder.resolve()
    # train: 5 usable images (junk and distractor dropped); query: distractor dropped; gallery: junk dropped
    assert (len(ds.train), len(ds.query), len(ds.gallery)) == (5, 2, 4)
    assert ds.num_train_pids == 3
    assert ds.num_train_cams == 4  # cameras 1, 2, 3, 6
    assert sorted(r.pid for r in ds.gallery) == [0, 0, 2, 5]
    assert all(r.pid > 0 for r in ds.query)
    gallery = _by_name(ds.gallery)
    assert gallery["0000_c6s4_000002_01.jpg"].camid == 5  # c6 -> 0-based 5
    assert gallery["0000_c1s1_000001_03.jpg"].camid == 0
    assert not any("-1_" in os.path.basename(r.path) for r in ds.train + ds.query + ds.gallery)
    for r in ds.train + ds.query + ds.gallery:
        assert os.path.isabs(r.path) and os.path.isfile(r.path)


def test_market_train_pids_relabelled_in_sorted_order_query_gallery_keep_original(tmp_path):
    make_market(tmp_path)
    ds = load_dataset("market1501", tmp_path)
    train = _by_name(ds.train)
    # original pids 2, 5, 7 -> 0, 1, 2 (sorted order, not order of appearance)
    assert train["0002_c2s1_000301_01.jpg"].pid == 0
    assert train["0005_c6s2_001251_01.jpg"].pid == 1
    assert train["0007_c3s1_000176_02.jpg"].pid == 2
    assert sorted({r.pid for r in ds.train}) == [0, 1, 2]
    assert _by_name(ds.query)["0005_c5s3_002101_00.jpg"] .pid == 5
    assert _by_name(ds.gallery)["0002_c2s1_001101_01.jpg"].pid == 2


def test_market_root_may_be_folder_or_parent(tmp_path):
    folder = make_market(tmp_path)
    from_parent = load_dataset("market1501", str(tmp_path))
    from_folder = load_dataset("Market1501", folder)  # name is case-insensitive
    assert from_parent.root == from_folder.root == folder.resolve()
    assert from_parent.train == from_folder.train and from_parent.gallery == from_folder.gallery


def test_market_camera_out_of_range(tmp_path):
    make_market(tmp_path, gallery=MARKET_GALLERY + ["0002_c7s1_000001_01.jpg"])
    with pytest.raises(DatasetFormatError, match=r"camera 7.*1\.\.6"):
        load_dataset("market1501", tmp_path)


def test_market_unparsable_name_names_file_and_pattern(tmp_path):
    make_market(tmp_path, query=MARKET_QUERY + ["person_12.jpg"])
    with pytest.raises(DatasetFormatError, match=r"person_12\.jpg.*0002_c1s1_000451_03\.jpg"):
        load_dataset("market1501", tmp_path)


def test_duke_names_loaded_as_market_hint_the_right_name(tmp_path):
    make_market(tmp_path, "Market-1501-v15.09.15", DUKE_TRAIN, DUKE_QUERY, DUKE_GALLERY)
    with pytest.raises(DatasetFormatError, match=r"0001_c2_f0046182\.jpg.*dukemtmcreid"):
        load_dataset("market1501", tmp_path)


OS_METADATA = ["Thumbs.db", "desktop.ini", ".DS_Store", "._0002_c2s1_001101_01.jpg", "._.DS_Store", "THUMBS.DB"]


def test_os_metadata_is_skipped_with_one_line_naming_it(tmp_path):
    folder = make_market(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean tree loads without any warning
        plain = load_dataset("market1501", tmp_path)
    for split_dir in ("bounding_box_train", "query", "bounding_box_test"):
        for name in OS_METADATA:  # AppleDouble ._*.jpg files end in .jpg but are not images
            (folder / split_dir / name).write_bytes(b"\x00\x05\x16\x07")
    (folder / "query" / "__MACOSX").mkdir()
    with pytest.warns(UserWarning) as record:
        ds = load_dataset("market1501", tmp_path)
    assert len(record) == 1  # ONE line for the whole dataset
    msg = str(record[0].message)
    assert "\n" not in msg and "skipped 19 OS metadata files" in msg
    assert "bounding_box_test/, bounding_box_train/, query/" in msg
    for named in ("3 x Thumbs.db", "3 x THUMBS.DB", "3 x desktop.ini", "3 x .DS_Store", "6 x ._* (AppleDouble)",
                  "__MACOSX/"):
        assert named in msg, named
    assert record[0].filename == __file__  # points at the caller
    assert (ds.train, ds.query, ds.gallery) == (plain.train, plain.query, plain.gallery)
    # upper-case extensions are images (torchreid-style globbing is case-sensitive; here it is not)
    (folder / "query" / "0005_c4s3_002301_00.JPG").write_bytes(_jpeg_bytes())
    with pytest.warns(UserWarning, match="OS metadata"):
        assert len(load_dataset("market1501", tmp_path).query) == len(plain.query) + 1


def test_any_other_non_image_entry_raises_naming_it(tmp_path):
    folder = make_market(tmp_path)
    (folder / "query" / "Thumbs.db").write_bytes(b"\x00")  # metadata alone is fine, but not the others:
    (folder / "bounding_box_test" / "readme.txt").write_text("x")
    (folder / "bounding_box_train" / "extra").mkdir()
    (folder / "query" / ".notes").write_text("x")  # a hidden file that is not OS metadata
    with pytest.raises(DatasetFormatError) as err:
        load_dataset("market1501", tmp_path)
    msg = str(err.value)
    assert "3 entries that are not images" in msg
    assert "bounding_box_test/readme.txt, bounding_box_train/extra/, query/.notes" in msg
    assert "Thumbs.db" not in msg and "Fix: move them out of the image folders" in msg
    for name in ("readme.txt", "extra", ".notes"):
        path = next(folder.rglob(name))
        path.rmdir() if path.is_dir() else path.unlink()
    with pytest.warns(UserWarning, match=r"skipped 1 OS metadata file in query/ \(not images\): Thumbs\.db\."):
        load_dataset("market1501", tmp_path)


def _fixture_counts(ds) -> dict[str, tuple[int, int]]:
    return {s: (len({r.pid for r in ds.split(s)}), len(ds.split(s))) for s in ("train", "query", "gallery")}


def test_published_counts_warn_with_both_numbers_when_the_tree_looks_complete(tmp_path, monkeypatch):
    from sisnet.data import formats

    folder = make_market(tmp_path)
    counts = _fixture_counts(load_dataset("market1501", tmp_path))
    assert counts == {"train": (3, 5), "query": (2, 2), "gallery": (3, 4)}
    # the tiny fixture as the "published" size: it is the full set, and loads without a warning
    monkeypatch.setattr(formats, "PUBLISHED_COUNTS", {"market1501": counts})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(load_dataset("market1501", tmp_path).train) == 5
    (folder / "bounding_box_train" / "0005_c6s2_001251_01.jpg").unlink()  # pid 5's only training image
    with pytest.warns(UserWarning) as record:
        ds = load_dataset("market1501", tmp_path)
    assert len(ds.train) == 4  # a warning, not an error: the data loads
    assert len(record) == 1 and record[0].filename == __file__
    msg = str(record[0].message)
    assert "bounding_box_train has 4 images, the official set 5: an incomplete extraction or copy?" in msg
    assert msg.count("the official set") == 1  # only the split that differs
    # more images than published: another cause
    _write_images(folder / "bounding_box_train", ["0005_c6s2_001251_01.jpg", "0005_c5s2_001252_01.jpg"])
    with pytest.warns(UserWarning, match=r"bounding_box_train has 6 images, the official set 5: files added"):
        load_dataset("market1501", tmp_path)
    # same number of images, another identity
    (folder / "bounding_box_train" / "0005_c5s2_001252_01.jpg").unlink()
    (folder / "bounding_box_train" / "0007_c3s1_000176_02.jpg").rename(
        folder / "bounding_box_train" / "0009_c3s1_000176_02.jpg")
    with pytest.warns(UserWarning, match=r"bounding_box_train has 4 identities, the official set 3"):
        load_dataset("market1501", tmp_path)


def test_published_counts_are_the_official_numbers_and_small_trees_do_not_warn(tmp_path, monkeypatch):
    from sisnet.data import formats

    assert {k: formats.PUBLISHED_COUNTS[k] for k in ("market1501", "dukemtmcreid", "msmt17")} == {
        "market1501": {"train": (751, 12936), "query": (750, 3368), "gallery": (751, 15913)},
        "dukemtmcreid": {"train": (702, 16522), "query": (702, 2228), "gallery": (1110, 17661)},
        "msmt17": {"train": (1041, 30248), "train+val": (1041, 32621), "query": (3060, 11659),
                   "gallery": (3060, 82161)},
    }  # the real small sets' counts are checked in test_real_datasets.py
    assert formats.FULL_SET_FRACTION == 0.5
    make_market(tmp_path / "m")
    make_duke(tmp_path / "d")
    make_msmt(tmp_path / "s")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the fixture trees are far below half of any published split
        load_dataset("market1501", tmp_path / "m")
        load_dataset("dukemtmcreid", tmp_path / "d")
        load_dataset("msmt17", tmp_path / "s", combine_val=True)
    # "looks like the full set": one split holds at least half its published images
    small = {"train": (3, 10), "train+val": (3, 11), "query": (3, 4), "gallery": (3, 8)}  # MSMT fixture: 5/2/3
    monkeypatch.setattr(formats, "PUBLISHED_COUNTS", {"msmt17": small, "dukemtmcreid": {
        "train": (2, 7), "query": (1, 3), "gallery": (2, 2)}})  # Duke fixture: 3 / 1 / 2 images
    with pytest.warns(UserWarning) as record:
        load_dataset("msmt17", tmp_path / "s", combine_val=True)  # train 5 of 11 (< half), query 2 of 4 (half)
    msg = str(record[0].message)
    assert "list_train.txt + list_val.txt list 5 images, the official set 11" in msg
    assert "list_query.txt lists 2 images, the official set 4" in msg and "list_gallery.txt lists 3 images" in msg
    with pytest.warns(UserWarning, match=r"bounding_box_train has 3 images, the official set 7.*query has 1 image, the official set 3"):
        load_dataset("dukemtmcreid", tmp_path / "d")  # the gallery matches: only train and query are named
    monkeypatch.setattr(formats, "PUBLISHED_COUNTS", {"msmt17": {k: (v[0], 2 * v[1] + 1) for k, v in small.items()}})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every split below half of its published size: not compared
        load_dataset("msmt17", tmp_path / "s", combine_val=True)
    make_market(tmp_path / "y", "synthetic", SYN_TRAIN, SYN_QUERY, SYN_GALLERY)
    assert len(load_dataset("synthetic", tmp_path / "y").train) == 3  # no published size


def test_empty_split_after_junk_rules(tmp_path):
    make_market(tmp_path, gallery=["-1_c3s1_000003_01.jpg"])
    with pytest.raises(DatasetFormatError, match=r"gallery split.*empty.*bounding_box_test"):
        load_dataset("market1501", tmp_path)
    empty_query = tmp_path / "q"
    make_market(empty_query, query=[])
    with pytest.raises(DatasetFormatError, match=r"query split.*empty"):
        load_dataset("market1501", empty_query)


def test_missing_root_says_where_to_put_data(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"data/market1501/Market-1501-v15\.09\.15"):
        load_dataset("market1501", tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"data/msmt17/MSMT17_V1"):
        load_dataset("msmt17", tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"generate"):
        load_dataset("synthetic", tmp_path / "nowhere")


def test_wrong_layout_lists_expected_and_found(tmp_path):
    folder = make_market(tmp_path)
    (folder / "query").rename(folder / "queries")
    with pytest.raises(DatasetFormatError) as err:
        load_dataset("market1501", tmp_path)
    msg = str(err.value)
    assert "Expected" in msg and "bounding_box_train, query, bounding_box_test" in msg
    assert "is missing query" in msg  # what is wrong in the child folder
    with pytest.raises(DatasetFormatError, match=r"queries/"):  # found entries listed
        load_dataset("market1501", folder)


def test_market_folder_loaded_as_msmt17_is_rejected_with_hint(tmp_path):
    make_market(tmp_path)
    with pytest.raises(DatasetFormatError) as err:
        load_dataset("msmt17", tmp_path)
    msg = str(err.value)
    assert "MSMT17_V1/" in msg and "list_train.txt" in msg and "Market-1501-v15.09.15/" in msg
    assert "market1501" in msg  # hint at the right dataset name


def test_unknown_dataset_name_lists_valid_names(tmp_path):
    with pytest.raises(ValueError, match=r"cuhk02.*market1501, dukemtmcreid, msmt17, synthetic, cuhk03"):
        load_dataset("cuhk02", tmp_path)
    assert DATASET_NAMES == ("market1501", "dukemtmcreid", "msmt17", "synthetic", "cuhk03", "cuhk03_detected", "cuhk01",
                             "viper", "prid", "grid", "ilids")


def test_combine_val_rejected_for_market(tmp_path):
    make_market(tmp_path)
    with pytest.raises(ValueError, match=r"combine_val.*msmt17"):
        load_dataset("market1501", tmp_path, combine_val=True)


def test_summary_without_sidecar(tmp_path):
    make_market(tmp_path)
    ds = load_dataset("market1501", tmp_path)
    table = ds.summary()
    assert list(table.index) == ["train", "query", "gallery"]
    assert list(table.columns) == ["ids", "images", "cameras"]
    assert table.loc["train"].tolist() == [3, 5, 4]
    assert table.loc["query"].tolist() == [2, 2, 2]
    assert table.loc["gallery"].tolist() == [3, 4, 4]  # pids {0, 2, 5}; cams {1, 2, 4, 6}
    assert ds.scales() is None
    assert "train=5 images/3 ids" in repr(ds)


# --- dukemtmcreid ---------------------------------------------------------------------------------------

def test_duke_layout_and_eight_cameras(tmp_path):
    make_duke(tmp_path)
    ds = load_dataset("dukemtmcreid", tmp_path)
    assert ds.root.name == "DukeMTMC-reID"
    assert (len(ds.train), len(ds.query), len(ds.gallery)) == (3, 1, 2)
    train = _by_name(ds.train)
    assert train["0001_c8_f0046999.jpg"] .camid == 7
    assert train["0001_c2_f0046182.jpg"].pid == 0 and train["0004_c1_f0000111.jpg"].pid == 1
    assert _by_name(ds.gallery)["0010_c3_f0100000.jpg"].pid == 10


def test_duke_camera_nine_rejected_and_market_names_rejected(tmp_path):
    bad_cam = tmp_path / "a"
    make_market(bad_cam, "DukeMTMC-reID", DUKE_TRAIN + ["0001_c9_f0000001.jpg"], DUKE_QUERY, DUKE_GALLERY)
    with pytest.raises(DatasetFormatError, match=r"camera 9.*1\.\.8"):
        load_dataset("dukemtmcreid", bad_cam)
    market_names = tmp_path / "b"
    make_market(market_names, "DukeMTMC-reID")
    with pytest.raises(DatasetFormatError, match=r"0001_c2_f0046182\.jpg.*market1501"):
        load_dataset("dukemtmcreid", market_names)


# --- msmt17 ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("version", ["V1", "V2"])
def test_msmt17_lists_pids_and_camids(tmp_path, version):
    folder = make_msmt(tmp_path / "msmt17", version)
    ds = load_dataset("msmt17", tmp_path / "msmt17")
    assert ds.root == folder.resolve()
    assert (len(ds.train), len(ds.query), len(ds.gallery)) == (3, 2, 3)
    train = _by_name(ds.train)
    # pid 0 is a real MSMT17 identity: kept and relabelled with the others (0 -> 0, 3 -> 1)
    assert train["0000_000_01_0303morning_0015_0.jpg"] == (
        str(folder.resolve() / ("train" if version == "V1" else "mask_train_v2") / "0000"
            / "0000_000_01_0303morning_0015_0.jpg"), 0, 0)
    assert train["0003_000_05_0303morning_0040_0.jpg"].pid == 1
    assert train["0003_000_05_0303morning_0040_0.jpg"].camid == 4
    assert train["0000_001_15_0303noon_0100_1.jpg"].camid == 14
    query = _by_name(ds.query)
    assert query["0042_002_14_0113noon_0777_2.jpg"] [1:] == (42, 13)
    assert sorted(r.pid for r in ds.gallery) == [0, 42, 100]  # original pids, pid 0 kept
    # same result whichever root form is given
    assert load_dataset("msmt17", folder).train == ds.train


def test_msmt17_combine_val(tmp_path):
    make_msmt(tmp_path)
    plain = load_dataset("msmt17", tmp_path)
    combined = load_dataset("msmt17", tmp_path, combine_val=True)
    assert len(plain.train) == 3 and plain.num_train_pids == 2
    assert len(combined.train) == 5 and combined.num_train_pids == 3  # pids 0, 3, 9
    relabelled = _by_name(combined.train)
    assert relabelled["0009_000_12_0304morning_0001_0.jpg"].pid == 2
    assert relabelled["0003_001_02_0303afternoon_0500_0.jpg"].pid == 1
    assert combined.query == plain.query and combined.gallery == plain.gallery


def test_msmt17_camera_16_rejected(tmp_path):
    make_msmt(tmp_path, query=MSMT_QUERY + [("0042/0042_003_16_0113noon_0001_0.jpg", 42)])
    with pytest.raises(DatasetFormatError, match=r"camera 16.*1\.\.15"):
        load_dataset("msmt17", tmp_path)


def test_msmt17_bad_list_line_missing_file_and_bad_name(tmp_path):
    root = make_msmt(tmp_path)
    (root / "list_query.txt").write_text("0000/0000_000_03_0113morning_0015_0.jpg\n")
    with pytest.raises(DatasetFormatError, match=r"list_query\.txt:1.*<relative/path\.jpg> <pid>"):
        load_dataset("msmt17", tmp_path)
    (root / "list_query.txt").write_text("0000/0000_000_03_0113morning_0099_0.jpg 0\n")
    with pytest.raises(FileNotFoundError, match=r"list_query\.txt:1.*0000_000_03_0113morning_0099_0\.jpg"):
        load_dataset("msmt17", tmp_path)
    _write_images(root / "test" / "0000", ["0000_c1s1_000001_01.jpg"])
    (root / "list_query.txt").write_text("0000/0000_c1s1_000001_01.jpg 0\n")
    with pytest.raises(DatasetFormatError, match=r"0000_c1s1_000001_01\.jpg.*0303morning.*market1501"):
        load_dataset("msmt17", tmp_path)


def test_msmt17_empty_list_and_ambiguous_versions(tmp_path):
    root = make_msmt(tmp_path / "a")
    (root / "list_train.txt").write_text("\n")
    with pytest.raises(DatasetFormatError, match=r"train split.*empty.*list_train\.txt"):
        load_dataset("msmt17", root)
    both = tmp_path / "b"
    make_msmt(both, "V1")
    make_msmt(both, "V2")
    with pytest.raises(DatasetFormatError, match=r"MSMT17_V1/ and MSMT17_V2/.*pass the one"):
        load_dataset("msmt17", both)
    # a version folder lacking a list names what is missing
    (both / "MSMT17_V2" / "list_val.txt").unlink()
    (both / "MSMT17_V1").rename(tmp_path / "elsewhere")
    with pytest.raises(DatasetFormatError, match=r"MSMT17_V2/ is missing list_val\.txt"):
        load_dataset("msmt17", both)


# --- synthetic (Market layout) and the scale sidecar ----------------------------------------------------

SYN_TRAIN = ["0001_c1s1_000001_00.jpg", "0001_c12s1_000002_00.jpg", "0003_c2s1_000003_00.jpg"]
SYN_QUERY = ["0004_c1s1_000004_00.jpg"]
SYN_GALLERY = ["0004_c9s1_000005_00.jpg", "0000_c3s1_000006_00.jpg", "-1_c2s1_000007_00.jpg"]


def _write_sidecar(folder: Path, drop: str | None = None) -> None:
    rows = ["split,name,height_px"]
    heights = iter(range(24, 240, 20))
    for split, names in (("bounding_box_train", SYN_TRAIN), ("query", SYN_QUERY),
                         ("bounding_box_test", SYN_GALLERY)):
        rows += [f"{split},{n},{next(heights)}" for n in names if n != drop]
    (folder / SCALE_SIDECAR).write_text("\n".join(rows) + "\n")


def test_synthetic_any_camera_count_root_forms_and_scales(tmp_path):
    folder = make_market(tmp_path, "synthetic", SYN_TRAIN, SYN_QUERY, SYN_GALLERY)
    _write_sidecar(folder)
    ds = load_dataset("synthetic", tmp_path)
    assert load_dataset("synthetic", folder).train == ds.train
    assert _by_name(ds.train)["0001_c12s1_000002_00.jpg"].camid == 11  # no camera cap for synthetic
    assert (len(ds.train), len(ds.query), len(ds.gallery)) == (3, 1, 2)
    scales = ds.scales()
    assert list(scales["subset"]) == ["train"] * 3 + ["query"] + ["gallery"] * 2
    assert {"path", "pid", "camid", "height_px", "name", "split"} <= set(scales.columns)
    # heights written in file order: train 24, 44, 64; query 84; gallery 104, 124 (junk 144 left out)
    assert scales.set_index("name").loc["0003_c2s1_000003_00.jpg", "height_px"] == 64
    assert scales.set_index("name").loc["0003_c2s1_000003_00.jpg", "pid"] == 1  # relabelled like ds.train
    table = ds.summary()
    assert list(table.columns) == ["ids", "images", "cameras", "min_height_px", "max_height_px"]
    assert table.loc["train", ["min_height_px", "max_height_px"]].tolist() == [24, 64]
    assert table.loc["gallery", ["min_height_px", "max_height_px"]].tolist() == [104, 124]
    assert table.loc["query", ["min_height_px", "max_height_px"]].tolist() == [84, 84]


def test_sidecar_out_of_sync_or_malformed(tmp_path):
    folder = make_market(tmp_path, "synthetic", SYN_TRAIN, SYN_QUERY, SYN_GALLERY)
    _write_sidecar(folder, drop="0004_c1s1_000004_00.jpg")
    ds = load_dataset("synthetic", folder)
    with pytest.raises(DatasetFormatError, match=r"no row for 1 of 6 images.*query/0004_c1s1_000004_00\.jpg"):
        ds.scales()
    (folder / SCALE_SIDECAR).write_text("split,name\nquery,0004_c1s1_000004_00.jpg\n")
    with pytest.raises(DatasetFormatError, match=r"lacks column\(s\) height_px"):
        ds.summary()


def test_synthetic_camera_zero_is_not_a_camera(tmp_path):
    make_market(tmp_path, "synthetic", SYN_TRAIN + ["0001_c0s1_000009_00.jpg"], SYN_QUERY, SYN_GALLERY)
    with pytest.raises(DatasetFormatError, match=r"camera 0.*>= 1"):
        load_dataset("synthetic", tmp_path)


def test_generated_synthetic_set_loads(tiny_synthetic_root):
    """The SYNTH generator's tiny set goes through the same loader and has a consistent sidecar."""
    ds = load_dataset("synthetic", tiny_synthetic_root)
    assert ds.num_train_pids >= 8 and ds.num_train_cams >= 2
    assert sorted({r.pid for r in ds.train}) == list(range(ds.num_train_pids))
    assert any(r.pid == 0 for r in ds.gallery)  # distractors kept
    assert not any(r.pid == 0 for r in ds.query)
    table = ds.summary()
    assert int(table.loc["train", "images"]) == len(ds.train)
    assert "min_height_px" in table.columns  # the generator writes scales.csv
    assert (table["min_height_px"] <= table["max_height_px"]).all()


def test_import_is_light():
    code = ("import sys, sisnet.data; heavy = [m for m in ('torch', 'pandas', 'sisnet.data.synthetic') "
            "if m in sys.modules]; assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
