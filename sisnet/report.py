"""Everything the notebooks do that is logic: histories -> tables, figures, and writing results.

The notebooks in ``notebooks/`` stay thin: each cell calls one function from here (or from
:mod:`sisnet.engine`, :mod:`sisnet.data`, :mod:`sisnet.paper`). This module is split in four parts:

1. **Set-up and writing** -- :func:`setup` resolves a notebook's parameters into a
   :class:`NotebookContext` (paths, seeds); :func:`save_table` / :func:`save_figure` write CSV +
   Markdown / PNG atomically into ``<results_dir>/<profile>/<dataset>/{tables,figures}/``.
2. **Histories -> tables** (pure pandas, unit-tested on hand-made histories): :func:`runs_frame`,
   :func:`summarize` (mean +- std over seeds), :func:`cascade_gap` (Table 3: cascaded minus
   either-scale, mean over the last five evaluations), :func:`table1_with_measured` (Table 1 with
   per-cell provenance), :func:`table3_side_by_side`.
3. **Runs and measurements** (need :mod:`sisnet.engine`): :func:`run_grid` trains (or loads from the
   runs cache) the Table 2 grid over seeds; :func:`measure_protocols` evaluates the standard and
   cross-scale protocols (and re-ranking); :func:`scale_robustness`; :func:`cam_consistency`.
4. **Figures** (seaborn / matplotlib): training curves, Table 2 bars, sample grid, scale histogram,
   the Fig. 3 CAM grid, scale-robustness curves, ranked lists.

Metrics in histories are fractions in [0, 1]; every table and figure here shows percent.
"""
from __future__ import annotations

import io
import math
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from sisnet import paper
from sisnet.utils import atomic_write, ensure_writable_dir

if TYPE_CHECKING:  # pragma: no cover
    import matplotlib.figure
    import torch

__all__ = [
    "NotebookContext",
    "setup",
    "default_seeds",
    "dataset_dir",
    "synthetic_size",
    "git_commit",
    "save_table",
    "save_figure",
    "to_markdown",
    "format_mean_std",
    "evals_frame",
    "epochs_frame",
    "last_eval",
    "GridRun",
    "runs_frame",
    "summarize",
    "init_comparison",
    "plot_mot_frame",
    "plot_search_results",
    "market_pid",
    "table2_wide",
    "table2_effects",
    "cascade_gap",
    "table3_measured",
    "table3_side_by_side",
    "table1_with_measured",
    "table1_wide_with_provenance",
    "PROTOCOL_STANDARD",
    "protocol_cross_scale",
    "PROTOCOL_RERANK",
    "QUERY_SCALES",
]

#: Query resolution factors of the scale-robustness study (notebook 07).
QUERY_SCALES: tuple[float, ...] = (1.0, 0.75, 0.5, 0.375, 0.25)
PROTOCOL_STANDARD = "standard"
PROTOCOL_RERANK = "standard + re-ranking"
_METRIC_LABELS = {"rank1": "R1", "mAP": "mAP", "rank5": "R5", "rank10": "R10", "mINP": "mINP"}
_FIG_DPI = 100


def protocol_cross_scale(query_scale: float) -> str:
    """Label of the cross-scale protocol: queries rescaled by ``query_scale``, full-resolution gallery."""
    return f"cross-scale (query x{query_scale:g})"


# =============================================================================================
# 1. Set-up and writing
# =============================================================================================
def _project_root(start: Path | None = None) -> Path | None:
    """The nearest folder at or above ``start`` holding this project's ``pyproject.toml`` and ``sisnet/``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "sisnet").is_dir():
            return folder
    return None


def default_seeds(profile: str) -> list[int]:
    """Seeds of the ablation for a profile: 3 for ``cpu`` (mean +- std), 1 for ``smoke`` and ``paper``."""
    return [0, 1, 2] if profile == "cpu" else [0]


def synthetic_size(profile: str) -> str:
    """Size of the generated synthetic set a profile uses: ``tiny`` for ``smoke``, else ``default``."""
    return "tiny" if profile == "smoke" else "default"


def dataset_dir(dataset: str, data_root: str | os.PathLike, profile: str) -> Path:
    """Folder of ``dataset`` under ``data_root`` (the folder that holds all datasets).

    ``synthetic`` lives at ``<data_root>/synthetic`` (default size) or ``<data_root>/synthetic-tiny``
    (the ``smoke`` profile), so a smoke run never overwrites the default data. The real datasets are
    looked up at ``<data_root>/<name>`` (the loader accepts the archive folder or its parent).
    """
    data_root = Path(data_root)
    if dataset == "synthetic":
        return data_root / ("synthetic-tiny" if synthetic_size(profile) == "tiny" else "synthetic")
    return data_root / dataset


@dataclass
class NotebookContext:
    """A notebook's resolved parameters.

    ``out_dir`` = ``<results_dir>/<profile>/<dataset>``; tables go to ``out_dir/tables``, figures to
    ``out_dir/figures``. ``runs_dir`` (``<data_root>/runs``) is the training-runs cache shared by all
    notebooks. Relative paths are relative to the project root (the notebook changes into it).
    """

    profile: str
    dataset: str
    data_root: Path
    results_dir: Path
    seed: int
    seeds: list[int] = field(default_factory=list)
    out_dir: Path = Path()
    tables_dir: Path = Path()
    figures_dir: Path = Path()
    runs_dir: Path = Path()
    dataset_dir: Path = Path()
    written: list[Path] = field(default_factory=list)
    commit: str | None = None

    @property
    def stamp(self) -> str:
        """One line naming what made an output: package version, commit, profile, dataset, seeds."""
        from sisnet import __version__

        seeds = ",".join(str(s) for s in (self.seeds or [self.seed]))
        return (f"sisnet {__version__}, commit {self.commit or 'unknown'}, profile {self.profile}, "
                f"dataset {self.dataset}, seed(s) {seeds}")

    def config(self, seed: int | None = None, **overrides: Any):
        """The :class:`sisnet.config.TrainConfig` of this profile/dataset (plus ``overrides``)."""
        from sisnet.config import get_config

        return get_config(
            self.profile,
            dataset=self.dataset,
            data_root=str(self.dataset_dir),
            runs_dir=str(self.runs_dir),
            seed=self.seed if seed is None else seed,
            **overrides,
        )

    def __repr__(self) -> str:
        return (f"NotebookContext(profile={self.profile!r}, dataset={self.dataset!r}, seed={self.seed}, "
                f"seeds={self.seeds}, dataset_dir='{self.dataset_dir}', runs_dir='{self.runs_dir}', "
                f"out_dir='{self.out_dir}')")

    @property
    def provenance(self) -> str:
        """E.g. ``"measured: synthetic, profile cpu, seeds 0,1,2"``."""
        seeds = ",".join(str(s) for s in (self.seeds or [self.seed]))
        return f"measured: {self.dataset}, profile {self.profile}, seed{'s' if len(self.seeds) > 1 else ''} {seeds}"


def setup(
    profile: str,
    dataset: str,
    data_root: str | os.PathLike = "data",
    results_dir: str | os.PathLike = "results",
    seed: int = 0,
    seeds: Sequence[int] | None = None,
    *,
    chdir: bool = True,
    num_threads: int | None = None,
) -> NotebookContext:
    """Validate a notebook's parameters and prepare its output folders.

    - ``profile`` must be a profile of :mod:`sisnet.config`; ``dataset`` one of
      :data:`sisnet.data.DATASET_NAMES` (``ValueError`` naming the valid ones otherwise).
    - With ``chdir=True`` the process changes into the project root (when it is found above the
      current folder, e.g. when JupyterLab starts the kernel in ``notebooks/``), so that relative
      paths such as ``data`` mean the same thing interactively and under papermill.
    - ``seeds=None`` means :func:`default_seeds` of the profile.
    - Also sets the seaborn theme and a modest figure resolution (executed notebooks stay small).
    - ``num_threads``: torch CPU threads; default: 1 for the ``smoke`` profile (its tensors are tiny, and
      on a busy 2-core machine one thread measured 3-10x faster than two, which wait on each other),
      torch's own default otherwise.
    """
    from sisnet.config import PROFILE_NAMES
    from sisnet.data import DATASET_NAMES

    if profile not in PROFILE_NAMES:
        raise ValueError(f"profile={profile!r} is not a profile; choose one of {list(PROFILE_NAMES)}.")
    if dataset not in DATASET_NAMES:
        raise ValueError(f"dataset={dataset!r} is not a dataset; choose one of {list(DATASET_NAMES)}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed={seed!r} must be an integer.")
    if chdir:
        root = _project_root()
        if root is not None and root != Path.cwd().resolve():
            os.chdir(root)
    if num_threads is None and profile == "smoke":
        num_threads = 1
    if num_threads is not None:
        import torch

        torch.set_num_threads(int(num_threads))
    seeds_list = default_seeds(profile) if seeds is None else [int(s) for s in seeds]
    if not seeds_list:
        raise ValueError("seeds is empty; give at least one seed (e.g. seeds=[0]) or seeds=None for the profile default.")
    data_root = Path(data_root)
    results_dir = Path(results_dir)
    out_dir = results_dir / profile / dataset
    ctx = NotebookContext(
        profile=profile,
        dataset=dataset,
        data_root=data_root,
        results_dir=results_dir,
        seed=int(seed),
        seeds=seeds_list,
        out_dir=out_dir,
        tables_dir=out_dir / "tables",
        figures_dir=out_dir / "figures",
        runs_dir=data_root / "runs",
        dataset_dir=dataset_dir(dataset, data_root, profile),
        commit=git_commit(),
    )
    ensure_writable_dir(ctx.tables_dir, "results folder")
    ensure_writable_dir(ctx.figures_dir, "results folder")
    _style()
    return ctx


def _style() -> None:
    import warnings

    import matplotlib

    with warnings.catch_warnings():
        # tqdm.auto warns once at import when ipywidgets is missing, then falls back to text bars (fine here).
        warnings.simplefilter("ignore")
        import tqdm.auto  # noqa: F401

    matplotlib.rcParams["figure.dpi"] = _FIG_DPI
    matplotlib.rcParams["savefig.dpi"] = _FIG_DPI
    try:
        import seaborn as sns

        sns.set_theme(style="whitegrid", context="notebook")
    except ImportError:  # pragma: no cover - seaborn is a dependency
        pass


def git_commit(path: str | os.PathLike | None = None) -> str | None:
    """The git commit of the project (``<sha>`` or ``<sha>-dirty``), or ``None`` outside a git checkout.

    ``-dirty`` means tracked files differ from the commit, leaving out ``results/``: that is where the
    notebooks write, so a re-run that replaces committed results would otherwise stamp itself dirty.
    """
    cwd = Path(path) if path is not None else (_project_root() or Path.cwd())
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results"],
            cwd=cwd, capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}-dirty" if dirty else sha


# Column-specific formats for Markdown tables (everything else: floats with two decimals).
_COLUMN_FORMATS = {"query_scale": "{:g}", "lr": "{:.2e}", "seed": "{:.0f}", "n_seeds": "{:.0f}", "epoch": "{:.0f}",
                   "n_evals": "{:.0f}", "n_images": "{:.0f}", "pid": "{:.0f}"}


def _fmt_cell(value: Any, column: str | None = None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, (float, np.floating, int, np.integer)) and not isinstance(value, bool) and column in _COLUMN_FORMATS:
        return _COLUMN_FORMATS[column].format(value)
    if isinstance(value, (float, np.floating)):
        return f"{value:.2f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def to_markdown(df: pd.DataFrame, *, index: bool = True) -> str:
    """A GitHub-flavoured Markdown table of ``df`` (MultiIndex columns joined with " ").

    Hand-written because pandas' ``to_markdown`` needs the optional ``tabulate`` package, which
    is not worth a dependency for twenty lines. Floats get two decimals; NaN prints as "-".
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
    ctx: NotebookContext | os.PathLike | str,
    name: str,
    data: pd.DataFrame,
    *,
    display: pd.DataFrame | None = None,
    title: str | None = None,
    notes: str | None = None,
) -> tuple[Path, Path]:
    """Write ``tables/<name>.csv`` (``data``, machine-readable) and ``tables/<name>.md``.

    The Markdown file shows ``display`` when given (e.g. "mean ± std" strings), else ``data``, with
    an optional title and notes. Both files are written atomically (temporary file, then rename).
    ``ctx`` is a :class:`NotebookContext` or a tables folder. Returns ``(csv_path, md_path)``.
    """
    folder = ctx.tables_dir if isinstance(ctx, NotebookContext) else Path(ctx)
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"table name {name!r} must be a plain file stem such as 'table2'.")
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
    if isinstance(ctx, NotebookContext):
        text += f"\n_Written by {ctx.stamp}._\n"
    with atomic_write(md_path, "w", encoding="utf-8") as fh:
        fh.write(text)
    if isinstance(ctx, NotebookContext):
        ctx.written += [csv_path, md_path]
    return csv_path, md_path


