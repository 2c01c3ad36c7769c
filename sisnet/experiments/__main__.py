"""Command line of the experiments: ``python -m sisnet.experiments real|scale [--seeds 0,1,2,3,4] [--out DIR]``,
``python -m sisnet.experiments pack`` (the real sets packed for a device run) and the checks on synthetic data
whose tables notebook 03 reads: ``validate``, ``convergence``, ``triplet-schedule``, ``other-view``."""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from sisnet.experiments import convergence, other_view, triplet_schedule, validate
from sisnet.experiments.real import VALIDATION_GRID
from sisnet.experiments.real_data import DATA_SOURCES

#: the notebooks that read each experiment's tables (executed into its results folder after the tables)
REAL_NOTEBOOK = "09_real_pedestrians.ipynb"
SCALE_NOTEBOOK = "10_scale_study.ipynb"
#: the checks on synthetic data: subcommand -> its module (``add_arguments``, ``main``; its docstring says what it does)
CHECKS = {"validate": validate, "convergence": convergence, "triplet-schedule": triplet_schedule,
          "other-view": other_view}


def _real(args: argparse.Namespace) -> int:
    from sisnet.experiments.real import run_experiment
    from sisnet.experiments.tables import real_tables
    from sisnet.parallel import default_workers
    from sisnet.provenance import git_commit, load_average, machine, package_versions
    from sisnet.report.io import save_table

    seeds = [int(s) for s in args.seeds.split(",")]
    workers = args.workers or default_workers(args.threads)
    command = "python -m sisnet.experiments " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    t0 = time.time()
    grid = tuple((float(lr), int(ep)) for lr in args.lrs.split(",") for ep in args.epochs.split(","))
    raw = run_experiment(args.data_root, seeds, workers, args.threads, validation_grid=grid)
    out = Path(args.out)
    tables_dir = out / "tables"
    tables_dir.mkdir(parents=True, exist_ok=True)
    for name, frame in real_tables(raw, command).items():
        save_table(tables_dir, name, frame)
    manifest = {"command": command, "wall_seconds": time.time() - t0, "data_sources": DATA_SOURCES,
                "settings": raw["settings"].to_dict("records")[0], "git_commit": git_commit(), "machine": machine(),
                "packages": package_versions(), "load_average_end": load_average()}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"wrote {tables_dir} ({manifest['wall_seconds']:.0f} s)")
    _execute(REAL_NOTEBOOK, out, args.notebook)
    return 0


def _scale(args: argparse.Namespace) -> int:
    from sisnet.experiments.scale import run_experiment
    from sisnet.experiments.scale_tables import scale_tables
    from sisnet.parallel import default_workers
    from sisnet.provenance import git_commit, load_average, machine, package_versions
    from sisnet.report.io import save_table

    seeds = [int(s) for s in args.seeds.split(",")]
    workers = args.workers or default_workers(args.threads)
    command = "python -m sisnet.experiments " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    t0 = time.time()
    raw = run_experiment(args.data_root, seeds, workers, args.threads, force=args.force)
    out = Path(args.out)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    for name, frame in scale_tables(raw, command).items():
        save_table(out / "tables", name, frame)
    manifest = {"command": command, "wall_seconds": time.time() - t0, "settings": raw["settings"].to_dict("records")[0],
                "git_commit": git_commit(), "machine": machine(), "packages": package_versions(),
                "load_average_end": load_average()}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"wrote {out / 'tables'} ({manifest['wall_seconds']:.0f} s)")
    _execute(SCALE_NOTEBOOK, out, args.notebook)
    return 0


def _execute(name: str, out: Path, enabled: bool) -> None:
    """Execute ``notebooks/<name>`` into ``out`` with papermill (its ``results_dir`` parameter = ``out``)."""
    notebook = Path(__file__).resolve().parents[2] / "notebooks" / name
    if enabled and notebook.is_file():
        import papermill

        papermill.execute_notebook(str(notebook), str(out / name), parameters={"results_dir": str(out)},
                                   cwd=str(notebook.parents[1]), progress_bar=False)
        print(f"wrote {out / name}")


def _pack(args: argparse.Namespace) -> int:
    from sisnet.experiments.pack import pack_real

    sizes = pack_real(args.data_root, args.out)
    print(", ".join(f"{k} {v / 2**20:.1f} MiB" for k, v in sizes.items()) + f"; {sum(sizes.values()) / 2**20:.1f} MiB in all")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sisnet.experiments", description=__doc__)
    sub = parser.add_subparsers(dest="experiment", required=True)
    real = sub.add_parser("real", help="Table 2 on real pedestrians (CUHK03 + CUHK01 -> VIPeR, PRID, GRID, i-LIDS)")
    real.add_argument("--data-root", default="data", help="folder holding cuhk03/, cuhk01/, viper/, prid/, grid/, "
                                                          "ilids/ and the runs cache (default: data)")
    real.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds (default: 0,1,2,3,4)")
    real.add_argument("--out", default="results/cpu/real", help="results folder (default: results/cpu/real)")
    real.add_argument("--lrs", default=",".join(dict.fromkeys(f"{lr:g}" for lr, _ in VALIDATION_GRID)),
                      help="learning rates of the validation grid (default: %(default)s)")
    real.add_argument("--epochs", default=",".join(dict.fromkeys(str(ep) for _, ep in VALIDATION_GRID)),
                      help="schedules (epochs of 100 steps) of the validation grid, chosen jointly with --lrs "
                           "(default: %(default)s)")
    real.add_argument("--workers", type=int, default=0, help="worker processes (default: cores / threads)")
    real.add_argument("--threads", type=int, default=1, help="torch threads per run (default: 1)")
    real.add_argument("--no-notebook", dest="notebook", action="store_false",
                      help=f"do not execute notebooks/{REAL_NOTEBOOK} into the results folder afterwards")
    scale = sub.add_parser("scale", help="the controlled scale study on generated far/near people (Table 2's claims)")
    scale.add_argument("--data-root", default="data", help="where the generated sets and the runs cache go (default: data)")
    scale.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds (default: 0,1,2,3,4)")
    scale.add_argument("--out", default="results/cpu/scale", help="results folder (default: results/cpu/scale)")
    scale.add_argument("--workers", type=int, default=0, help="worker processes (default: cores / threads)")
    scale.add_argument("--threads", type=int, default=1, help="torch threads per run (default: 1)")
    scale.add_argument("--force", action="store_true", help="run the grid even when the scale check fails")
    scale.add_argument("--no-notebook", dest="notebook", action="store_false",
                       help=f"do not execute notebooks/{SCALE_NOTEBOOK} into the results folder afterwards")
    pack = sub.add_parser("pack", help="the real sets re-encoded at 128x64 (JPEG q75) for a device run (tools/gpu_real.sh)")
    pack.add_argument("--data-root", default="data", help="folder holding the real sets (default: data)")
    pack.add_argument("--out", default="data/packed", help="where the packed copy goes (default: data/packed)")
    for name, module in CHECKS.items():
        module.add_arguments(sub.add_parser(name, help=module.__doc__.split(":")[0], description=module.__doc__))
    args = parser.parse_args(argv)
    if args.experiment in CHECKS:
        try:
            return CHECKS[args.experiment].main(args, sys.argv[1:] if argv is None else list(argv))
        except (ValueError, FileNotFoundError) as exc:
            print(f"sisnet.experiments {args.experiment}: {exc}", file=sys.stderr)
            return 2
    return {"real": _real, "scale": _scale, "pack": _pack}[args.experiment](args)


if __name__ == "__main__":
    raise SystemExit(main())
