"""A notebook's set-up: its parameters resolved into paths and seeds, the plotting style, and its dataset.

:func:`setup` turns ``profile``, ``dataset``, ``data_root`` (the folder holding all datasets and the runs
cache) and ``results_dir`` into a :class:`NotebookContext`; :func:`prepare_dataset` / :func:`load` give the
notebook its dataset. The profile's defaults (seeds, synthetic size, threads) come from
:func:`sisnet.config.profile_settings`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from sisnet.config import dataset_folder, profile_settings, runs_folder
from sisnet.provenance import git_commit, project_root
from sisnet.report.io import FIG_DPI
from sisnet.utils import ensure_writable_dir

__all__ = ["NotebookContext", "setup", "load", "prepare_dataset"]


@dataclass
class NotebookContext:
    """A notebook's resolved parameters.

    ``out_dir`` = ``<results_dir>/<profile>/<dataset>``; tables go to ``out_dir/tables``, figures to
    ``out_dir/figures``. ``runs_dir`` (``<data_root>/runs``) is the training-runs cache shared by all
    notebooks. Relative paths are relative to the project root (the notebook changes into it).
    ``nproc``: training processes (GPUs) per run; above 1 a run is trained by ``torchrun -m sisnet.train``.
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
    progress: bool = True
    nproc: int = 1

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
            dataset_dir=str(self.dataset_dir),
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
    nproc: int | None = None,
) -> NotebookContext:
    """Validate a notebook's parameters and prepare its output folders.

    - ``profile`` must be a profile of :mod:`sisnet.config`; ``dataset`` one of
      :data:`sisnet.data.DATASET_NAMES` (``ValueError`` naming the valid ones otherwise).
    - With ``chdir=True`` the process changes into the project root (when it is found above the
      current folder, e.g. when JupyterLab starts the kernel in ``notebooks/``), so that relative
      paths such as ``data`` mean the same thing interactively and under papermill.
    - ``seeds=None`` means the profile's (:attr:`sisnet.config.ProfileSettings.seeds`).
    - Also sets the seaborn theme and a modest figure resolution (executed notebooks stay small).
    - ``num_threads``: torch CPU threads; default: the profile's
      (:attr:`sisnet.config.ProfileSettings.num_threads`).
    - ``nproc``: processes (one per GPU) that train each run; default: the environment variable
      ``SISNET_NPROC`` (set by ``python -m sisnet.reproduce --nproc N``), else 1 (trained in the kernel).
    """
    from sisnet.config import PROFILE_NAMES
    from sisnet.data import DATASET_NAMES

    if profile not in PROFILE_NAMES:
        raise ValueError(f"profile={profile!r} is not a profile; choose one of {list(PROFILE_NAMES)}.")
    if dataset not in DATASET_NAMES:
        raise ValueError(f"dataset={dataset!r} is not a dataset; choose one of {list(DATASET_NAMES)}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed={seed!r} must be an integer.")
    if nproc is None:
        nproc = int(os.environ.get("SISNET_NPROC", "1") or 1)
    if isinstance(nproc, bool) or not isinstance(nproc, (int, np.integer)) or nproc < 1:
        raise ValueError(f"nproc={nproc!r} must be an integer >= 1 (training processes, one per GPU).")
    if chdir:
        root = project_root()
        if root is not None and root != Path.cwd().resolve():
            os.chdir(root)
    if num_threads is None:
        num_threads = profile_settings(profile).num_threads
    if num_threads is not None:
        import torch

        torch.set_num_threads(int(num_threads))
    seeds_list = list(profile_settings(profile).seeds) if seeds is None else [int(s) for s in seeds]
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
        runs_dir=runs_folder(data_root),
        dataset_dir=dataset_folder(dataset, data_root, profile),
        commit=git_commit(),
        nproc=int(nproc),
        # batch runs (sisnet.reproduce sets SISNET_BATCH for its kernels): one log line per run, no tqdm bars
        progress=os.environ.get("SISNET_BATCH", "") != "1",
    )
    ensure_writable_dir(ctx.tables_dir, "results folder")
    ensure_writable_dir(ctx.figures_dir, "results folder")
    _style()
    return ctx

def _style() -> None:
    import matplotlib
    import pandas as pd

    from sisnet.report.io import format_number

    pd.set_option("display.float_format", format_number)  # tables shown in notebooks: as in the .md files
    matplotlib.rcParams["figure.dpi"] = FIG_DPI
    matplotlib.rcParams["savefig.dpi"] = FIG_DPI
    try:
        import seaborn as sns

        sns.set_theme(style="whitegrid", context="notebook")
    except ImportError:  # pragma: no cover - seaborn is a dependency
        pass


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

    For ``synthetic`` the size follows the profile (:attr:`sisnet.config.ProfileSettings.synthetic_size`) and the
    data seed is fixed (``data_seed``, independent of the training seed) so every profile run sees the same data.
    Real datasets are only located and checked (the loader's error says where to put them).
    """
    if ctx.dataset == "synthetic":
        from sisnet.data.synthetic import generate

        generate(ctx.dataset_dir, size=profile_settings(ctx.profile).synthetic_size, seed=data_seed)
        _DATASETS.pop((ctx.dataset, str(Path(ctx.dataset_dir).resolve())), None)
    return load(ctx)
