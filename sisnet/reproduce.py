"""Run the companion notebooks in order with papermill: ``python -m sisnet.reproduce --profile cpu``.

What it writes, into ``<results-dir>/<profile>/<dataset>/``:

- ``NN_name.ipynb``: each executed notebook (written to a hidden temporary name, renamed when done);
- ``tables/*.csv`` + ``tables/*.md`` and ``figures/*.png``: what the notebooks save (atomically);
- ``manifest.json``: git commit, parameters, wall time per notebook, package versions, the list of
  files. ``wall_seconds_total`` sums the notebooks of the whole set in the folder; ``last_run`` names the
  notebooks this call ran and when (``--only 08`` updates 08's entry and keeps the others) -- written LAST, and removed at the start of a run, so a folder with a manifest is a
  complete run. A failed run leaves ``failed.json`` (which notebook, papermill's error) instead.

Training runs are cached by config under ``<data-root>/runs/<run_id>/`` by :func:`sisnet.engine.fit`;
the Table 2 runs (notebook 03) are reused by notebooks 04-07. ``--force`` retrains them. ``--nproc N`` trains
each run on N GPUs with ``torchrun -m sisnet.train`` (the kernels read it as ``SISNET_NPROC``, see
:func:`sisnet.report.setup`); the runs are the same runs, in the same cache.

``make reproduce`` calls ``python -m sisnet.reproduce --profile cpu --dataset synthetic``; notebook 01
generates the default synthetic data first when it is missing. The checks whose tables the notebooks read but do
not make (the validation sweep, the 2x-schedule checks, the other second view) run apart:
``python -m sisnet.experiments validate | convergence | triplet-schedule | other-view``.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from sisnet.utils import atomic_write_json, ensure_writable_dir

__all__ = ["NOTEBOOKS", "NOTEBOOK_DIR", "NotebookFailed", "reproduce", "main", "select_notebooks"]

#: The companion notebooks, in run order.
NOTEBOOKS: tuple[str, ...] = (
    "00_sisnet_by_hand.ipynb",
    "01_data.ipynb",
    "02_training.ipynb",
    "03_ablation.ipynb",
    "04_table1.ipynb",
    "05_table3.ipynb",
    "06_fig3_cam.ipynb",
    "07_scale_robustness.ipynb",
    "08_your_images.ipynb",
)
NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
MANIFEST = "manifest.json"
FAILED = "failed.json"


class NotebookFailed(RuntimeError):
    """A notebook raised; ``notebook`` is its name, ``__cause__`` papermill's error."""

    def __init__(self, notebook: str, message: str):
        super().__init__(message)
        self.notebook = notebook


def select_notebooks(only: str | Sequence[str] | None, notebook_dir: Path = NOTEBOOK_DIR) -> list[Path]:
    """The notebooks to run, in order. ``only``: e.g. ``"03"``, ``"03,05"`` or ``["04_table1"]`` (prefixes)."""
    paths = [notebook_dir / n for n in NOTEBOOKS]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"Companion notebook(s) missing: {missing}. Run from a complete checkout of the project.")
    if not only:
        return paths
    keys = [k.strip() for k in (only.split(",") if isinstance(only, str) else only) if k.strip()]
    chosen = []
    for key in keys:
        hits = [p for p in paths if p.name.startswith(key) or p.stem == key]
        if len(hits) != 1:
            raise ValueError(
                f"--only {key!r} matches {len(hits)} notebooks; use a number such as 03 or a name among "
                f"{[p.stem for p in paths]}."
            )
        chosen.append(hits[0])
    return sorted(set(chosen), key=paths.index)


def _declared_parameters(path: Path) -> set[str]:
    import papermill as pm

    return set(pm.inspect_notebook(str(path)).keys())


