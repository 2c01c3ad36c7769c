"""Real-pedestrian set loaders (CUHK03, CUHK01, VIPeR, PRID, GRID, i-LIDS) on tiny generated trees of every layout.

No real data is read: every fixture is written here from solid-colour PIL images (8 px wide, 16-20 px high).
"""
from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sisnet.data import DATASET_NAMES, DatasetFormatError, load_dataset, native_heights
from sisnet.data import formats
from sisnet.data.cuhk import VAL_PID_OFFSET

VIPER_IDS = [0, 1, 3, 7, 10, 12, 15, 20, 21, 30, 44, 873]


def _img(path: Path, pid: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 16 + pid % 5), ((37 * pid) % 256, 80, 120)).save(path)
    return path


def _labels(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Label.txt").write_text("0001 upperBodyBlack\n", encoding="utf-8")


@contextlib.contextmanager
def _strict():
    """A context in which any warning (e.g. a published-size one) fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def _summary(ds) -> dict:
    return {s: (len({r.pid for r in ds.split(s)}), len(ds.split(s))) for s in ("train", "query", "gallery")}


def _protocol(ds) -> tuple:
    """What must agree between two layouts: pids and camids of every split, in order (paths differ)."""
    return tuple(tuple((r.pid, r.camid) for r in ds.split(s)) for s in ("train", "query", "gallery"))


# --------------------------------------------------------------------------------------------------------
# fixtures


def make_viper(root: Path, peta: bool) -> Path:
    for k, pid in enumerate(VIPER_IDS):
        angle_a, angle_b = (0, 45, 90)[k % 3], (90, 135, 180)[k % 3]
        if peta:
            _img(root / "archive" / f"{pid:03d}_{angle_a}_1.bmp", pid)
            _img(root / "archive" / f"{pid:03d}_{angle_b}_2.bmp", pid)
        else:
            _img(root / "VIPeR" / "cam_a" / f"{pid:03d}_{angle_a}.bmp", pid)
            _img(root / "VIPeR" / "cam_b" / f"{pid:03d}_{angle_b}.bmp", pid)
    if peta:
        _labels(root / "archive")
    return root


def make_prid(root: Path, peta: bool) -> Path:
    """Persons 1-10 in both views, 201-203 only in A, 201-203 and 386-388 (other people) only in B."""
    a_ids, b_only = [*range(1, 11), 201, 202, 203], [201, 202, 203, 386, 387, 388]
    for pid in a_ids:
        path = root / "archive" / f"{pid:04d}_a.png" if peta else root / "prid_2011/single_shot/cam_a" / f"person_{pid:04d}.png"
        _img(path, pid)
    for pid in [*range(1, 11), *b_only]:
        renamed = pid + 1000 if peta and 200 < pid <= 385 else pid  # PETA renames B-only 201-385 to 1201-1385
        path = root / "archive" / f"{renamed:04d}_b.png" if peta else root / "prid_2011/single_shot/cam_b" / f"person_{pid:04d}.png"
        _img(path, pid)
    if peta:
        _labels(root / "archive")
    return root


GRID_PAIRS = {pid: ((1, 2) if pid % 2 else (5, 4)) for pid in range(1, 13)}  # (probe camera, gallery camera)


def make_grid(root: Path, peta: bool) -> Path:
    """12 paired people (probe = the earlier frame) and 5 distractors; PETA renames the distractors 0013-0017."""
    for pid, (cam_p, cam_g) in GRID_PAIRS.items():
        frame = 25000 + 40 * pid
        probe, match = f"{pid:04d}_{cam_p}_{frame}_10_20_30_90.jpeg", f"{pid:04d}_{cam_g}_{frame + 19}_12_22_33_99.jpeg"
        _img((root / "archive" if peta else root / "underground_reid/probe") / probe, pid)
        _img((root / "archive" if peta else root / "underground_reid/gallery") / match, pid)
    names = sorted(f"{2 + k % 3}_{26000 + k}_1_2_3_4.jpeg" for k in range(5))  # PETA numbers them in this order
    for k, name in enumerate(names):
        _img(root / "archive" / f"{13 + k:04d}_{name}" if peta else root / "underground_reid/gallery" / f"0000_{name}", 0)
    if peta:
        _labels(root / "archive")
    return root


def write_grid_partitions(path: Path, train_ids: list[list[int]]) -> None:
    """GRID's features_and_partitions.mat as torchreid reads it: trainIdxAll = 1 x 10 cell of structs whose third
    field holds the training ids (the other two fields stand for the official file's other fields)."""
    from scipy.io import savemat

    cells = np.empty((1, len(train_ids)), dtype=object)
    for k, ids in enumerate(train_ids):
        record = np.zeros((1, 1), dtype=[("first", "O"), ("second", "O"), ("idx_train", "O")])
        record[0, 0] = (np.array([[0.0]]), np.array([[0.0]]), np.array([ids], dtype=float))
        cells[0, k] = record
    savemat(path, {"trainIdxAll": cells})


ILIDS_IMAGES = {1: 4, 2: 2, 3: 3, 4: 4, 5: 2, 6: 5, 7: 3, 8: 2}


def make_ilids(root: Path, peta: bool) -> Path:
    for pid, n in ILIDS_IMAGES.items():
        for index in range(1, n + 1):
            _img(root / "archive" / f"{pid:04d}_{index:03d}.jpg" if peta else
                 root / "i-LIDS_Pedestrian/Persons" / f"{pid:04d}{index:03d}.jpg", pid)
    if peta:
        _img(root / "archive" / "0009_001.jpg", 9)  # the PETA copy's extra one-image person
        _labels(root / "archive")
    return root


def make_cuhk01(root: Path, num_ids: int = 8) -> Path:
    for pid in range(1, num_ids + 1):
        for index in range(1, 5):
            _img(root / "cuhk01" / "campus" / f"{pid:04d}{index:03d}.png", pid)
    return root


def make_cuhk03_extracted(root: Path) -> Path:
    for boxes in ("labeled", "detected"):
        for pid in range(4):
            for index in (0, 1, 5, 6):
                _img(root / boxes / "train" / f"{pid:04d}_{index:02d}.jpg", pid)
        for pid in range(3):
            for index in (0, 1, 2, 5, 6):
                _img(root / boxes / "val" / f"{pid:04d}_{index:02d}.jpg", pid)
        for index in (0, 1):  # val person 3: camera 0 only -> no cross-camera match -> all gallery
            _img(root / boxes / "val" / f"0003_{index:02d}.jpg", 3)
        (root / boxes / "train_resized").mkdir()  # the release's resized copies: not read
        (root / boxes / "train_resized" / "notes.txt").write_text("x", encoding="utf-8")
    return root


CUHK03_PERSONS = [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2)]  # (camera pair, person) -> labels 1..5
CUHK03_INDICES = (1, 2, 6, 7)  # images 1-2 view 1, 6-7 view 2; the other 6 cells are empty


def make_cuhk03_mat(root: Path) -> Path:
    """cuhk-03.mat as MATLAB v7.3 writes it (HDF5, column-major, cells as object references) + the configs."""
    import h5py
    from scipy.io import savemat

    (root / "cuhk03_release").mkdir(parents=True)
    with h5py.File(root / "cuhk03_release" / "cuhk-03.mat", "w") as mat:
        store = mat.create_group("#refs#")

        def ref(array: np.ndarray) -> h5py.Reference:
            return store.create_dataset(str(len(store)), data=array).ref

        for boxes in ("labeled", "detected"):
            pairs = []
            for pair in (1, 2):
                persons = [p for c, p in CUHK03_PERSONS if c == pair]
                cells = np.empty((10, len(persons)), dtype=h5py.ref_dtype)  # (10, persons): MATLAB's (persons x 10)
                for j, person in enumerate(persons):
                    for index in range(1, 11):
                        image = np.full((16 + person, 8, 3), 40 * pair + index, dtype=np.uint8)
                        cells[index - 1, j] = ref(image.T if index in CUHK03_INDICES else np.zeros(2, np.uint64))
                pairs.append(ref(cells))
            mat.create_dataset(boxes, data=np.array([pairs], dtype=h5py.ref_dtype))  # MATLAB's 5 x 1 cell
    names, labels = [], []
    for label, (pair, person) in enumerate(CUHK03_PERSONS, start=1):
        for index in CUHK03_INDICES:
            names.append(f"{pair}_{person:03d}_{1 if index <= 5 else 2}_{index:02d}.png")
            labels.append(label)
    train = [i + 1 for i, label in enumerate(labels) if label <= 3]
    query = [i + 1 for i, label in enumerate(labels) if label > 3 and names[i].endswith(("_01.png", "_06.png"))]
    gallery = [i + 1 for i, label in enumerate(labels) if label > 3 and i + 1 not in query]
    config = {"filelist": np.array(names, dtype=object).reshape(-1, 1), "labels": np.array(labels, float).reshape(-1, 1),
              "train_idx": np.array(train, float).reshape(-1, 1), "query_idx": np.array(query, float).reshape(-1, 1),
              "gallery_idx": np.array(gallery, float).reshape(-1, 1)}
    savemat(root / "cuhk03_new_protocol_config_labeled.mat", config)
    return root


# --------------------------------------------------------------------------------------------------------
# registry and API


def test_registered_names_and_split_counts():
    for name in ("cuhk03", "cuhk03_detected", "cuhk01", "viper", "prid", "grid", "ilids"):
        assert name in DATASET_NAMES
    assert {n: formats.FORMATS[n].num_splits for n in ("cuhk03", "cuhk01", "viper", "prid", "grid", "ilids")} == {
        "cuhk03": 1, "cuhk01": 10, "viper": 10, "prid": 10, "grid": 10, "ilids": 10}
    assert formats.FORMATS["market1501"].num_splits == 1
    published = formats.PUBLISHED_COUNTS
    assert published["cuhk03"] == {"train": (767, 7368), "query": (700, 1400), "gallery": (700, 5328)}
    assert published["cuhk03_detected"] == {"train": (767, 7365), "query": (700, 1400), "gallery": (700, 5332)}
    assert published["viper"]["all"] == (632, 1264) and published["prid"]["gallery"] == (649, 649)
    assert published["grid"]["gallery"] == (126, 900) and published["ilids"]["all"] == (119, 476)


def test_train_config_accepts_the_new_names():
    from sisnet.config import TrainConfig

    assert TrainConfig(dataset="grid").dataset == "grid"


def test_split_id_is_checked(tmp_path):
    make_viper(tmp_path, peta=True)
    for bad in (10, -1, True, 1.0):
        with pytest.raises(ValueError, match=r"split_id=.* out of range for viper: give 0\.\.9"):
            load_dataset("viper", tmp_path, split_id=bad)
    for name in ("market1501", "cuhk03"):
        with pytest.raises(ValueError, match=rf"out of range for {name}: give 0 \(it has one fixed split\)"):
            load_dataset(name, tmp_path, split_id=1)


def test_test_ids_are_disjoint_from_train_ids_in_every_layout(tmp_path):
    """On the parsers' original pids (before relabelling): no query / gallery person trains (GRID's distractor id 0
    is nobody)."""
    trees = {("viper", "o"): make_viper(tmp_path / "vo", False), ("viper", "p"): make_viper(tmp_path / "vp", True),
             ("prid", "o"): make_prid(tmp_path / "po", False), ("prid", "p"): make_prid(tmp_path / "pp", True),
             ("grid", "o"): make_grid(tmp_path / "go", False), ("grid", "p"): make_grid(tmp_path / "gp", True),
             ("ilids", "o"): make_ilids(tmp_path / "io", False), ("ilids", "p"): make_ilids(tmp_path / "ip", True),
             ("cuhk01", "o"): make_cuhk01(tmp_path / "c1"), ("cuhk03", "x"): make_cuhk03_extracted(tmp_path / "c3"),
             ("cuhk03", "m"): make_cuhk03_mat(tmp_path / "c3m")}
    for (name, _), root in trees.items():
        fmt = formats.FORMATS[name]
        folder, layout = formats.resolve_root(fmt, root)
        for k in range(fmt.num_splits):
            parsed = fmt.parse(fmt, folder, layout, False, k)
            train, test = {r.pid for r in parsed.train}, {r.pid for r in parsed.query + parsed.gallery} - {0}
            assert train and test and not train & test, (name, layout, k)
            assert {r.pid for r in parsed.query} <= {r.pid for r in parsed.gallery}, (name, layout, k)


# --------------------------------------------------------------------------------------------------------
# VIPeR


def test_viper_official_and_peta_give_the_same_ten_splits(tmp_path):
    official, peta = make_viper(tmp_path / "o", peta=False), make_viper(tmp_path / "p", peta=True)
    queries = set()
    with _strict():
        for k in range(10):
            a, b = load_dataset("viper", official, split_id=k), load_dataset("viper", peta / "archive", split_id=k)
            assert _protocol(a) == _protocol(b) and a.variant == b.variant == f"split{k}"
            assert _summary(a) == {"train": (6, 12), "query": (6, 6), "gallery": (6, 6)}
            assert {r.camid for r in a.query} == {0} and {r.camid for r in a.gallery} == {1}
            assert {r.pid for r in a.query} == {r.pid for r in a.gallery} <= set(VIPER_IDS)
            train_paths = {Path(r.path).name[:3] for r in a.train}  # train pids are relabelled: compare the numbers
            assert not train_paths & {f"{r.pid:03d}" for r in a.query}
            queries.add(frozenset(r.pid for r in a.query))
    assert len(queries) == 10  # ten different splits
    again = load_dataset("viper", official, split_id=3)
    assert _protocol(again) == _protocol(load_dataset("viper", official, split_id=3))
    assert again.fingerprint() != load_dataset("viper", official, split_id=4).fingerprint()


def test_viper_bad_inputs(tmp_path):
    make_viper(tmp_path / "p", peta=True)
    (tmp_path / "p/archive/notes.txt").write_text("x", encoding="utf-8")
    with pytest.raises(DatasetFormatError, match=r"not images .*notes\.txt"):
        load_dataset("viper", tmp_path / "p")
    make_viper(tmp_path / "o", peta=False)
    _img(tmp_path / "o/VIPeR/cam_a/portrait.bmp")
    _img(tmp_path / "o/VIPeR/cam_b/999_0.bmp")
    with pytest.raises(DatasetFormatError, match=r"Cannot parse VIPeR image name 'portrait\.bmp' .*cam_a"):
        load_dataset("viper", tmp_path / "o")
    make_prid(tmp_path / "prid", peta=True)
    with pytest.raises(DatasetFormatError, match=r"'0001_a\.png'.*PETA prid naming; load it with 'prid'"):
        load_dataset("viper", tmp_path / "prid")
    with pytest.raises(DatasetFormatError, match=r"is not a VIPeR folder"):
        load_dataset("viper", make_prid(tmp_path / "prid_official", peta=False))


def test_corrupt_image_is_kept_and_reported_by_name(tmp_path):
    make_viper(tmp_path, peta=True)
    bad = tmp_path / "archive" / "010_135_2.bmp"
    bad.write_bytes(b"this is not a bitmap")
    ds = load_dataset("viper", tmp_path)
    records = ds.train + ds.query + ds.gallery
    assert str(bad) in {r.path for r in records}  # listed by name: never silently dropped
    from sisnet.data.transforms import BadImageError, decode_images

    with pytest.raises(BadImageError, match=r"(?s)1 of 24 image file\(s\) could not be read.*010_135_2\.bmp"):
        native_heights(records)
    with pytest.raises(BadImageError, match=r"010_135_2\.bmp"):
        decode_images([r.path for r in records], (16, 8))
    good = [r for r in records if r.path != str(bad)]
    assert sorted(set(native_heights(good))) == [16, 17, 18, 19, 20]


# --------------------------------------------------------------------------------------------------------
# PRID


def test_prid_layouts_agree_and_the_gallery_holds_the_camera_b_only_people(tmp_path):
    official, peta = make_prid(tmp_path / "o", peta=False), make_prid(tmp_path / "p", peta=True)
    with _strict():
        for k in (0, 7):
            a, b = load_dataset("prid", official, split_id=k), load_dataset("prid", peta, split_id=k)
            assert _protocol(a) == _protocol(b)
            assert _summary(a) == {"train": (5, 10), "query": (5, 5), "gallery": (11, 11)}
            assert {201, 202, 203, 386, 387, 388} <= {r.pid for r in a.gallery}  # PETA's 1201-1203 mapped back
            assert {r.pid for r in a.query} <= set(range(1, 11)) and {r.camid for r in a.gallery} == {1}
    assert any(Path(r.path).name == "1201_b.png" and r.pid == 201 for r in b.gallery)
    (official / "prid_2011/single_shot/cam_b/person_0004.png").unlink()
    with pytest.raises(DatasetFormatError, match=r"person 4 has a camera-A image \(person_0004\.png\) but none in camera B"):
        load_dataset("prid", official)


# --------------------------------------------------------------------------------------------------------
# GRID


def test_grid_layouts_agree_and_the_gallery_holds_the_distractors(tmp_path):
    official, peta = make_grid(tmp_path / "o", peta=False), make_grid(tmp_path / "p", peta=True)
    with _strict():
        for k in (0, 9):
            a, b = load_dataset("grid", official, split_id=k), load_dataset("grid", peta, split_id=k)
            assert _protocol(a) == _protocol(b)  # PETA probe = the earlier frame = the official probe here
            assert _summary(a) == {"train": (6, 12), "query": (6, 6), "gallery": (7, 11)}  # 6 + distractor id 0
            assert sum(r.pid == 0 for r in a.gallery) == 5 and not any(r.pid == 0 for r in a.query)
            for q in a.query:  # the probe's camera, camid = camera - 1
                assert q.camid == GRID_PAIRS[q.pid][0] - 1
    assert {Path(r.path).name[:4] for r in b.gallery if r.pid == 0} == {"0013", "0014", "0015", "0016", "0017"}


def test_grid_official_partitions_and_a_partition_naming_missing_people(tmp_path):
    official, peta = make_grid(tmp_path / "o", peta=False), make_grid(tmp_path / "p", peta=True)
    train_ids = [[(k + j) % 12 + 1 for j in range(6)] for k in range(10)]
    write_grid_partitions(official / "underground_reid" / "features_and_partitions.mat", train_ids)
    write_grid_partitions(peta / "archive" / "features_and_partitions.mat", train_ids)  # tolerated next to Label.txt
    for k in (0, 4):
        a, b = load_dataset("grid", official, split_id=k), load_dataset("grid", peta, split_id=k)
        assert _protocol(a) == _protocol(b)
        assert {r.pid for r in a.query} == set(range(1, 13)) - set(train_ids[k])
    train_ids[2] = [1, 2, 3, 4, 5, 99]
    write_grid_partitions(official / "underground_reid" / "features_and_partitions.mat", train_ids)
    load_dataset("grid", official, split_id=1)
    with pytest.raises(DatasetFormatError, match=r"features_and_partitions\.mat: split 2 names 6 training ids, of "
                                                 r"which 1 have no probe/gallery images here \(e\.g\. \[99\]\)"):
        load_dataset("grid", official, split_id=2)


def test_os_metadata_is_skipped_with_one_warning_and_label_txt_is_tolerated(tmp_path):
    for peta, folder in ((True, "archive"), (False, "underground_reid/gallery")):
        root = make_grid(tmp_path / str(peta), peta=peta)
        (root / folder / ".DS_Store").write_bytes(b"\0")
        (root / folder / "Thumbs.db").write_bytes(b"\0")
        with pytest.warns(UserWarning, match=r"skipped 2 OS metadata files \(not images\): .*\.DS_Store, .*Thumbs\.db") as record:
            ds = load_dataset("grid", root)
        assert len(record) == 1 and record[0].filename == __file__
        assert len(ds.train) + len(ds.query) + len(ds.gallery) == 29


# --------------------------------------------------------------------------------------------------------
# i-LIDS


def test_ilids_layouts_agree_on_query_and_gallery(tmp_path):
    official, peta = make_ilids(tmp_path / "o", peta=False), make_ilids(tmp_path / "p", peta=True)
    with _strict():
        a, b = load_dataset("ilids", official, split_id=5), load_dataset("ilids", peta, split_id=5)
    assert _protocol(a)[1:] == _protocol(b)[1:]  # query, gallery
    assert _summary(a)["query"] == _summary(a)["gallery"] == (4, 4)
    assert {r.camid for r in a.query} == {0} and {r.camid for r in a.gallery} == {1} and {r.camid for r in a.train} == {0}
    assert not {r.path for r in a.query} & {r.path for r in a.gallery}
    assert b.num_train_pids == a.num_train_pids + 1  # the one-image person 0009 trains in every split
    queries = {frozenset(r.path for r in load_dataset("ilids", official, split_id=k).query) for k in range(10)}
    assert len(queries) == 10


def test_published_count_warning_fires_only_when_the_set_looks_full(tmp_path, monkeypatch):
    official, peta = make_ilids(tmp_path / "o", peta=False), make_ilids(tmp_path / "p", peta=True)
    # the official fixture as the "published" set: it loads without a warning
    monkeypatch.setitem(formats.PUBLISHED_COUNTS, "ilids", {"query": (4, 4), "gallery": (4, 4), "all": (8, 25)})
    with _strict():
        load_dataset("ilids", official)
    with pytest.warns(UserWarning, match=r"QMUL i-LIDS at .* differs from the published dataset: the whole set has "
                                         r"26 images, the official set 25: files added"):
        load_dataset("ilids", peta)  # the PETA copy's extra person still loads
    monkeypatch.setitem(formats.PUBLISHED_COUNTS, "ilids", {"query": (60, 60), "gallery": (60, 60), "all": (119, 476)})
    with _strict():  # far below half of the published size: a sample, not compared
        load_dataset("ilids", peta)
    make_viper(tmp_path / "v", peta=True)
    monkeypatch.setitem(formats.PUBLISHED_COUNTS, "viper", {"train": (6, 12), "query": (7, 7), "gallery": (6, 6)})
    with pytest.warns(UserWarning, match=r"the query split has 6 images, the official set 7") as record:
        load_dataset("viper", tmp_path / "v")
    assert record[0].filename == __file__ and "gallery" not in str(record[0].message)


# --------------------------------------------------------------------------------------------------------
# CUHK01


def test_cuhk01_ten_splits(tmp_path):
    make_cuhk01(tmp_path)
    with _strict():
        splits = [load_dataset("cuhk01", tmp_path, split_id=k) for k in range(10)]
    for ds in splits:
        assert _summary(ds) == {"train": (4, 16), "query": (4, 8), "gallery": (4, 8)}
        assert {r.camid for r in ds.query} == {0} and {r.camid for r in ds.gallery} == {1}
        assert {Path(r.path).name[4:] for r in ds.query} == {"001.png", "002.png"}
        assert not {Path(r.path).name[:4] for r in ds.train} & {f"{r.pid:04d}" for r in ds.query}
    assert len({frozenset(r.pid for r in ds.query) for ds in splits}) > 5
    _img(tmp_path / "cuhk01/campus/0009005.png")
    with pytest.raises(DatasetFormatError, match=r"'0009005\.png'.*NNN 001-004"):
        load_dataset("cuhk01", tmp_path)


# --------------------------------------------------------------------------------------------------------
# CUHK03


def test_cuhk03_extracted_layout(tmp_path):
    make_cuhk03_extracted(tmp_path)
    with _strict():
        labeled, detected = load_dataset("cuhk03", tmp_path), load_dataset("cuhk03_detected", tmp_path)
    for ds, boxes in ((labeled, "labeled"), (detected, "detected")):
        assert ds.variant == "" and all(f"/{boxes}/" in r.path for r in ds.train + ds.query + ds.gallery)
        assert _summary(ds) == {"train": (4, 16), "query": (3, 6), "gallery": (4, 11)}
        assert {r.pid for r in ds.gallery} == {VAL_PID_OFFSET + p for p in range(4)}  # val numbers restart at 0000
        assert sorted((r.pid, r.camid) for r in ds.query) == [(VAL_PID_OFFSET + p, c) for p in range(3) for c in (0, 1)]
        for r in ds.query + ds.gallery:
            assert r.camid == int(int(Path(r.path).stem[-2:]) >= 5)
    assert [Path(r.path).name for r in labeled.query] == [Path(r.path).name for r in detected.query]
    _img(tmp_path / "labeled/val/0001_12.jpg")
    with pytest.raises(DatasetFormatError, match=r"'0001_12\.jpg'.*NN 00-09"):
        load_dataset("cuhk03", tmp_path)


def test_cuhk03_mat_layout_extracts_images_and_reads_the_new_protocol(tmp_path):
    make_cuhk03_mat(tmp_path)
    with _strict():
        ds = load_dataset("cuhk03", tmp_path)
    images = tmp_path / "images_labeled"
    assert sorted(p.name for p in images.iterdir())[:4] == ["1_001_1_01.png", "1_001_1_02.png", "1_001_2_06.png",
                                                            "1_001_2_07.png"]
    assert len(list(images.iterdir())) == 20 and not (tmp_path / "images_labeled.partial").exists()
    with Image.open(images / "2_002_2_07.png") as im:
        assert im.size == (8, 18) and im.getpixel((0, 0)) == (87, 87, 87)
    assert _summary(ds) == {"train": (3, 12), "query": (2, 4), "gallery": (2, 4)}
    assert {r.pid for r in ds.query} == {4, 5} and sorted({r.camid for r in ds.query}) == [0, 1]
    stamp = (images / "1_001_1_01.png").stat().st_mtime_ns
    assert _protocol(load_dataset("cuhk03", tmp_path)) == _protocol(ds)
    assert (images / "1_001_1_01.png").stat().st_mtime_ns == stamp  # extracted once, then reused
    (images / "2_001_2_06.png").unlink()
    with pytest.raises(DatasetFormatError, match=r"cuhk03_new_protocol_config_labeled\.mat names 1 image\(s\) that "
                                                 r".*images_labeled lacks \(e\.g\. 2_001_2_06\.png\)"):
        load_dataset("cuhk03", tmp_path)
    with pytest.raises(DatasetFormatError, match=r"cuhk03_new_protocol_config_detected\.mat is missing"):
        load_dataset("cuhk03_detected", tmp_path)
