"""Features of every image in a folder, from a trained checkpoint or its ONNX export (the model on your own images).

CLI::

    python -m sisnet.extract --checkpoint data/runs/<run_id>/last.pt --images my_crops/ --out feats.safetensors \
        [--mode either|cascaded] [--batch-size 128] [--device auto] [--recursive]
    python -m sisnet.extract --onnx model.onnx --images my_crops/ --out feats.safetensors      # onnxruntime, CPU

The checkpoint carries its training config, so the input size, normalisation and mode definitions are the
ones the model was trained and evaluated with (:func:`sisnet.evaluation.extract_features` does the work). An
ONNX file written by :mod:`sisnet.export` carries its mode and input size; its images get the same
preprocessing (:func:`sisnet.data.transforms.decode_images`, then the evaluation normalisation) and the graph is
run with onnxruntime (:func:`extract_paths_onnx`); ``--mode``, when given, must be the file's.

Folder rules: every file with an image extension (:data:`IMAGE_EXTENSIONS`) is used, in sorted path order.
Other entries (``.DS_Store``, notes, sub-folders unless ``recursive``) are skipped with ONE warning that
lists them -- a user's folder is not a curated dataset, unlike the Market-1501 loader, which refuses such
entries. An image file that cannot be decoded raises an error naming the file (never skipped silently).

Features file (no pickle): ``.safetensors`` (default) holds the tensor ``features`` ``(N, D)`` float32 and, in
its metadata, a JSON record with the image ``paths`` (absolute), ``mode``, ``checkpoint`` (or ``onnx``),
``run_id``; ``.npz`` writes the array with ``numpy.savez`` plus ``<file>.json`` for the same record.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch

from sisnet.utils import atomic_write, atomic_write_json, select_device

if TYPE_CHECKING:  # pragma: no cover
    from sisnet.export import OnnxFeatureExtractor

__all__ = [
    "FeatureSet",
    "IMAGE_EXTENSIONS",
    "list_images",
    "extract_paths",
    "extract_paths_onnx",
    "extract_folder",
    "save_features",
    "load_features",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
FEATURES_KEY = "features"
META_KEY = "sisnet"


@dataclass
class FeatureSet:
    """Retrieval features of a set of images: ``features`` ``(N, D)`` float32 (L2-normalised), ``paths`` (N)."""

    features: torch.Tensor
    paths: list[str]
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.features.dim() != 2 or self.features.shape[0] != len(self.paths):
            raise ValueError(
                f"features must be (N, D) with N = len(paths) = {len(self.paths)}; got {tuple(self.features.shape)}."
            )

    def __len__(self) -> int:
        return len(self.paths)


def list_images(images_dir: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """Image files of ``images_dir`` in sorted order; warns once listing the entries that were skipped."""
    root = Path(images_dir).expanduser()
    if not root.is_dir():
        raise NotADirectoryError(
            f"--images {str(root)!r} is not a folder. Pass a folder of person images (.jpg/.png/...)."
        )
    entries = sorted(root.rglob("*") if recursive else root.iterdir())
    images, skipped = [], []
    for p in entries:
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."):
            images.append(p.absolute())
        elif not (recursive and p.is_dir()):
            skipped.append(str(p.relative_to(root)) + ("/" if p.is_dir() else ""))
    if skipped:
        shown = ", ".join(skipped[:10]) + (f", ... ({len(skipped) - 10} more)" if len(skipped) > 10 else "")
        warnings.warn(
            f"{root}: skipped {len(skipped)} entr{'y' if len(skipped) == 1 else 'ies'} that "
            f"{'is' if len(skipped) == 1 else 'are'} not image files ({'/'.join(IMAGE_EXTENSIONS)})"
            f"{'' if recursive else ' or are sub-folders (use --recursive to include them)'}: {shown}",
            UserWarning,
            stacklevel=2,
        )
    if not images:
        raise FileNotFoundError(
            f"No image files ({', '.join(IMAGE_EXTENSIONS)}) in {str(root)!r}"
            f"{'' if recursive else ' (sub-folders are not searched; pass recursive=True / --recursive)'}."
        )
    return images


def _checked_batch_size(batch_size: int | None) -> int | None:
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    return batch_size


def _eval_config(config: Any, batch_size: int | None) -> Any:
    changes: dict[str, Any] = {"cache_images": False}  # stream from disk: a user folder can be large
    if _checked_batch_size(batch_size) is not None:
        changes["eval_batch_size"] = int(batch_size)
    return dataclasses.replace(config, **changes)


def extract_paths(
    model: torch.nn.Module,
    config: Any,
    paths: Sequence[str | os.PathLike],
    mode: str = "either",
    *,
    batch_size: int | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """L2-normalised features ``(N, D)`` (``D = C`` for ``"either"``, ``2C`` for ``"cascaded"``) of image files,
    with the engine's evaluation transform for ``config`` (the checkpoint's training config)."""
    from sisnet.data import Record
    from sisnet.evaluation import extract_features

    records = [Record(str(p), -1, 0) for p in paths]  # pid / camid unused here
    feats, _, _ = extract_features(model, records, _eval_config(config, batch_size), mode=mode, progress=progress)
    return feats.float().cpu()


def extract_paths_onnx(
    onnx_model: str | os.PathLike | OnnxFeatureExtractor,
    paths: Sequence[str | os.PathLike],
    mode: str | None = None,
    *,
    batch_size: int | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """L2-normalised features ``(N, D)`` of image files from an ONNX file written by :mod:`sisnet.export`, run with
    onnxruntime. Preprocessing is the library's: decode and resize to the file's input size
    (:func:`~sisnet.data.transforms.decode_images`), normalise (:func:`sisnet.export.normalised_batch`).
    ``mode``, when given, must be the one the file was exported with."""
    from sisnet.data.transforms import decode_images
    from sisnet.export import OnnxFeatureExtractor, normalised_batch

    extractor = onnx_model if isinstance(onnx_model, OnnxFeatureExtractor) else OnnxFeatureExtractor(onnx_model)
    if mode is not None and mode != extractor.mode:
        raise ValueError(
            f"{extractor.path} computes {extractor.mode!r} features, not {mode!r}; export the checkpoint again with "
            f"`python -m sisnet.export --mode {mode}`, or leave --mode out."
        )
    batch = int(_checked_batch_size(batch_size) or 64)
    starts: Any = range(0, len(paths), batch)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="features (onnx)", leave=False, unit="batch")
    feats = [torch.from_numpy(extractor(normalised_batch(decode_images(paths[i : i + batch], extractor.input_size_hw))))
             for i in starts]  # fmt: skip
    return torch.cat(feats) if feats else torch.empty(0, 0)


def extract_folder(
    checkpoint: str | os.PathLike | None,
    images_dir: str | os.PathLike,
    mode: str | None = None,
    *,
    onnx: str | os.PathLike | None = None,
    batch_size: int | None = None,
    device: str = "auto",
    recursive: bool = False,
    progress: bool = True,
) -> tuple[torch.Tensor, list[str]]:
    """Features of every image in ``images_dir``: ``(feats (N, D) float32, absolute paths (N))``.

    ``checkpoint``: a file written by :func:`sisnet.engine.fit` (or its run folder); it carries its config. Or
    ``onnx``: a file written by :mod:`sisnet.export` (then ``checkpoint`` is ``None`` and ``device`` unused).
    ``mode``: ``"either"`` (full-size branch, D = C; the default for a checkpoint) or ``"cascaded"`` (full + small
    scale, D = 2C); an ONNX file computes the mode it was exported with.
    """
    if (checkpoint is None) == (onnx is None):
        raise ValueError("Pass a checkpoint (--checkpoint) or an ONNX file (--onnx), exactly one of them.")
    paths = list_images(images_dir, recursive=recursive)
    if onnx is not None:
        feats = extract_paths_onnx(onnx, paths, mode, batch_size=batch_size, progress=progress)
        return feats, [str(p) for p in paths]
    from sisnet.runs import load_model

    model, config = load_model(checkpoint, device=select_device(device))
    feats = extract_paths(model, config, paths, mode or "either", batch_size=batch_size, progress=progress)
    return feats, [str(p) for p in paths]


def extract_to_file(
    checkpoint: str | os.PathLike | None, images_dir: str | os.PathLike, out: str | os.PathLike,
    mode: str | None = None, *, onnx: str | os.PathLike | None = None, **options: Any,
) -> Path:
    """What ``python -m sisnet.extract`` does: :func:`extract_folder`, then :func:`save_features` to ``out``
    with the checkpoint (or ONNX file), mode and image folder recorded (``sisnet.search`` reads them back).
    ``options`` are :func:`extract_folder`'s keywords (``batch_size``, ``device``, ``recursive``, ``progress``)."""
    if Path(out).suffix.lower() not in (".safetensors", ".npz"):
        raise ValueError(f"--out {str(out)!r} must end in .safetensors or .npz.")
    feats, paths = extract_folder(checkpoint, images_dir, mode, onnx=onnx, **options)
    meta: dict[str, Any] = {"images_dir": str(Path(images_dir).absolute())}
    if onnx is not None:
        from sisnet.export import OnnxFeatureExtractor

        file_meta = OnnxFeatureExtractor(onnx).meta
        meta.update(mode=file_meta["mode"], onnx=str(Path(onnx).absolute()), run_id=file_meta.get("run_id", ""))
    else:
        meta.update(mode=mode or "either", checkpoint=str(Path(checkpoint).absolute()))
    return save_features(out, feats, paths, meta)


