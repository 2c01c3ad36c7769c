"""Writing results: tables as CSV + Markdown and figures as small PNGs, atomically, each stamped with what made it.

A *sink* is a tables/figures folder or any object with ``tables_dir``, ``figures_dir``, ``stamp`` (one line
naming commit, profile, dataset, seeds) and ``written`` (a list the paths are appended to), such as the
notebook context of :mod:`sisnet.report.context`.
"""
from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from sisnet.report.registry import Table, declared
from sisnet.utils import atomic_write

if TYPE_CHECKING:  # pragma: no cover
    import matplotlib.figure

__all__ = ["to_markdown", "save_table", "save_figure", "format_mean_std", "format_number", "FIG_DPI", "plt"]

FIG_DPI = 100
# Column-specific formats for Markdown tables (everything else: floats with two decimals).
_COLUMN_FORMATS = {"query_scale": "{:g}", "lr": "{:.2e}", "seed": "{:.0f}", "n_seeds": "{:.0f}", "epoch": "{:.0f}",
                   "n_evals": "{:.0f}", "n_images": "{:.0f}", "pid": "{:.0f}"}


def plt():
    """``matplotlib.pyplot``, with the non-interactive backend outside Jupyter (tests, scripts never open windows)."""
    import matplotlib

    if "inline" not in matplotlib.get_backend().lower() and os.environ.get("MPLBACKEND") is None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    return pyplot


def _folder(sink: Any, attr: str) -> Path:
    return Path(getattr(sink, attr)) if hasattr(sink, attr) else Path(sink)


def format_number(value: float) -> str:
    """The one rule for printing a float in tables: one decimal from 1 up (percentages, seconds), three
    significant digits below 1 (correlations, losses near 0, learning rates)."""
    v = float(value)
    if math.isnan(v):
        return "-"
    if v == 0 or abs(v) >= 1:
        return f"{v:.1f}"
    return f"{v:.3g}"


def _fmt_cell(value: Any, column: str | None = None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, (float, np.floating, int, np.integer)) and not isinstance(value, bool) and column in _COLUMN_FORMATS:
        return _COLUMN_FORMATS[column].format(value)
    if isinstance(value, (float, np.floating)):
        return format_number(value)
    return str(value).replace("|", "\\|").replace("\n", " ")



def to_markdown(df: pd.DataFrame, *, index: bool = True) -> str:
    """A GitHub-flavoured Markdown table of ``df`` (MultiIndex columns joined with " ").

    Hand-written because pandas' ``to_markdown`` needs the optional ``tabulate`` package, which
    is not worth a dependency for twenty lines. Floats follow :func:`format_number`; NaN prints as "-".
    """
    frame = df.copy()
    if isinstance(frame.columns, pd.MultiIndex):
        frame.columns = [" ".join(str(c) for c in col if str(c)) for col in frame.columns]
    headers = [str(c) for c in frame.columns]
    rows = [[_fmt_cell(v, c) for v, c in zip(row, headers)] for row in frame.itertuples(index=False, name=None)]
    if index:
        names = [n for n in (frame.index.names or []) if n is not None]
        idx_header = [str(n) for n in names] if names else [""]
        if isinstance(frame.index, pd.MultiIndex):
            idx_vals = [[_fmt_cell(v) for v in tup] for tup in frame.index]
            idx_header = [str(n) if n is not None else "" for n in frame.index.names]
        else:
            idx_vals = [[_fmt_cell(v)] for v in frame.index]
        headers = idx_header + headers
        rows = [iv + r for iv, r in zip(idx_vals, rows)]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"