def _execute(path: Path, out_path: Path, parameters: dict[str, Any], cwd: Path, kernel_name: str | None,
             progress: bool) -> float:
    """Execute one notebook into ``out_path`` (via a temporary name); returns wall seconds."""
    import tempfile

    import papermill as pm
    from traitlets.config import Config

    tmp = out_path.parent / f".{out_path.stem}.partial.ipynb"
    start = time.perf_counter()
    try:
        # The kernel talks to us over local IPC sockets in a private temporary folder, not unencrypted TCP
        # (ipykernel warns about TCP in every run, and on a shared machine anyone could connect to it).
        with tempfile.TemporaryDirectory(prefix="sisnet-kernel-") as sockets:
            ipc = Config({"KernelManager": {"transport": "ipc", "ip": os.path.join(sockets, "kernel")}})
            pm.execute_notebook(
                str(path),
                str(tmp),
                parameters=parameters,
                cwd=str(cwd),
                kernel_name=kernel_name,
                progress_bar=progress,
                log_output=False,
                config=ipc,
            )
    except BaseException as exc:
        # Keep the partially executed notebook for debugging, under a name that never looks complete.
        if tmp.exists():
            failed_copy = out_path.parent / f"{out_path.stem}.FAILED.ipynb"
            os.replace(tmp, failed_copy)
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise NotebookFailed(path.name, f"Notebook {path.name} failed: {exc}") from exc
    os.replace(tmp, out_path)
    return time.perf_counter() - start


def reproduce(
    profile: str = "cpu",
    dataset: str = "synthetic",
    *,
    data_root: str | os.PathLike = "data",
    results_dir: str | os.PathLike = "results",
    seed: int = 0,
    seeds: Sequence[int] | None = None,
    rerank: bool = False,
    force: bool = False,
    only: str | Sequence[str] | None = None,
    notebook_dir: str | os.PathLike = NOTEBOOK_DIR,
    cwd: str | os.PathLike | None = None,
    kernel_name: str | None = "python3",
    progress: bool = True,
    nproc: int = 1,
    log=print,
) -> dict[str, Any]:
    """Execute the companion notebooks in order; returns the manifest (also written to ``manifest.json``).

    Each notebook receives the parameters it declares among ``profile``, ``dataset``, ``data_root``,
    ``results_dir``, ``seed``, ``seeds``, ``rerank``, ``force`` and ``nproc``. ``cwd`` (default: the project root)
    is where the kernels run, so relative ``data_root``/``results_dir`` are relative to it. ``nproc > 1``: the
    kernels train each run with ``torchrun --nproc_per_node=nproc -m sisnet.train`` (``SISNET_NPROC``).

    Raises :class:`NotebookFailed` (naming the notebook, chained to papermill's error) and leaves
    ``failed.json`` instead of a manifest when a notebook fails; later notebooks are not run.
    """
    from sisnet.provenance import git_commit, load_average

    _check_arguments(profile, dataset, nproc)
    notebook_dir = Path(notebook_dir)
    cwd = Path(cwd) if cwd is not None else notebook_dir.resolve().parent
    data_root, results_dir = _for_kernels(cwd, data_root, results_dir)
    paths = select_notebooks(only, notebook_dir)
    results_dir = Path(results_dir)
    out_dir = results_dir / profile / dataset
    abs_out = out_dir if out_dir.is_absolute() else cwd / out_dir
    ensure_writable_dir(abs_out, "results folder")

    manifest_path, failed_path = abs_out / MANIFEST, abs_out / FAILED
    previous = _clear_previous(abs_out)

    params_all: dict[str, Any] = {
        "profile": profile,
        "dataset": dataset,
        "data_root": str(data_root),
        "results_dir": str(results_dir),
        "seed": int(seed),
        "seeds": None if seeds is None else [int(s) for s in seeds],
        "rerank": bool(rerank),
        # --force: notebooks retrain runs whose history is older than this batch (a UNIX time), so a
        # run retrained by notebook 02 is not retrained again by notebook 03.
        "force": time.time() if force else False,
        "nproc": int(nproc),
    }
    commit = git_commit(cwd)
    load_at_start = load_average()
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    notebooks: dict[str, Any] = dict(previous.get("notebooks", {})) if only else {}
    with _kernel_env("SISNET_NPROC", str(nproc)), _kernel_env("SISNET_BATCH", "1"):
        _run_notebooks(paths, params_all, abs_out, cwd, kernel_name, progress, notebooks, failed_path, commit, log)

    manifest = {
        "commit": commit,
        "profile": profile,
        "dataset": dataset,
        "parameters": params_all,
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **_totals(notebooks, paths, only, started, t0),
        "load_average": {"start": load_at_start, "end": load_average()},
        **_environment_and_files(abs_out),
    }
    atomic_write_json(manifest_path, manifest)
    log(f"Wrote {manifest_path} ({manifest['last_run']['wall_seconds']:.1f} s for {len(paths)} notebook(s); "
        f"{manifest['wall_seconds_total']:.1f} s for the whole set)")
    return manifest