def _png_bytes(fig: "matplotlib.figure.Figure", stamp: str | None = None) -> bytes:
    """The figure as a compact PNG: rendered at 100 dpi, then reduced to a 256-colour palette.

    Figures with photographs (sample grids, CAM overlays, ranked lists) compress badly as 24-bit
    PNG (~1 MB each); the palette version is ~3x smaller and looks the same at this resolution.
    """
    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_FIG_DPI, bbox_inches="tight", facecolor="white")
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
    ctx: NotebookContext | os.PathLike | str, name: str, fig: "matplotlib.figure.Figure", *, show: bool = True
) -> Path:
    """Write ``figures/<name>.png`` atomically (100 dpi, 256-colour palette) and close ``fig``.

    In a notebook (``show=True``) the saved PNG itself is displayed, so the executed notebook embeds
    the same small image that is written to ``results/``. Returns the path.
    """
    folder = ctx.figures_dir if isinstance(ctx, NotebookContext) else Path(ctx)
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"figure name {name!r} must be a plain file stem such as 'fig3_cam'.")
    if fig is None or not hasattr(fig, "savefig"):
        raise ValueError(f"save_figure({name!r}) needs a matplotlib Figure, got {type(fig).__name__}.")
    path = folder / f"{name}.png"
    data = _png_bytes(fig, ctx.stamp if isinstance(ctx, NotebookContext) else None)
    with atomic_write(path, "wb") as fh:
        fh.write(data)
    _plt().close(fig)
    if show and _in_ipython():
        from IPython.display import Image, display

        display(Image(data=data, format="png"))
    if isinstance(ctx, NotebookContext):
        ctx.written.append(path)
    return path


def format_mean_std(mean: float, std: float | None, n: int | None = None, decimals: int = 1) -> str:
    """``"71.3 ± 2.1"``; just ``"71.3"`` when there is one seed (``std`` NaN/None or ``n == 1``)."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    if std is None or (isinstance(std, float) and math.isnan(std)) or n == 1:
        return f"{mean:.{decimals}f}"
    return f"{mean:.{decimals}f} ± {std:.{decimals}f}"


# =============================================================================================
# 2. Histories -> tables (pure pandas)
# =============================================================================================
def _history_dict(history: Mapping[str, Any]) -> Mapping[str, Any]:
    if not isinstance(history, Mapping) or "evals" not in history:
        raise ValueError(
            "Expected a training history (a dict with 'epochs' and 'evals', as returned by sisnet.engine.fit "
            f"or sisnet.engine.load_history); got {type(history).__name__}."
        )
    return history


def evals_frame(history: Mapping[str, Any], *, percent: bool = True) -> pd.DataFrame:
    """The history's evaluations as a DataFrame: one row per (epoch, mode), metrics in percent.

    Columns: ``epoch``, ``mode`` and every metric present (``rank1``, ``rank5``, ``rank10``, ``mAP``,
    ``mINP``), sorted by epoch then mode.
    """
    evals = list(_history_dict(history)["evals"])
    if not evals:
        return pd.DataFrame(columns=["epoch", "mode", "rank1", "mAP"])
    df = pd.DataFrame(evals)
    metrics = [c for c in ("rank1", "rank5", "rank10", "mAP", "mINP") if c in df.columns]
    if percent:
        df[metrics] = df[metrics].astype(float) * 100.0
    return df.sort_values(["epoch", "mode"], kind="stable").reset_index(drop=True)


def epochs_frame(history: Mapping[str, Any]) -> pd.DataFrame:
    """The history's per-epoch records (losses, lr, seconds) as a DataFrame."""
    return pd.DataFrame(list(_history_dict(history).get("epochs", [])))


def last_eval(history: Mapping[str, Any], mode: str = "either", *, percent: bool = True) -> dict[str, float]:
    """The last evaluation of ``mode`` (``either`` | ``cascaded``) in the history, metrics in percent.

    Raises ``ValueError`` when the history has no evaluation of that mode (e.g. a run trained with
    periodic evaluation switched off), naming the modes it does have.
    """
    df = evals_frame(history, percent=percent)
    sub = df[df["mode"] == mode] if len(df) else df
    if not len(sub):
        have = sorted(df["mode"].unique()) if len(df) else []
        raise ValueError(
            f"History {history.get('run_id', '?')} has no evaluation in mode {mode!r} (it has {have}). "
            "Train with evaluation enabled (eval_last >= 1) or evaluate the checkpoint with sisnet.engine.evaluate."
        )
    row = sub.iloc[-1]
    return {k: float(row[k]) for k in sub.columns if k not in ("mode",)}