def save_table(
    ctx: Any,
    name: "str | Table",
    data: pd.DataFrame,
    *,
    display: pd.DataFrame | None = None,
    title: str | None = None,
    notes: str | None = None,
) -> tuple[Path, Path]:
    """Write ``tables/<name>.csv`` (``data``, machine-readable) and ``tables/<name>.md``.

    ``name`` must be declared in :mod:`sisnet.report.registry` and ``data`` must have the declared columns
    (``ValueError`` otherwise). The Markdown file shows ``display`` when given (e.g. "mean ± std" strings), else
    ``data``, under ``title`` (default: the declared title), with optional notes. Both files are written atomically (temporary file, then rename).
    ``ctx`` is a sink (see the module docstring) or a tables folder. Returns ``(csv_path, md_path)``.
    """
    folder = _folder(ctx, "tables_dir")
    if not isinstance(name, Table) and (not name or "/" in name or name.startswith(".")):
        raise ValueError(f"table name {name!r} must be a plain file stem such as 'table2'.")
    try:
        table = declared(name)
    except KeyError as err:
        raise ValueError(err.args[0]) from None
    table.check(data)
    name, title = table.name, title or table.title
    csv_path, md_path = folder / f"{name}.csv", folder / f"{name}.md"
    csv_index = not isinstance(data.index, pd.RangeIndex)
    with atomic_write(csv_path, "w", encoding="utf-8", newline="") as fh:
        data.to_csv(fh, index=csv_index)
    shown = display if display is not None else data
    text = ""
    if title:
        text += f"# {title}\n\n"
    text += to_markdown(shown, index=not isinstance(shown.index, pd.RangeIndex))
    if notes:
        text += f"\n{notes.strip()}\n"
    if getattr(ctx, "stamp", None):
        text += f"\n_Written by {ctx.stamp}._\n"
    with atomic_write(md_path, "w", encoding="utf-8") as fh:
        fh.write(text)
    if hasattr(ctx, "written"):
        ctx.written += [csv_path, md_path]
    return csv_path, md_path

def _png_bytes(fig: "matplotlib.figure.Figure", stamp: str | None = None) -> bytes:
    """The figure as a compact PNG: rendered at 100 dpi, then reduced to a 256-colour palette.

    Figures with photographs (sample grids, CAM overlays, ranked lists) compress badly as 24-bit
    PNG (~1 MB each); the palette version is ~3x smaller and looks the same at this resolution.
    """
    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=FIG_DPI, bbox_inches="tight", facecolor="white")
    buf.seek(0)
    with Image.open(buf) as im:
        pal = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Software", "sisnet.report")
    if stamp:
        info.add_text("Source", stamp)  # which commit / profile / dataset made this figure
    out = io.BytesIO()
    pal.save(out, format="PNG", optimize=True, pnginfo=info)
    return out.getvalue()

def _in_ipython() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - ipykernel is a dependency
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ != "TerminalInteractiveShell"

def save_figure(
    ctx: Any, name: str, fig: "matplotlib.figure.Figure", *, show: bool = True
) -> Path:
    """Write ``figures/<name>.png`` atomically (100 dpi, 256-colour palette) and close ``fig``.

    In a notebook (``show=True``) the saved PNG itself is displayed, so the executed notebook embeds
    the same small image that is written to ``results/``. Returns the path.
    """
    folder = _folder(ctx, "figures_dir")
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"figure name {name!r} must be a plain file stem such as 'fig3_cam'.")
    if fig is None or not hasattr(fig, "savefig"):
        raise ValueError(f"save_figure({name!r}) needs a matplotlib Figure, got {type(fig).__name__}.")
    path = folder / f"{name}.png"
    data = _png_bytes(fig, getattr(ctx, "stamp", None))
    with atomic_write(path, "wb") as fh:
        fh.write(data)
    plt().close(fig)
    if show and _in_ipython():
        from IPython.display import Image, display

        display(Image(data=data, format="png"))
    if hasattr(ctx, "written"):
        ctx.written.append(path)
    return path

def format_mean_std(mean: float, std: float | None, n: int | None = None, decimals: int = 1) -> str:
    """``"71.3 ± 2.1"``; just ``"71.3"`` when there is one seed (``std`` NaN/None or ``n == 1``)."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    if std is None or (isinstance(std, float) and math.isnan(std)) or n == 1:
        return f"{mean:.{decimals}f}"
    return f"{mean:.{decimals}f} ± {std:.{decimals}f}"


def read_table(ctx: Any, name: "str | Table") -> pd.DataFrame | None:
    """``tables/<name>.csv`` of a sink (or a tables folder) as a DataFrame, or ``None`` when it was not written
    (e.g. a check that runs under its own ``python -m sisnet.experiments`` command and has not been run for these results)."""
    return declared(name).read(_folder(ctx, "tables_dir"))