def _for_kernels(cwd: Path, *paths: str | os.PathLike) -> list:
    """The kernels run in ``cwd`` (the project root). Relative paths given by a caller elsewhere are made
    absolute; from the project root they stay relative, so the runs' configs (and run_ids) are the same
    as when the notebooks are run interactively."""
    if Path.cwd().resolve() == cwd.resolve():
        return list(paths)
    return [p if Path(p).is_absolute() else Path.cwd() / p for p in paths]


def _check_arguments(profile: str, dataset: str, nproc: int) -> None:
    """``ValueError`` naming the valid choices for a profile, dataset or process count that is not one."""
    from sisnet.config import PROFILE_NAMES
    from sisnet.data import DATASET_NAMES

    if profile not in PROFILE_NAMES:
        raise ValueError(f"--profile {profile!r} is not a profile; choose one of {list(PROFILE_NAMES)}.")
    if dataset not in DATASET_NAMES:
        raise ValueError(f"--dataset {dataset!r} is not a dataset; choose one of {list(DATASET_NAMES)}.")
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise ValueError(f"--nproc {nproc!r} must be an integer >= 1 (training processes, one per GPU).")


def _clear_previous(abs_out: Path) -> dict[str, Any]:
    """A folder holding a manifest is a complete run: remove it (and a ``failed.json``) before anything changes;
    returns the removed manifest (``{}`` when there was none or it was unreadable)."""
    manifest_path, failed_path = abs_out / MANIFEST, abs_out / FAILED
    previous: dict[str, Any] = {}
    if manifest_path.exists():
        try:
            previous = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            previous = {}
        manifest_path.unlink()
    if failed_path.exists():
        failed_path.unlink()
    return previous


