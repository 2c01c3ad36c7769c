"""A compact copy of the real sets for a lent GPU machine: every image re-encoded at the input size, names kept.

``python -m sisnet.experiments pack [--data-root data] [--out data/packed]`` writes ``<out>/<set>/`` for the sources
and targets of :mod:`sisnet.experiments.real_data`, in the layouts the loaders read (CUHK03: ``labeled/`` only), each
image resized (bilinear) to 128x64 and stored as JPEG (quality 75) under its own file name, so the ids the loaders
read from the names are unchanged (PIL reads a file by its content, not its extension). Each set gets a
:data:`sisnet.data.real.NATIVE_HEIGHTS_FILE` with every image's height before packing, so the native-height bins
survive. CUHK03 + CUHK01 + the four targets come to about 38 MiB (quality 90: 56 MiB), under the 64 MiB a device run carries with the
repository (about 8 MiB) and the ImageNet weights file (9 MiB).
"""
from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from sisnet.data.real import NATIVE_HEIGHTS_FILE, PETA_LABELS

__all__ = ["PACKED_FOLDERS", "pack_real"]

#: what of each set travels: folders relative to ``<data_root>/<set>`` (copied with their layout)
PACKED_FOLDERS = {"cuhk03": ("labeled/train", "labeled/val"), "cuhk01": ("campus",), "viper": ("archive",),
                  "prid": ("archive",), "grid": ("archive",), "ilids": ("archive",)}


def pack_real(data_root: str | Path, out_root: str | Path, size_hw: tuple[int, int] = (128, 64),
              quality: int = 75) -> dict[str, int]:
    """Write the packed copy (see the module docstring); returns the bytes written per set."""
    written = {}
    for name, folders in PACKED_FOLDERS.items():
        src_root, dst_root = Path(data_root) / name, Path(out_root) / name
        heights, total = [], 0
        for folder in folders:
            src = src_root / folder
            if not src.is_dir():
                raise FileNotFoundError(f"{src} is missing: put {name} under {src_root} (README, 'Real datasets').")
            (dst_root / folder).mkdir(parents=True, exist_ok=True)
            for path in sorted(src.iterdir()):
                target = dst_root / folder / path.name
                if path.name == PETA_LABELS:
                    target.write_bytes(path.read_bytes())
                    continue
                with Image.open(path) as im:
                    heights.append(f"{folder}/{path.name},{im.height}")
                    small = im.convert("RGB").resize((size_hw[1], size_hw[0]), Image.BILINEAR)
                buf = io.BytesIO()
                small.save(buf, format="JPEG", quality=quality)
                target.write_bytes(buf.getvalue())
                total += len(buf.getvalue())
        (dst_root / NATIVE_HEIGHTS_FILE).write_text("path,height_px\n" + "\n".join(heights) + "\n", encoding="utf-8")
        written[name] = total
    return written