# ------------------------------------------------------------------------------------------ file I/O
def save_features(
    path: str | os.PathLike,
    features: torch.Tensor | np.ndarray,
    paths: Sequence[str | os.PathLike],
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write features + image paths atomically: ``.safetensors`` (one file) or ``.npz`` (+ ``.json``)."""
    path = Path(path)
    feats = torch.as_tensor(features).detach().float().cpu().contiguous()
    record = {**(meta or {}), "paths": [str(p) for p in paths], "shape": list(feats.shape)}
    FeatureSet(feats, record["paths"])  # validates shapes
    suffix = path.suffix.lower()
    if suffix == ".npz":
        with atomic_write(path, "wb") as fh:
            np.savez(fh, **{FEATURES_KEY: feats.numpy()})
        atomic_write_json(_npz_sidecar(path), record)
    elif suffix == ".safetensors":
        from safetensors.torch import save as st_save

        blob = st_save({FEATURES_KEY: feats}, metadata={META_KEY: json.dumps(record)})
        with atomic_write(path, "wb") as fh:
            fh.write(blob)
    else:
        raise ValueError(f"Features file {str(path)!r} must end in .safetensors or .npz.")
    return path


def _npz_sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def load_features(path: str | os.PathLike) -> FeatureSet:
    """Read a file written by :func:`save_features` (no pickle is ever loaded)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"Features file {str(path)!r} not found; create it with `python -m sisnet.extract --checkpoint CKPT "
            f"--images DIR --out {path}`."
        )
    try:
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as z:
                feats = torch.from_numpy(z[FEATURES_KEY].astype(np.float32))
            sidecar = _npz_sidecar(path)
            if not sidecar.is_file():
                raise FileNotFoundError(f"{sidecar} (the image list of {path.name}) is missing")
            record = json.loads(sidecar.read_text(encoding="utf-8"))
        else:
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as fh:
                feats = fh.get_tensor(FEATURES_KEY).float()
                record = json.loads((fh.metadata() or {})[META_KEY])
    except Exception as exc:  # noqa: BLE001 - re-raised with the file name and the fix
        raise ValueError(
            f"{str(path)!r} is not a sisnet features file ({type(exc).__name__}: {exc}). Re-create it with "
            f"`python -m sisnet.extract`."
        ) from exc
    paths = record.pop("paths")
    record.pop("shape", None)
    return FeatureSet(feats, list(paths), record)


# ----------------------------------------------------------------------------------------------- CLI
def _main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sisnet.extract", description=__doc__.split("\n\n")[0])
    source = ap.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="checkpoint (last.pt) or run folder written by sisnet.engine.fit")
    source.add_argument("--onnx", help="ONNX file written by python -m sisnet.export (run with onnxruntime)")
    ap.add_argument("--images", required=True, help="folder of images")
    ap.add_argument("--out", required=True, help="features file (.safetensors or .npz)")
    ap.add_argument("--mode", default=None, choices=("either", "cascaded"),
                    help="default: either for a checkpoint, the exported mode for an ONNX file")
    ap.add_argument("--batch-size", type=int, default=None, help="default: the checkpoint config's eval_batch_size")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--recursive", action="store_true", help="include images in sub-folders")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    try:
        extract_to_file(args.checkpoint, args.images, args.out, args.mode, onnx=args.onnx, batch_size=args.batch_size,
                        device=args.device, recursive=args.recursive, progress=True)
        fs = load_features(args.out)
    except (FileNotFoundError, NotADirectoryError, ValueError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}: {fs.features.shape[0]} images x {fs.features.shape[1]} dims ({fs.meta['mode']}"
          f"{', onnxruntime' if args.onnx else ''}) "
          f"in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