def _totals(notebooks: dict[str, Any], paths: list[Path], only, started: datetime, t0: float) -> dict[str, Any]:
    """The manifest's times: the totals describe the whole set of notebooks in the folder; ``last_run`` names what
    this call ran."""
    return {
        "wall_seconds_total": round(sum(float(e.get("wall_seconds", 0.0)) for e in notebooks.values()), 2),
        "notebooks": {n: notebooks[n] for n in NOTEBOOKS if n in notebooks},
        "last_run": {"notebooks": [p.name for p in paths], "only": list(only) if isinstance(only, (list, tuple)) else only,
                     "started_at": started.isoformat(timespec="seconds"),
                     "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                     "wall_seconds": round(time.perf_counter() - t0, 2)},
    }


def _environment_and_files(abs_out: Path) -> dict[str, Any]:
    """The manifest's package versions, platform and the list of files the run left in ``abs_out``."""
    from sisnet.provenance import machine, package_versions

    files = sorted(
        str(p.relative_to(abs_out))
        for p in abs_out.rglob("*")
        if p.is_file() and not p.name.startswith(".") and p.name not in (MANIFEST, FAILED)
        and ".FAILED." not in p.name
    )
    return {"packages": package_versions(), "platform": machine(), "files": files}


@contextlib.contextmanager
def _kernel_env(name: str, value: str):
    """Set an environment variable that the notebook kernels inherit, for the duration of the block."""
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def _run_notebooks(paths: list[Path], params_all: dict[str, Any], abs_out: Path, cwd: Path, kernel_name: str | None,
                   progress: bool, notebooks: dict[str, Any], failed_path: Path, commit: str | None, log) -> None:
    """Execute ``paths`` in order into ``abs_out``, recording each in ``notebooks``; ``failed.json`` on failure."""
    for i, path in enumerate(paths, 1):
        declared = _declared_parameters(path)
        params = {k: v for k, v in params_all.items() if k in declared}
        out_path = abs_out / path.name
        log(f"[{i}/{len(paths)}] {path.name} -> {out_path}")
        try:
            seconds = _execute(path, out_path, params, cwd, kernel_name, progress)
        except NotebookFailed as exc:
            atomic_write_json(
                failed_path,
                {"failed_notebook": path.name, "error": str(exc.__cause__ or exc), "commit": commit,
                 "parameters": params_all, "completed": list(notebooks),
                 "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds")},
            )
            log(f"FAILED: {path.name} (see {failed_path} and {out_path.stem}.FAILED.ipynb)")
            raise
        notebooks[path.name] = {"wall_seconds": round(seconds, 2), "parameters": params, "commit": commit,
                                "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        log(f"      done in {seconds:.1f} s")


def main(argv: Sequence[str] | None = None) -> int:
    from sisnet.train import add_run_arguments, parse_seeds

    parser = argparse.ArgumentParser(
        prog="python -m sisnet.reproduce",
        description="Execute the SiSNet companion notebooks in order with papermill into "
        "<results-dir>/<profile>/<dataset>/ (executed notebooks, tables, figures, manifest.json).",
    )
    add_run_arguments(parser)
    parser.add_argument("--results-dir", default="results", help="results folder (default: results)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the single-run notebooks (default: 0)")
    parser.add_argument("--seeds", type=parse_seeds, default=None,
                        help="comma-separated seeds of the ablation (default: the profile's, sisnet.config.PROFILE_SETTINGS)")
    parser.add_argument("--rerank", action="store_true", help="add k-reciprocal re-ranked rows to the ablation table")
    parser.add_argument("--force", action="store_true", help="retrain runs even when they are in the runs cache")
    parser.add_argument("--only", default=None, help="run only these notebooks, e.g. 03 or 03,05")
    parser.add_argument("--kernel", default="python3", help="Jupyter kernel name (default: python3)")
    parser.add_argument("--no-progress", action="store_true", help="hide papermill's progress bar")
    parser.add_argument("--update-readme", action="store_true",
                        help="run nothing: rewrite README.md's results block from the results of --profile/--dataset")
    parser.add_argument("--nproc", type=int, default=1,
                        help="train each run on this many GPUs with torchrun -m sisnet.train (default: 1, in the kernel)")
    parser.add_argument("--quick", action="store_true",
                        help="one seed (--seed) of the same grid, into <results-dir>/quick/ (a first look in minutes)")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds = [args.seed]
        args.results_dir = str(Path(args.results_dir) / "quick")
    if args.update_readme:
        from sisnet.report.readme import update_readme

        readme = NOTEBOOK_DIR.parent / "README.md"
        changed = update_readme(readme, args.results_dir, args.profile, args.dataset)
        print(f"{readme}: results block {'rewritten' if changed else 'already up to date'}")
        return 0
    try:
        reproduce(
            args.profile, args.dataset, data_root=args.data_root, results_dir=args.results_dir, seed=args.seed,
            seeds=args.seeds, rerank=args.rerank, force=args.force, only=args.only, kernel_name=args.kernel,
            progress=not args.no_progress, nproc=args.nproc,
        )
    except NotebookFailed as exc:
        print(f"\nsisnet.reproduce: notebook {exc.notebook} failed; later notebooks were not run.\n"
              f"papermill's error:\n{exc.__cause__}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError, PermissionError) as exc:
        print(f"sisnet.reproduce: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