@dataclass
class GridRun:
    """One trained configuration of the Table 2 grid for one seed."""

    method: str  # "Baseline" | "SiSNet" | "SiSNet+DRC"
    loss: str  # "S." | "S.+T."
    seed: int
    history: dict
    run_dir: Path | None = None
    config: Any = None

    @property
    def run_id(self) -> str:
        return str(self.history.get("run_id", self.run_dir.name if self.run_dir else "?"))


def runs_frame(runs: Iterable[GridRun], *, mode: str = "either") -> pd.DataFrame:
    """Standard-protocol results of each run (its last evaluation in ``mode``), one row per run.

    Columns: ``loss``, ``method``, ``seed``, ``protocol`` (= :data:`PROTOCOL_STANDARD`), ``mode``,
    ``rank1``, ``rank5``, ``rank10``, ``mAP``, ``mINP`` (percent, those present), ``epoch``, ``run_id``.
    """
    rows = []
    for run in runs:
        ev = last_eval(run.history, mode)
        rows.append(
            {"loss": run.loss, "method": run.method, "seed": run.seed, "protocol": PROTOCOL_STANDARD, "mode": mode,
             **{k: v for k, v in ev.items() if k != "epoch"}, "epoch": int(ev["epoch"]), "run_id": run.run_id}
        )
    return pd.DataFrame(rows)


def summarize(
    df: pd.DataFrame,
    by: Sequence[str] = ("loss", "method", "protocol"),
    metrics: Sequence[str] = ("rank1", "mAP"),
) -> pd.DataFrame:
    """Mean and sample standard deviation (ddof=1) over seeds.

    ``df`` has one row per (configuration, seed), e.g. from :func:`runs_frame`. Returns one row per
    group with columns ``<by>...``, ``<metric>_mean``, ``<metric>_std`` (NaN for a single seed) and
    ``n_seeds``; groups keep their order of first appearance.
    """
    missing = [c for c in (*by, *metrics) if c not in df.columns]
    if missing:
        raise ValueError(f"summarize: columns {missing} are missing; the frame has {list(df.columns)}.")
    g = df.groupby(list(by), sort=False)
    out = g[list(metrics)].agg(["mean", "std"])
    out.columns = [f"{m}_{stat}" for m, stat in out.columns]
    out["n_seeds"] = g.size()
    return out.reset_index()


def _order(df: pd.DataFrame) -> pd.DataFrame:
    """Sort rows in the paper's order: loss S. before S.+T., Baseline < SiSNet < SiSNet+DRC."""
    keys = {}
    if "loss" in df.columns:
        keys["loss"] = {v: i for i, v in enumerate(paper.LOSS_TYPES)}
    if "method" in df.columns:
        keys["method"] = {v: i for i, v in enumerate(paper.METHODS)}
    if not keys:
        return df
    cols = list(keys)
    return df.sort_values(cols, key=lambda s: s.map(keys[s.name]).fillna(99), kind="stable").reset_index(drop=True)


def table2_wide(summary: pd.DataFrame, metrics: Sequence[str] = ("rank1", "mAP"), decimals: int = 1) -> pd.DataFrame:
    """Table 2 layout of a :func:`summarize` result: index ``(loss, method)``, columns
    ``(protocol, R1|mAP)``, cells ``"mean ± std"`` strings."""
    summary = _order(summary)
    protocols = list(dict.fromkeys(summary["protocol"]))
    cells = {}
    for protocol in protocols:
        sub = summary[summary["protocol"] == protocol].set_index(["loss", "method"])
        for m in metrics:
            cells[(protocol, _METRIC_LABELS.get(m, m))] = [
                format_mean_std(r[f"{m}_mean"], r[f"{m}_std"], int(r["n_seeds"]), decimals) for _, r in sub.iterrows()
            ]
            index = sub.index
    out = pd.DataFrame(cells, index=index)
    out.columns = pd.MultiIndex.from_tuples(out.columns, names=["protocol", "metric"])
    return out


def table2_effects(summary: pd.DataFrame, protocol: str = PROTOCOL_STANDARD) -> pd.DataFrame:
    """Gain of SiSNet and SiSNet+DRC over the Baseline (points), measured here vs in the paper.

    One row per (loss, method != Baseline); columns ``measured_rank1``, ``measured_mAP`` (differences
    of seed means) and ``paper_<dataset>_rank1`` / ``paper_<dataset>_mAP`` for the paper's three
    datasets. Lets a reader compare the *direction and size* of each effect even on data the paper
    did not use.
    """
    sub = summary[summary["protocol"] == protocol].set_index(["loss", "method"])
    t2 = paper.table2()
    rows = []
    for loss in paper.LOSS_TYPES:
        for method in paper.METHODS[1:]:
            if (loss, method) not in sub.index or (loss, "Baseline") not in sub.index:
                continue
            row = {"loss": loss, "method": method}
            for m in ("rank1", "mAP"):
                row[f"measured_{m}"] = sub.loc[(loss, method), f"{m}_mean"] - sub.loc[(loss, "Baseline"), f"{m}_mean"]
            for d in paper.PAPER_DATASETS:
                for m in ("rank1", "mAP"):
                    sel = t2[(t2["loss"] == loss) & (t2["dataset"] == d) & (t2["metric"] == m)].set_index("method")["value"]
                    row[f"paper_{d}_{m}"] = round(float(sel[method] - sel["Baseline"]), 2)
            rows.append(row)
    return pd.DataFrame(rows)


def cascade_gap(history: Mapping[str, Any], last_n: int = 5) -> dict[str, Any]:
    """Table 3 for one run: cascaded minus either-scale, mean over the last ``last_n`` evaluations.

    Uses the evaluation epochs that have both modes; if the run has fewer than ``last_n`` of them,
    all are used and ``n_evals`` says how many. Returns ``{"rank1_gap", "mAP_gap"}`` in percentage
    points (positive: cascading both branches' features scores higher), plus ``n_evals`` and
    ``epochs``. Raises ``ValueError`` when no epoch has both modes.
    """
    if last_n < 1:
        raise ValueError(f"last_n={last_n} must be >= 1 (the paper uses the last five evaluations).")
    df = evals_frame(history)
    if not len(df):
        raise ValueError(f"History {history.get('run_id', '?')} has no evaluations; Table 3 needs both modes.")
    wide = df.pivot_table(index="epoch", columns="mode", values=["rank1", "mAP"], aggfunc="last")
    needed = [(m, mode) for m in ("rank1", "mAP") for mode in ("either", "cascaded")]
    if not all(c in wide.columns for c in needed):
        raise ValueError(
            f"History {history.get('run_id', '?')} lacks 'either' or 'cascaded' evaluations (modes: "
            f"{sorted(df['mode'].unique())}); evaluate with modes=('either', 'cascaded') for Table 3."
        )
    wide = wide[needed].dropna().sort_index().tail(last_n)
    if not len(wide):
        raise ValueError(f"History {history.get('run_id', '?')} has no epoch evaluated in both modes.")
    out = {f"{m}_gap": float((wide[(m, "cascaded")] - wide[(m, "either")]).mean()) for m in ("rank1", "mAP")}
    out["n_evals"] = int(len(wide))
    out["epochs"] = [int(e) for e in wide.index]
    return out


def table3_measured(runs: Iterable[GridRun], last_n: int = 5) -> pd.DataFrame:
    """Per-run Table 3 gaps: columns ``loss``, ``method``, ``seed``, ``rank1_gap``, ``mAP_gap``, ``n_evals``, ``run_id``."""
    rows = []
    for run in runs:
        gap = cascade_gap(run.history, last_n)
        rows.append({"loss": run.loss, "method": run.method, "seed": run.seed, "rank1_gap": gap["rank1_gap"],
                     "mAP_gap": gap["mAP_gap"], "n_evals": gap["n_evals"], "run_id": run.run_id})
    return pd.DataFrame(rows)


