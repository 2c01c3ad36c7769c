"""The frames of a tracking sequence by 1-based frame number: an image folder, or a video file decoded with PyAV.

:class:`FrameSource` is what :mod:`sisnet.data.mot` converts from and what the footage figures draw; a file that
cannot be opened or decoded raises :class:`MotFormatError` naming the file and FFmpeg's reason.
"""
from __future__ import annotations

import configparser
from pathlib import Path
from typing import Iterator, Sequence

from PIL import Image

__all__ = ["FrameSource", "MotFormatError", "FRAME_EXTENSIONS", "VIDEO_EXTENSIONS"]

FRAME_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".gif")


class MotFormatError(ValueError):
    """A MOT sequence or annotation file does not have the expected layout (the message says how to fix it)."""


def _read_seqinfo(seq_dir: Path) -> dict[str, str]:
    ini = seq_dir / "seqinfo.ini"
    if not ini.is_file():
        return {}
    cp = configparser.ConfigParser()
    try:
        cp.read(ini)
    except configparser.Error:
        return {}
    return {k.lower(): v for k, v in cp["Sequence"].items()} if cp.has_section("Sequence") else {}


def _is_video(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS and not path.name.startswith(".")


class FrameSource:
    """Frames of a sequence by 1-based frame number: an image folder, or a video decoded with PyAV.

    ``sequence`` is a MOTChallenge sequence folder (frames in ``img1/`` or the ``imDir`` of ``seqinfo.ini``, else
    the folder's one video file), its frame folder itself, or a video file whose folder holds ``gt/gt.txt``.
    """

    def __init__(self, sequence: Path) -> None:
        sequence = Path(sequence)
        explicit_video = sequence.is_file()
        if explicit_video and sequence.suffix.lower() not in VIDEO_EXTENSIONS:
            raise MotFormatError(
                f"{sequence} is a file but not a video ({', '.join(VIDEO_EXTENSIONS)}). Pass a MOTChallenge sequence "
                f"folder (gt/gt.txt + img1/) or a video file inside one."
            )
        # the frame folder itself (e.g. MOT17-02/img1) stands for its sequence folder
        frame_folder = (sequence.is_dir() and not (sequence / "gt").exists()
                        and (sequence.parent / "gt" / "gt.txt").is_file())  # fmt: skip
        self.seq_dir = sequence.parent if explicit_video or frame_folder else sequence
        info = _read_seqinfo(self.seq_dir)
        self.name = info.get("name", self.seq_dir.name)
        self.fps: float | None = _positive_float(info.get("framerate"))
        img_dir = sequence if frame_folder else self.seq_dir / info.get("imdir", "img1")
        self.frames: dict[int, Path] | None = None
        self.video: Path | None = None
        self.size: tuple[int, int] | None = None
        if explicit_video:
            self.video = sequence
        elif img_dir.is_dir():
            files = sorted(p for p in img_dir.iterdir() if p.suffix.lower() in FRAME_EXTENSIONS
                           and not p.name.startswith("."))  # fmt: skip
            if not files:
                raise MotFormatError(f"{img_dir} holds no frames ({'/'.join(FRAME_EXTENSIONS)}).")
            stems = [p.stem for p in files]
            if all(s.isdigit() for s in stems):
                self.frames = {int(s): p for s, p in zip(stems, files)}
            else:  # names are not frame numbers: the sorted position is (1-based)
                self.frames = {i + 1: p for i, p in enumerate(files)}
        else:
            videos = sorted(p for p in self.seq_dir.iterdir() if _is_video(p))
            if not videos:
                raise MotFormatError(
                    f"{self.seq_dir} has neither a frame folder {img_dir.name}/ nor a video file "
                    f"({', '.join(VIDEO_EXTENSIONS)}). A MOTChallenge sequence folder holds img1/000001.jpg ... "
                    f"and gt/gt.txt; footage may instead be one video file in that folder."
                )
            if len(videos) > 1:
                raise MotFormatError(
                    f"{self.seq_dir} holds several videos ({[v.name for v in videos]}) and no frame folder: pass the "
                    f"video file itself (gt/gt.txt beside it must belong to that video)."
                )
            self.video = videos[0]
        if self.video is not None:
            self.size, video_fps = _probe_video(self.video)
            self.fps = self.fps or video_fps

    def frame_size(self, frame_no: int) -> tuple[int, int]:
        """``(W, H)`` of the sequence's frames (from one frame header, or the video stream)."""
        if self.size is None:
            path = self.frames.get(frame_no) or next(iter(self.frames.values()))
            try:
                with Image.open(path) as im:
                    self.size = im.size
            except OSError as exc:
                raise MotFormatError(f"Cannot read frame {path} ({exc}); re-extract or delete it.") from exc
        return self.size

    def describe(self) -> str:
        return str(self.video) if self.video else f"{len(self.frames or {})} frames"

    def iter_frames(self, wanted: Sequence[int]) -> Iterator[tuple[int, Image.Image]]:
        """Yield ``(frame_number, RGB image)`` for the wanted frame numbers, in increasing order."""
        wanted_sorted = sorted(set(int(f) for f in wanted))
        if self.frames is not None:
            missing = [f for f in wanted_sorted if f not in self.frames]
            if missing:
                raise MotFormatError(
                    f"{self.seq_dir}: gt.txt refers to frame(s) {missing[:5]} that are not in the frame folder "
                    f"(which holds frames {min(self.frames)}..{max(self.frames)}). Check that gt.txt belongs to "
                    f"this sequence."
                )
            for f in wanted_sorted:
                yield f, _open_rgb(self.frames[f])
            return
        yield from _iter_video(self.video, wanted_sorted)


def _positive_float(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and value > 0 else None


def _open_rgb(path: Path) -> Image.Image:
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (OSError, Image.DecompressionBombError) as exc:
        raise MotFormatError(f"Cannot read frame {path} ({exc}); re-extract or delete that file.") from exc


def _open_video(video: Path):
    """``av.open`` with the failure turned into an error that names the file, the reason and what to do."""
    import av

    try:
        container = av.open(str(video))
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise MotFormatError(
            f"Cannot open video {video}: {type(exc).__name__}: {exc}. The file may be incomplete, corrupt or not "
            f"a video; check that it plays (e.g. `ffprobe {video}`), or extract its frames with `ffmpeg -i {video} "
            f"-start_number 1 {video.parent / 'img1'}/%06d.jpg` and remove the video from the folder."
        ) from exc
    if not container.streams.video:
        container.close()
        raise MotFormatError(f"{video} holds no video stream (only audio/subtitles?); pass the footage itself.")
    return container


def _probe_video(video: Path) -> tuple[tuple[int, int], float | None]:
    """``((W, H), frames per second or None)`` of a video's first video stream, from its header."""
    with _open_video(video) as container:
        stream = container.streams.video[0]
        size = (int(stream.codec_context.width), int(stream.codec_context.height))
        rate = stream.average_rate or stream.base_rate
    if min(size) < 1:
        raise MotFormatError(f"{video}: the video stream reports no frame size; re-encode it (e.g. with ffmpeg).")
    return size, (float(rate) if rate else None)


def _iter_video(video: Path, wanted_sorted: list[int]) -> Iterator[tuple[int, Image.Image]]:
    """Decode a video sequentially with PyAV and yield the wanted 1-based frames as RGB images.

    Frame k is the k-th frame the decoder outputs (presentation order), as in MOTChallenge's ``img1/%06d.jpg``
    extraction. Only the wanted frames are converted to images; decoding stops after the last one.
    """
    import av

    wanted = set(wanted_sorted)
    if not wanted:
        return
    last = max(wanted)
    count = 0
    with _open_video(video) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for frame in container.decode(stream):
                count += 1
                if count in wanted:
                    wanted.discard(count)
                    yield count, frame.to_image()
                if count >= last:
                    return
        except av.FFmpegError as exc:
            raise MotFormatError(
                f"Decoding video {video} failed after frame {count} ({type(exc).__name__}: {exc}); the file is "
                f"damaged. Re-encode or re-download it."
            ) from exc
    raise MotFormatError(
        f"{video} has {count} frames, but gt.txt refers to frame(s) {sorted(wanted)[:5]} (up to {last}). Check that "
        f"gt/gt.txt belongs to this video (MOT frame numbers are 1-based: frame 1 is the video's first frame)."
    )