def table3_side_by_side(per_run: pd.DataFrame, dataset: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Measured gaps (mean ± std over seeds) beside the paper's Table 3.

    Returns ``(data, display)``: ``data`` has one row per (loss, method) with ``rank1_gap_mean``,
    ``rank1_gap_std``, ``mAP_gap_mean``, ``mAP_gap_std``, ``n_seeds``, ``n_evals`` and the paper's
    ``paper_<dataset>_rank1`` / ``paper_<dataset>_mAP`` columns (only ``dataset``'s when it is one of
    the paper's datasets, else all three); ``display`` is the same with "mean ± std" strings.
    """
    s = summarize(per_run, by=("loss", "method"), metrics=("rank1_gap", "mAP_gap"))
    s["n_evals"] = per_run.groupby(["loss", "method"], sort=False)["n_evals"].min().values
    s = _order(s)
    t3 = paper.table3()
    datasets = [dataset] if dataset in paper.PAPER_DATASETS else list(paper.PAPER_DATASETS)
    for d in datasets:
        for m in ("rank1", "mAP"):
            lut = t3[(t3["dataset"] == d) & (t3["metric"] == m)].set_index(["loss", "method"])["gap"]
            s[f"paper_{d}_{m}"] = [float(lut.get((l, me), np.nan)) for l, me in zip(s["loss"], s["method"])]
    display = pd.DataFrame(index=pd.MultiIndex.from_frame(s[["loss", "method"]]))
    label = paper.DATASET_LABELS.get(dataset, dataset)
    for m in ("rank1", "mAP"):
        display[(f"measured ({label})", _METRIC_LABELS[m])] = [
            format_mean_std(a, b, n, 2) for a, b, n in zip(s[f"{m}_gap_mean"], s[f"{m}_gap_std"], s["n_seeds"])
        ]
    for d in datasets:
        for m in ("rank1", "mAP"):
            display[(f"paper ({paper.DATASET_LABELS[d]})", _METRIC_LABELS[m])] = [f"{v:.2f}" for v in s[f"paper_{d}_{m}"]]
    display.columns = pd.MultiIndex.from_tuples(display.columns, names=["source", "metric"])
    return s, display


def table1_with_measured(
    summary: pd.DataFrame,
    *,
    dataset: str,
    profile: str,
    seeds: Sequence[int],
    backbone: str,
    methods: Sequence[str] = ("Baseline", "SiSNet+DRC"),
    loss: str = "S.+T.",
    protocol: str = PROTOCOL_STANDARD,
    commit: str | None = None,
) -> pd.DataFrame:
    """Table 1 (tidy) with this run's measured rows appended; every cell carries its provenance.

    ``summary`` is a :func:`summarize` result of the Table 2 grid. The measured rows are the
    ``methods`` trained with ``loss`` (the paper's "Ours" is SiSNet+DRC with S.+T.), evaluated with
    ``protocol``; their values are seed means (``std`` and ``n_seeds`` alongside).

    Columns: ``method``, ``publication``, ``backbone``, ``dataset``, ``metric``, ``value``, ``std``,
    ``n_seeds``, ``provenance`` (``published`` | ``measured``), ``source`` (``"paper, Table 1"`` or
    ``"measured: <dataset>, profile <p>, seeds <s>[, commit <c>]"``).
    """
    pub = paper.table1()
    pub = pub.assign(std=np.nan, n_seeds=np.nan, provenance="published", source="paper, Table 1")
    pub = pub.drop(columns=["group"])
    seeds_txt = ",".join(str(s) for s in seeds)
    source = f"measured: {dataset}, profile {profile}, seed{'s' if len(seeds) > 1 else ''} {seeds_txt}"
    if commit:
        source += f", commit {commit[:12]}"
    sub = summary[(summary["protocol"] == protocol) & (summary["loss"] == loss)].set_index("method")
    rows = []
    for method in methods:
        if method not in sub.index:
            raise ValueError(
                f"table1_with_measured: no measured {method!r} with loss {loss!r} and protocol {protocol!r} in the "
                f"summary (it has {sorted(set(zip(summary['loss'], summary['method'])))}); run the Table 2 grid first."
            )
        r = sub.loc[method]
        for m in paper.METRICS:
            rows.append(
                {"method": f"{method} ({loss}, this run)", "publication": f"measured ({profile})", "backbone": backbone,
                 "dataset": dataset, "metric": m, "value": float(r[f"{m}_mean"]), "std": float(r[f"{m}_std"]),
                 "n_seeds": int(r["n_seeds"]), "provenance": "measured", "source": source}
            )
    return pd.concat([pub, pd.DataFrame(rows)], ignore_index=True)


def table1_wide_with_provenance(long: pd.DataFrame) -> pd.DataFrame:
    """The paper's Table 1 layout of a :func:`table1_with_measured` result, for display.

    Index ``(method, publication, backbone)``; columns ``(dataset label, R1|mAP)`` for the paper's
    datasets plus the measured dataset if different; each measured cell reads ``"mean ± std †"``
    (``†`` = measured here) and published cells the printed number; a ``provenance`` column names
    each row's source.
    """
    datasets = list(dict.fromkeys([*paper.PAPER_DATASETS, *long["dataset"].unique()]))
    rows = []
    for (method, pub, backbone), grp in long.groupby(["method", "publication", "backbone"], sort=False):
        row = {"method": method, "publication": pub, "backbone": backbone}
        for d in datasets:
            for m in paper.METRICS:
                hit = grp[(grp["dataset"] == d) & (grp["metric"] == m)]
                col = (paper.DATASET_LABELS.get(d, d), _METRIC_LABELS[m])
                if not len(hit) or pd.isna(hit["value"].iloc[0]):
                    row[col] = "-"
                elif hit["provenance"].iloc[0] == "measured":
                    h = hit.iloc[0]
                    row[col] = format_mean_std(h["value"], h["std"], int(h["n_seeds"])) + " †"
                else:
                    row[col] = f"{hit['value'].iloc[0]:.1f}"
        row[("", "provenance")] = grp["source"].iloc[0]
        rows.append(row)
    out = pd.DataFrame(rows).set_index(["method", "publication", "backbone"])
    out.columns = pd.MultiIndex.from_tuples(out.columns, names=["dataset", "metric"])
    return out


# =============================================================================================
# 3. Runs and measurements (sisnet.engine)
# =============================================================================================
_DATASETS: dict[tuple[str, str], Any] = {}


def load(ctx: NotebookContext):
    """Load the notebook's dataset (memoised per process). Says how to get it when it is missing."""
    from sisnet.data import load_dataset

    key = (ctx.dataset, str(Path(ctx.dataset_dir).resolve()))
    if key not in _DATASETS:
        try:
            _DATASETS[key] = load_dataset(ctx.dataset, ctx.dataset_dir)
        except FileNotFoundError as exc:
            if ctx.dataset == "synthetic":
                raise FileNotFoundError(
                    f"No synthetic dataset at {str(ctx.dataset_dir)!r}. Run notebook 01_data first "
                    f"(or sisnet.report.prepare_dataset), or `python -m sisnet.reproduce --profile {ctx.profile}`."
                ) from exc
            raise
    return _DATASETS[key]


def prepare_dataset(ctx: NotebookContext, *, data_seed: int = 0):
    """Generate the synthetic set when needed (idempotent), then load the dataset.

    For ``synthetic`` the size follows the profile (:func:`synthetic_size`) and the data seed is
    fixed (``data_seed``, independent of the training seed) so every profile run sees the same data.
    Real datasets are only located and checked (the loader's error says where to put them).
    """
    if ctx.dataset == "synthetic":
        from sisnet.data.synthetic import generate

        generate(ctx.dataset_dir, size=synthetic_size(ctx.profile), seed=data_seed)
        _DATASETS.pop((ctx.dataset, str(Path(ctx.dataset_dir).resolve())), None)
    return load(ctx)


def _grid_entry(method: str, loss: str) -> dict[str, Any]:
    from sisnet.config import TABLE2_GRID

    for entry in TABLE2_GRID:
        if entry["name"] == method and entry["loss"] == loss:
            return entry
    raise ValueError(
        f"No Table 2 configuration {method!r} with loss {loss!r}; methods: {list(paper.METHODS)}, "
        f"losses: {list(paper.LOSS_TYPES)}."
    )


def grid_config(ctx: NotebookContext, method: str, loss: str, seed: int | None = None, **overrides: Any):
    """The :class:`~sisnet.config.TrainConfig` of one Table 2 cell (profile + method/loss switches)."""
    return ctx.config(seed, **{**_grid_entry(method, loss)["overrides"], **overrides})


def config_frame(config: Any) -> pd.DataFrame:
    """A config's fields as a one-column table (index = parameter), for display in a notebook."""
    d = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    frame = pd.DataFrame({"value": [str(v) for v in d.values()]}, index=pd.Index(list(d), name="parameter"))
    return frame


def _must_retrain(run_dir: Path, force: bool | float | int | None) -> bool:
    """``force``: False -> use the cache; True -> retrain; a UNIX time -> retrain runs whose history is older.

    The UNIX-time form is what ``sisnet.reproduce --force`` passes, so a run retrained by one notebook
    of the batch is not retrained again by the next one.
    """
    if force is None or force is False:
        return False
    if force is True:
        return True
    if isinstance(force, (int, float)):
        history = run_dir / "history.json"
        return not history.is_file() or history.stat().st_mtime < float(force)
    raise ValueError(f"force={force!r} must be True, False or a UNIX time (seconds).")


def train(
    ctx: NotebookContext,
    method: str,
    loss: str,
    seed: int | None = None,
    *,
    force: bool | float = False,
    progress: bool = True,
    **overrides: Any,
) -> GridRun:
    """Train one Table 2 configuration with :func:`sisnet.engine.fit`, or load it from the runs cache.

    The run lives in ``<data_root>/runs/<run_id>/``; ``force`` retrains it (see :func:`_must_retrain`).
    ``overrides`` change config fields of the cell (e.g. ``pretrained=False``); they are part of the run id.
    """
    from sisnet.engine import fit

    seed = ctx.seed if seed is None else int(seed)
    config = grid_config(ctx, method, loss, seed, **overrides)
    run_dir = Path(config.runs_dir) / config.run_id()
    history = fit(config, run_dir, resume=not _must_retrain(run_dir, force), progress=progress, dataset=load(ctx))
    return GridRun(method=method, loss=loss, seed=seed, history=dict(history), run_dir=run_dir, config=config.to_dict())


def run_grid(
    ctx: NotebookContext,
    *,
    seeds: Sequence[int] | None = None,
    force: bool | float = False,
    progress: bool = True,
    log=print,
) -> list[GridRun]:
    """The Table 2 grid (3 methods x 2 losses) x ``seeds`` (default ``ctx.seeds``), trained or cached."""
    import time

    from sisnet.config import TABLE2_GRID

    seeds = list(ctx.seeds if seeds is None else seeds)
    runs = []
    total = len(TABLE2_GRID) * len(seeds)
    for seed in seeds:
        for entry in TABLE2_GRID:
            t0 = time.perf_counter()
            run = train(ctx, entry["name"], entry["loss"], seed, force=force, progress=progress)
            runs.append(run)
            if log:
                took = time.perf_counter() - t0
                log(f"[{len(runs)}/{total}] {entry['loss']:5s} {entry['name']:10s} seed {seed}: run {run.run_id} "
                    f"({'trained' if took > 1.0 else 'cached'}, {took:.1f} s; training wall "
                    f"{run.history.get('wall_seconds', float('nan')):.1f} s)")
    return runs


def init_comparison(
    ctx: NotebookContext,
    method: str = "Baseline",
    loss: str = "S.+T.",
    *,
    seeds: Sequence[int] | None = None,
    force: bool | float = False,
    progress: bool = False,
    log=print,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The profile's initial weights (e.g. ImageNet via ``pretrained="auto"``) against random initialisation.

    Trains (or loads from the runs cache) the Table 2 cell ``method``/``loss`` for each seed twice: as the
    profile configures it -- the same run as Table 2's, so it is shared with notebook 03 -- and with
    ``pretrained=False``. Returns ``(per_run, summary)``: ``per_run`` has one row per (init, seed) with
    the weights the run actually started from (``weights`` = the history's source, ``sha256`` shortened) and
    the last standard-protocol evaluation (percent); ``summary`` has mean ± std per init and, in the row
    ``difference``, the profile's init minus random (means). When the profile already starts from random
    weights the two arms are the same run, and the difference is 0 by construction.
    """
    seeds = list(ctx.seeds if seeds is None else seeds)
    profile_init = ctx.config().pretrained
    arms = [(f"profile ({profile_init})", {}), ("random (pretrained=False)", {"pretrained": False})]
    rows = []
    for label, overrides in arms:
        for seed in seeds:
            run = train(ctx, method, loss, seed, force=force, progress=progress, **overrides)
            weights = dict(run.history.get("weights") or {})
            ev = last_eval(run.history, "either")
            rows.append({"init": label, "seed": seed, "weights": weights.get("source", "?"),
                         "sha256": (weights.get("sha256") or "")[:12], "rank1": ev["rank1"], "mAP": ev["mAP"],
                         "mINP": ev.get("mINP", float("nan")), "epoch": int(ev["epoch"]),
                         "wall_seconds": float(run.history.get("wall_seconds", float("nan"))), "run_id": run.run_id})
            if log:
                log(f"{label:28s} seed {seed}: rank-1 {ev['rank1']:.1f} %, mAP {ev['mAP']:.1f} % "
                    f"(weights: {weights.get('source', '?')}, run {run.run_id})")
    per_run = pd.DataFrame(rows)
    summary = summarize(per_run, by=("init",), metrics=("rank1", "mAP"))
    diff = {"init": "difference (profile - random)", "n_seeds": len(seeds)}
    for m in ("rank1", "mAP"):
        diff[f"{m}_mean"] = float(summary[f"{m}_mean"].iloc[0] - summary[f"{m}_mean"].iloc[1])
        diff[f"{m}_std"] = float("nan")
    summary = pd.concat([summary, pd.DataFrame([diff])], ignore_index=True)
    return per_run, summary


def _percent(metrics: Mapping[str, float]) -> dict[str, float]:
    return {k: float(metrics[k]) * 100.0 for k in ("rank1", "rank5", "rank10", "mAP", "mINP") if k in metrics}


def _rank_metrics(distmat: np.ndarray, q_pids, g_pids, q_camids, g_camids) -> dict[str, float]:
    """rank-1/5/10, mAP, mINP (fractions) of a distance matrix (Q, G) with :func:`sisnet.metrics.evaluate_rank`."""
    from sisnet.metrics import evaluate_rank

    res = evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50)
    cmc = np.asarray(res["cmc"])
    out = {f"rank{k}": float(cmc[min(k, len(cmc)) - 1]) if len(cmc) else float("nan") for k in (1, 5, 10)}
    out.update(mAP=float(res["mAP"]), mINP=float(res["mINP"]),
               num_valid_queries=int(res.get("num_valid_queries", len(q_pids))))
    return out


def evaluate_query_scales(
    model: Any,
    ds,
    config: Any,
    query_scales: Sequence[float],
    *,
    rerank: bool = False,
    image_cache: dict | None = None,
) -> dict[float, dict[str, float]]:
    """Either-scale retrieval metrics (fractions) for several query resolution factors.

    The same protocol as :func:`sisnet.engine.evaluate` with ``modes=("either",)`` and
    ``query_scale=s`` (queries degraded, gallery at full resolution; ``config.metric`` distances or
    k-reciprocal re-ranking), but the gallery features are extracted once for all factors.
    ``image_cache`` keeps the decoded query/gallery images between calls (same input size).
    """
    from sisnet.data.transforms import decode_images
    from sisnet.engine import extract_features
    from sisnet.metrics import compute_distance

    cache = image_cache if image_cache is not None else {}
    size = (config.img_height, config.img_width)
    for split in ("query", "gallery"):
        if split not in cache:
            cache[split] = decode_images([r.path for r in getattr(ds, split)], size)
    gf, g_pids, g_camids = extract_features(model, ds.gallery, config, "either", images=cache["gallery"])
    out = {}
    for s in query_scales:
        if not 0 < float(s) <= 1:
            raise ValueError(f"query scale {s!r} must lie in (0, 1] (1 = full resolution).")
        qf, q_pids, q_camids = extract_features(model, ds.query, config, "either", query_scale=float(s),
                                                images=cache["query"])
        if rerank:
            from sisnet.metrics import re_ranking

            distmat = re_ranking(qf, gf)
        else:
            distmat = compute_distance(qf, gf, metric=config.metric)
        out[float(s)] = _rank_metrics(distmat, q_pids, g_pids, q_camids, g_camids)
    return out


def measure_protocols(
    ctx: NotebookContext,
    runs: Sequence[GridRun],
    *,
    cross_scale: float | None = 0.5,
    rerank: bool = False,
) -> pd.DataFrame:
    """Per-run results under the standard protocol (from the history: last evaluation, either-scale),
    the cross-scale protocol (queries degraded by ``cross_scale``; ``None`` skips it) and, with
    ``rerank``, the standard protocol with k-reciprocal re-ranking.

    Columns as :func:`runs_frame` (percent); one row per (run, protocol).
    """
    from sisnet.engine import load_model

    frames = [runs_frame(runs)]
    extra = []
    if cross_scale is not None:
        if not 0 < float(cross_scale) <= 1:
            raise ValueError(f"cross_scale={cross_scale!r} must be in (0, 1] (e.g. 0.5 = half resolution queries).")
        extra.append((protocol_cross_scale(float(cross_scale)), float(cross_scale), False))
    if rerank:
        extra.append((PROTOCOL_RERANK, 1.0, True))
    if extra:
        ds = load(ctx)
        caches: dict[tuple[int, int], dict] = {}
        rows = []
        for run in runs:
            model, config = load_model(run.run_dir)
            cache = caches.setdefault((config.img_height, config.img_width), {})
            for use_rerank in sorted({rr for _, _, rr in extra}):
                scales = [qs for _, qs, rr in extra if rr == use_rerank]
                res = evaluate_query_scales(model, ds, config, scales, rerank=use_rerank, image_cache=cache)
                for protocol, qs, rr in extra:
                    if rr == use_rerank:
                        rows.append({"loss": run.loss, "method": run.method, "seed": run.seed, "protocol": protocol,
                                     "mode": "either", **_percent(res[qs]), "epoch": int(config.epochs),
                                     "run_id": run.run_id})
        frames.append(pd.DataFrame(rows))
    return pd.concat(frames, ignore_index=True)


@dataclass
class TrainedModel:
    """A trained model of the grid, ready for inference (eval mode, CPU)."""

    method: str
    loss: str
    seed: int
    model: Any
    config: Any
    run_dir: Path


def load_models(
    ctx: NotebookContext,
    *,
    loss: str = "S.+T.",
    seed: int | None = None,
    methods: Sequence[str] = paper.METHODS,
) -> dict[str, TrainedModel]:
    """Baseline / SiSNet / SiSNet+DRC of one loss type and seed (trained if not cached), loaded for inference."""
    from sisnet.engine import load_model

    out = {}
    for method in methods:
        run = train(ctx, method, loss, seed, progress=False)
        model, config = load_model(run.run_dir)
        out[method] = TrainedModel(method, loss, run.seed, model, config, run.run_dir)
    return out


def scale_robustness(models: Mapping[str, TrainedModel], ds, query_scales: Sequence[float] = QUERY_SCALES) -> pd.DataFrame:
    """Rank-1/5/10, mAP, mINP (percent, either-scale) for each model and query resolution factor.

    Queries are degraded (down-sampled by the factor, up-sampled back to the input size); the
    gallery stays at full resolution. Columns: ``method``, ``loss``, ``seed``, ``query_scale``,
    the metrics, ``num_valid_queries``.
    """
    bad = [s for s in query_scales if not 0 < float(s) <= 1]
    if bad:
        raise ValueError(f"query_scales {bad} must lie in (0, 1] (1 = full resolution).")
    rows, caches = [], {}
    for method, tm in models.items():
        cache = caches.setdefault((tm.config.img_height, tm.config.img_width), {})
        res = evaluate_query_scales(tm.model, ds, tm.config, [float(s) for s in query_scales], image_cache=cache)
        for s in query_scales:
            rows.append({"method": method, "loss": tm.loss, "seed": tm.seed, "query_scale": float(s),
                         **_percent(res[float(s)]), "num_valid_queries": res[float(s)]["num_valid_queries"]})
    return pd.DataFrame(rows)


def _pick(items: Sequence[Any], n: int, seed: int) -> list[Any]:
    rng = np.random.default_rng(seed)
    n = min(n, len(items))
    return [items[i] for i in sorted(rng.choice(len(items), size=n, replace=False))]


def pearson_rows(a: "torch.Tensor", b: "torch.Tensor") -> "torch.Tensor":
    """Pearson correlation of each pair of maps: ``a``, ``b`` (N, H, W) -> (N,) (NaN for a constant map)."""
    import torch

    x = a.flatten(1).double()
    y = b.flatten(1).double()
    x = x - x.mean(1, keepdim=True)
    y = y - y.mean(1, keepdim=True)
    den = x.norm(dim=1) * y.norm(dim=1)
    corr = (x * y).sum(1) / den
    return torch.where(den > 0, corr, torch.full_like(corr, float("nan"))).float()


def _cams(model: Any, x: "torch.Tensor", class_idx: "torch.Tensor | int | None") -> tuple["torch.Tensor", "torch.Tensor"]:
    """Raw CAMs (N, h, w) for images ``x`` (N, 3, H, W) and the classes used (N,).

    ``class_idx=None`` uses each image's predicted class (argmax of the logits): the identities of
    query images are not classes of the classifier. The model must be in eval mode.
    """
    import torch

    from sisnet.cam import raw_cam

    with torch.no_grad():
        out = model(x)
        if class_idx is None:
            class_idx = out.logits.argmax(1)
        cam = raw_cam(model, out.feature_map, class_idx)
    idx = class_idx if isinstance(class_idx, torch.Tensor) else torch.full((x.shape[0],), int(class_idx))
    return cam, idx


def cam_agreement(cam_a: "torch.Tensor", cam_b: "torch.Tensor", normalization: str = "minmax") -> tuple["torch.Tensor", "torch.Tensor"]:
    """Per-image agreement of two CAM batches (N, h_a, w_a), (N, h_b, w_b): ``(pearson (N,), mse (N,))``.

    Both maps are resized to the larger size (bilinear) and normalised (min-max by default), as in
    the DRC loss; MSE is the DRC loss's per-image term.
    """
    from sisnet.cam import normalize_cam, resize_to_common

    a, b = resize_to_common(cam_a.float(), cam_b.float())
    a, b = normalize_cam(a, normalization), normalize_cam(b, normalization)
    return pearson_rows(a, b), (a - b).pow(2).flatten(1).mean(1)


def cam_consistency(
    models: Mapping[str, TrainedModel],
    ds,
    query_scales: Sequence[float] = (0.75, 0.5, 0.375, 0.25),
    *,
    n_images: int = 32,
    seed: int = 0,
) -> pd.DataFrame:
    """CAM consistency across scales on query images (identities never seen in training).

    For ``n_images`` query images (the same ones for every model), the CAM of the class the model
    predicts at full resolution is computed for the full view and for the view degraded by each
    factor (as in the cross-scale protocol); :func:`cam_agreement` gives the per-image Pearson
    correlation and MSE. Columns: ``method``, ``loss``, ``seed``, ``query_scale``, ``corr_mean``,
    ``corr_std``, ``mse_mean``, ``mse_std``, ``n_images``.
    """
    import torch

    from sisnet.data.transforms import EvalTransform, decode_images

    if n_images < 1:
        raise ValueError(f"n_images={n_images} must be >= 1.")
    records = _pick(ds.query, n_images, seed)
    rows = []
    for method, tm in models.items():
        cfg = tm.config
        imgs = decode_images([r.path for r in records], (cfg.img_height, cfg.img_width))
        full = torch.stack([EvalTransform(cfg, 1.0)(im)[0] for im in imgs])
        cam_full, cls = _cams(tm.model, full, None)
        for s in query_scales:
            view = torch.stack([EvalTransform(cfg, float(s))(im)[0] for im in imgs])
            cam_s, _ = _cams(tm.model, view, cls)
            corr, mse = cam_agreement(cam_full, cam_s)
            rows.append({"method": method, "loss": tm.loss, "seed": tm.seed, "query_scale": float(s),
                         "corr_mean": float(np.nanmean(corr.numpy())), "corr_std": float(np.nanstd(corr.numpy())),
                         "mse_mean": float(mse.mean()), "mse_std": float(mse.std(unbiased=False)),
                         "n_images": len(records)})
    return pd.DataFrame(rows)


# =============================================================================================
# 4. Figures
# =============================================================================================
def _plt():
    import matplotlib

    if "inline" not in matplotlib.get_backend().lower() and os.environ.get("MPLBACKEND") is None:
        # Outside Jupyter (tests, scripts) never try to open a window.
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _open_rgb(path: str, size_hw: tuple[int, int] | None = None) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        if size_hw is not None:
            im = im.resize((size_hw[1], size_hw[0]), Image.BILINEAR)
        return np.asarray(im)


def _degraded_rgb(path: str, size_hw: tuple[int, int], factor: float) -> np.ndarray:
    """The image as a degraded query looks: resized to ``size_hw``, down by ``factor``, back up."""
    from PIL import Image

    img = _open_rgb(path, size_hw)
    if factor >= 1.0:
        return img
    small = (max(1, round(size_hw[1] * factor)), max(1, round(size_hw[0] * factor)))
    im = Image.fromarray(img).resize(small, Image.BILINEAR).resize((size_hw[1], size_hw[0]), Image.BILINEAR)
    return np.asarray(im)


def plot_sample_grid(ds, n_ids: int = 6, per_id: int = 6, seed: int = 0, split: str = "train"):
    """A grid of ``n_ids`` identities (rows) x ``per_id`` images (columns) from ``split``.

    Identities are drawn (seeded) among those with the most images; each row is sorted by native
    person height when the dataset has a scale sidecar (so the scale variation is visible).
    """
    plt = _plt()
    records = ds.split(split)
    if not records:
        raise ValueError(f"The {split} split is empty; nothing to show.")
    by_pid: dict[int, list] = {}
    for r in records:
        by_pid.setdefault(r.pid, []).append(r)
    heights = {}
    scales = ds.scales()
    if scales is not None:
        heights = dict(zip(scales["path"], scales["height_px"]))
    pids = sorted(by_pid, key=lambda p: (-len(by_pid[p]), p))[: max(n_ids * 3, n_ids)]
    pids = _pick(pids, n_ids, seed)
    per_id = max(1, min(per_id, max(len(by_pid[p]) for p in pids)))
    fig, axes = plt.subplots(len(pids), per_id, figsize=(1.1 * per_id, 2.1 * len(pids)), squeeze=False)
    for i, pid in enumerate(pids):
        recs = _pick(by_pid[pid], per_id, seed + i)
        if heights:
            recs = sorted(recs, key=lambda r: -heights.get(r.path, 0))
        for j in range(per_id):
            ax = axes[i, j]
            ax.axis("off")
            if j < len(recs):
                ax.imshow(_open_rgb(recs[j].path))
                label = f"cam {recs[j].camid}"
                if heights:
                    label += f"\n{heights.get(recs[j].path, float('nan')):.0f} px"
                ax.set_title(label, fontsize=7)
        axes[i, 0].text(-0.15, 0.5, f"id {pid}", transform=axes[i, 0].transAxes, rotation=90, va="center",
                        ha="right", fontsize=8)
    fig.suptitle(f"{ds.name}: {split} identities (native person height under each crop)", fontsize=9)
    fig.tight_layout()
    return fig


def plot_scale_distribution(ds):
    """Histogram of native person height (px) per split; ``None`` (with a note) without a scale sidecar."""
    scales = ds.scales()
    if scales is None:
        print(f"{ds.name} has no scale sidecar ({ds.root}/scales.csv); no scale distribution to show.")
        return None
    plt = _plt()
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    sns.histplot(data=scales, x="height_px", hue="subset", element="step", stat="density", common_norm=False,
                 bins=30, ax=ax)
    ax.set_xlabel("native person height (px)")
    ax.set_title(f"{ds.name}: scale distribution per split")
    fig.tight_layout()
    return fig


def plot_training(history: Mapping[str, Any], title: str = ""):
    """Loss terms per epoch (left) and rank-1 / mAP per evaluation, either-scale vs cascaded (right)."""
    plt = _plt()
    import seaborn as sns

    ep = epochs_frame(history)
    ev = evals_frame(history)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    loss_cols = [c for c in ("loss_total", "loss_id", "loss_triplet", "loss_drc") if c in ep.columns]
    if len(ep):
        long = ep.melt(id_vars="epoch", value_vars=loss_cols, var_name="term", value_name="loss")
        long["term"] = long["term"].str.replace("loss_", "", regex=False)
        sns.lineplot(data=long, x="epoch", y="loss", hue="term", marker="o", ax=axes[0])
    axes[0].set_title("training losses")
    if len(ev):
        long = ev.melt(id_vars=["epoch", "mode"], value_vars=["rank1", "mAP"], var_name="metric", value_name="percent")
        sns.lineplot(data=long, x="epoch", y="percent", hue="metric", style="mode", marker="o", ax=axes[1])
    axes[1].set_title("evaluations (percent)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_table2(per_run: pd.DataFrame):
    """Bars of rank-1 and mAP (mean over seeds, error bars = std) per method, loss type and protocol."""
    plt = _plt()
    import seaborn as sns

    long = per_run.melt(id_vars=["loss", "method", "seed", "protocol"], value_vars=["rank1", "mAP"],
                        var_name="metric", value_name="percent")
    g = sns.catplot(data=long, x="method", y="percent", hue="loss", col="protocol", row="metric", kind="bar",
                    errorbar="sd", order=list(paper.METHODS), hue_order=list(paper.LOSS_TYPES), height=2.8,
                    aspect=1.25, sharey="row")
    g.set_titles("{row_name} | {col_name}")
    g.set_axis_labels("", "percent")
    for ax in g.axes.flat:
        ax.set_ylim(0, max(1.0, ax.get_ylim()[1]))
    n = per_run.groupby(["loss", "method", "protocol"]).size().max()
    g.figure.suptitle(f"Table 2, measured (mean ± std over {n} seed{'s' if n > 1 else ''})", y=1.02)
    return g.figure


def plot_table3(per_run: pd.DataFrame):
    """Bars of the cascaded-minus-either gap (points) per method and loss type (error bars = std over seeds)."""
    plt = _plt()
    import seaborn as sns

    long = per_run.melt(id_vars=["loss", "method", "seed"], value_vars=["rank1_gap", "mAP_gap"],
                        var_name="metric", value_name="gap (points)")
    long["metric"] = long["metric"].map({"rank1_gap": "rank-1 gap", "mAP_gap": "mAP gap"})
    g = sns.catplot(data=long, x="method", y="gap (points)", hue="loss", col="metric", kind="bar", errorbar="sd",
                    order=list(paper.METHODS), hue_order=list(paper.LOSS_TYPES), height=3.0, aspect=1.2)
    for ax in g.axes.flat:
        ax.axhline(0, color="k", lw=0.8)
    g.set_titles("{col_name}")
    g.figure.suptitle("Table 3, measured: cascaded minus either-scale", y=1.03)
    return g.figure


def plot_scale_robustness(df: pd.DataFrame):
    """Rank-1 and mAP vs query resolution factor (1 = full), one line per model."""
    plt = _plt()
    import seaborn as sns

    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.4), sharex=True)
    for ax, metric in zip(axes, ("rank1", "mAP")):
        sns.lineplot(data=df, x="query_scale", y=metric, hue="method", hue_order=[m for m in paper.METHODS if m in set(df["method"])],
                     marker="o", ax=ax)
        ax.set_xlabel("query resolution factor")
        ax.set_ylabel(f"{_METRIC_LABELS[metric]} (%)")
        ax.invert_xaxis()
    loss = ", ".join(sorted(df["loss"].unique())) if "loss" in df else ""
    fig.suptitle(f"Scale robustness: degraded queries vs full-resolution gallery ({loss})")
    fig.tight_layout()
    return fig


def plot_cam_consistency(df: pd.DataFrame):
    """CAM correlation (and MSE) between the full-resolution and reduced-resolution views, per model."""
    plt = _plt()
    import seaborn as sns

    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.4), sharex=True)
    order = [m for m in paper.METHODS if m in set(df["method"])]
    for ax, (col, label) in zip(axes, (("corr_mean", "Pearson correlation"), ("mse_mean", "MSE (DRC term)"))):
        sns.lineplot(data=df, x="query_scale", y=col, hue="method", hue_order=order, marker="o", ax=ax)
        ax.set_xlabel("query resolution factor")
        ax.set_ylabel(label)
        ax.invert_xaxis()
    fig.suptitle("CAM consistency: full-resolution vs degraded query views")
    fig.tight_layout()
    return fig


def fig3_cam(
    models: Mapping[str, TrainedModel],
    ds,
    *,
    n_ids: int = 3,
    seed: int = 0,
    alpha: float = 0.5,
) -> tuple[Any, pd.DataFrame]:
    """The paper's Fig. 3: two scales of a few training identities with each model's CAM overlaid.

    For each identity one training image is shown at full scale and as the model's second-scale view
    (the same crop resized by the model's ``scale_factor``, fed natively as in training); columns:
    (a) the input, then one CAM overlay (ground-truth class) per model. Returns ``(figure, table)``
    where the table has one row per (identity, method): ``pid``, ``path``, ``corr`` and ``mse``
    between the two scales' normalised maps (see :func:`cam_agreement`).
    """
    import torch

    from sisnet.data.transforms import EvalTransform, decode_image

    plt = _plt()
    if not models:
        raise ValueError("fig3_cam needs at least one model (see load_models).")
    by_pid: dict[int, list] = {}
    for r in ds.train:
        by_pid.setdefault(r.pid, []).append(r)
    heights = {}
    scales = ds.scales()
    if scales is not None:
        heights = dict(zip(scales["path"], scales["height_px"]))
    pids = _pick(sorted(by_pid), n_ids, seed)
    # the largest crop of each identity (most detail, as in the paper's examples)
    chosen = [max(by_pid[p], key=lambda r: (heights.get(r.path, 0), r.path)) for p in pids]

    first = next(iter(models.values())).config
    H, W = first.img_height, first.img_width
    sh, sw = first.native_small_size
    cols = 1 + len(models)
    fig, axes = plt.subplots(2 * len(chosen), cols, figsize=(1.55 * cols, 2.5 * len(chosen) * 1.0 + 0.6), squeeze=False)
    rows = []
    letters = "bcdefgh"
    for i, rec in enumerate(chosen):
        full_rgb = _open_rgb(rec.path, (H, W))
        small_rgb = _open_rgb(rec.path, (sh, sw))
        for k, (img, label) in enumerate(((full_rgb, f"{H}x{W}"), (small_rgb, f"x{first.scale_factor:g}: {sh}x{sw}"))):
            ax = axes[2 * i + k, 0]
            ax.imshow(img)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_ylabel(f"id {rec.pid}\n{label}", fontsize=7)
        for j, (method, tm) in enumerate(models.items(), start=1):
            cfg = tm.config
            x_full, x_small = EvalTransform(cfg, 1.0)(decode_image(rec.path, (cfg.img_height, cfg.img_width)))
            cam_f, _ = _cams(tm.model, x_full[None], int(rec.pid))
            cam_s, _ = _cams(tm.model, x_small[None], int(rec.pid))
            corr, mse = cam_agreement(cam_f, cam_s)
            rows.append({"pid": int(rec.pid), "path": os.path.basename(rec.path), "method": method,
                         "corr": float(corr[0]), "mse": float(mse[0])})
            from sisnet.cam import overlay_cam

            for k, (img, cam) in enumerate(((full_rgb, cam_f[0]), (small_rgb, cam_s[0]))):
                ax = axes[2 * i + k, j]
                ax.imshow(overlay_cam(img, cam.numpy(), alpha=alpha))
                ax.axis("off")
            axes[2 * i + 1, j].set_title(f"r={float(corr[0]):.2f}", fontsize=7, y=-0.16)
    axes[0, 0].set_title("(a) input", fontsize=8)
    for j, method in enumerate(models, start=1):
        axes[0, j].set_title(f"({letters[j - 1]}) {method}", fontsize=8)
    loss = next(iter(models.values())).loss
    fig.suptitle(f"Fig. 3: ground-truth-class CAMs at two scales ({loss})", fontsize=9)
    fig.tight_layout()
    return fig, pd.DataFrame(rows)


def ranked_list_figure(
    models: Mapping[str, TrainedModel],
    ds,
    *,
    methods: Sequence[str] = ("Baseline", "SiSNet+DRC"),
    n_queries: int = 4,
    top_k: int = 8,
    query_scale: float = 0.5,
    seed: int = 0,
):
    """Top-``top_k`` gallery matches of ``n_queries`` degraded queries, one row per (query, model).

    Same-identity same-camera gallery images are left out (standard protocol); a green frame marks
    a true match, red a false one. Queries are drawn (seeded) among those with at least one valid
    true match in the gallery.
    """
    import torch

    from sisnet.engine import extract_features
    from sisnet.metrics import compute_distance

    plt = _plt()
    methods = [m for m in methods if m in models] or list(models)[:1]
    g_pids = np.array([r.pid for r in ds.gallery])
    g_cams = np.array([r.camid for r in ds.gallery])
    valid_q = [q for q in ds.query if np.any((g_pids == q.pid) & (g_cams != q.camid))]
    if not valid_q:
        raise ValueError("No query has a true match in the gallery under the standard protocol.")
    queries = _pick(valid_q, n_queries, seed)
    fig, axes = plt.subplots(len(queries) * len(methods), top_k + 1,
                             figsize=(0.95 * (top_k + 1), 1.95 * len(queries) * len(methods)), squeeze=False)
    gallery_feats: dict[str, Any] = {}
    row = 0
    for q in queries:
        for method in methods:
            tm = models[method]
            cfg = tm.config
            size = (cfg.img_height, cfg.img_width)
            qf, _, _ = extract_features(tm.model, [q], cfg, "either", query_scale=query_scale)
            if method not in gallery_feats:
                gallery_feats[method] = extract_features(tm.model, ds.gallery, cfg, "either")[0]
            gf = gallery_feats[method]
            dist = compute_distance(qf, gf, metric=cfg.metric)[0]
            keep = ~((g_pids == q.pid) & (g_cams == q.camid))
            order = np.flatnonzero(keep)[np.argsort(dist[keep], kind="stable")][:top_k]
            ax = axes[row, 0]
            ax.imshow(_degraded_rgb(q.path, size, query_scale))
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_ylabel(f"{method}\nquery x{query_scale:g}", fontsize=7)
            for s in ax.spines.values():
                s.set_edgecolor("black")
                s.set_linewidth(2)
            for j in range(top_k):
                ax = axes[row, j + 1]
                ax.set_xticks([])
                ax.set_yticks([])
                if j >= len(order):
                    ax.axis("off")
                    continue
                g = ds.gallery[order[j]]
                ax.imshow(_open_rgb(g.path, size))
                color = "limegreen" if g.pid == q.pid else "red"
                for s in ax.spines.values():
                    s.set_edgecolor(color)
                    s.set_linewidth(3)
                ax.set_title(f"{j + 1}: d={dist[order[j]]:.2f}", fontsize=6)
            row += 1
    fig.suptitle(f"Ranked lists (queries at x{query_scale:g} resolution; green = same identity)", fontsize=9)
    fig.tight_layout()
    return fig


# =============================================================================================
# Your own footage and images (notebook 08)
# =============================================================================================
def plot_mot_frame(seq_dir: str | os.PathLike, frame: int | None = None, fmt: str = "auto"):
    """One frame of a MOTChallenge sequence with its ground-truth boxes and track ids.

    ``frame`` (1-based) defaults to the annotated frame with the most boxes. Reads ``img1/<frame>.jpg``
    (MOTChallenge's 6-digit names); boxes follow MOT's 1-based top-left convention.
    """
    from PIL import Image

    from sisnet.data.mot import read_mot_annotations

    seq_dir = Path(seq_dir)
    gt, _ = read_mot_annotations(seq_dir / "gt" / "gt.txt", fmt)
    if frame is None:
        frame = int(gt["frame"].value_counts().idxmax())
    img_path = seq_dir / "img1" / f"{int(frame):06d}.jpg"
    if not img_path.is_file():
        raise FileNotFoundError(f"{img_path} not found: plot_mot_frame reads sequences stored as img1/ frame folders.")
    plt = _plt()
    with Image.open(img_path) as im:
        rgb = np.asarray(im.convert("RGB"))
    fig, ax = plt.subplots(figsize=(6.4, 6.4 * rgb.shape[0] / rgb.shape[1]))
    ax.imshow(rgb)
    palette = plt.get_cmap("tab10")
    for row in gt[gt["frame"] == frame].itertuples(index=False):
        color = palette(int(row.id) % 10)
        ax.add_patch(plt.Rectangle((row.bb_left - 1, row.bb_top - 1), row.width, row.height, fill=False,
                                   edgecolor=color, linewidth=1.5))
        ax.text(row.bb_left - 1, row.bb_top - 3, f"id {int(row.id)} · {int(round(row.height))} px", color=color,
                fontsize=7, va="bottom")
    ax.set_axis_off()
    ax.set_title(f"{seq_dir.name}, frame {frame}: ground-truth boxes (id · box height)", fontsize=9)
    fig.tight_layout()
    return fig


def market_pid(path: str | os.PathLike) -> int:
    """The identity in a Market-1501-style file name (``0012_c3s1_000123_00.jpg`` -> 12; ``-1`` for junk)."""
    name = Path(path).name
    head = name.split("_", 1)[0]
    try:
        return int(head)
    except ValueError:
        raise ValueError(f"{name!r} is not a Market-1501-style file name (expected '<pid>_c<cam>...').") from None


def plot_search_results(queries: Sequence[str | os.PathLike], results: Sequence[pd.DataFrame], *,
                        thumb_hw: tuple[int, int] = (128, 64)):
    """Ranked lists from :func:`sisnet.search.search`, one row per query.

    When the file names carry identities (Market-1501 style, as the MOT converter writes them) a green frame
    marks the same person as the query and red another one; otherwise frames are grey.
    """
    plt = _plt()
    if len(queries) != len(results) or not queries:
        raise ValueError("plot_search_results needs one results table per query (and at least one query).")
    top_k = max(len(r) for r in results)
    fig, axes = plt.subplots(len(queries), top_k + 1, figsize=(0.95 * (top_k + 1), 1.95 * len(queries)), squeeze=False)
    for i, (q, res) in enumerate(zip(queries, results)):
        try:
            q_pid = market_pid(q)
        except ValueError:
            q_pid = None
        ax = axes[i, 0]
        ax.imshow(_open_rgb(str(q), thumb_hw))
        ax.set_ylabel("query", fontsize=7)
        for j in range(top_k + 1):
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
        for j in range(top_k):
            ax = axes[i, j + 1]
            if j >= len(res):
                ax.axis("off")
                continue
            row = res.iloc[j]
            ax.imshow(_open_rgb(row["path"], thumb_hw))
            color = "grey"
            if q_pid is not None:
                try:
                    color = "limegreen" if market_pid(row["path"]) == q_pid else "red"
                except ValueError:
                    pass
            for s in ax.spines.values():
                s.set_edgecolor(color)
                s.set_linewidth(3)
            ax.set_title(f"{int(row['rank'])}: d={row['distance']:.2f}", fontsize=6)
    fig.suptitle("Search results (green = same person as the query, from the file names)", fontsize=9)
    fig.tight_layout()
    return fig
