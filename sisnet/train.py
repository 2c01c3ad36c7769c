"""Train one configuration from the command line, on one process or, under ``torchrun``, on several GPUs.

    python -m sisnet.train --profile paper --dataset market1501 --data-root data [--set key=value ...]
    torchrun --standalone --nproc_per_node=4 -m sisnet.train --profile paper --dataset market1501 --data-root data

``--data-root`` means what it means for :mod:`sisnet.reproduce`: the folder that holds the datasets
(``<data-root>/<dataset>``; the synthetic set at :func:`sisnet.config.dataset_folder`, generated there when it
is missing) and the runs cache (``<data-root>/runs/<run_id>``): a run trained here is the run the notebooks find.
``--set key=value`` overrides one :class:`~sisnet.config.TrainConfig` field (Python literals: ``--set epochs=60``,
``--set sync_bn=True``, ``--set milestones=(40,70)``; anything else is a string).

Under ``torchrun`` each process takes one GPU (NCCL; gloo on the CPU) and :func:`sisnet.engine.fit` trains with
DistributedDataParallel (see :mod:`sisnet.distributed`): the global batch stays ``P x K`` (``P`` must be a
multiple of the process count), only rank 0 evaluates and writes the checkpoint and the history, and a run that
was stopped resumes from its checkpoint in every process. :func:`command` builds the command line (the
notebooks' ``sisnet.report.runs.train`` uses it when ``nproc > 1``).
"""
from __future__ import annotations

import argparse
import ast
import os
import sys
from pathlib import Path
from typing import Any, Sequence

__all__ = ["main", "command", "train_config", "parse_overrides", "add_run_arguments", "parse_seeds"]


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["epochs=60", "sync_bn=True"]`` -> ``{"epochs": 60, "sync_bn": True}`` (Python literals, else strings)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set {item!r}: give key=value, e.g. --set epochs=60.")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        out[key.strip()] = list(value) if isinstance(value, list) else value
    return out


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """``--profile``, ``--dataset`` and ``--data-root``, as ``sisnet.train`` and ``sisnet.reproduce`` take them."""
    parser.add_argument("--profile", default="cpu", help="smoke | cpu | paper (default: cpu)")
    parser.add_argument("--dataset", default="synthetic",
                        help="synthetic | market1501 | dukemtmcreid | msmt17 (default: synthetic)")
    parser.add_argument("--data-root", default="data", help="folder holding the datasets and the runs cache (default: data)")


def parse_seeds(text: str | None) -> list[int] | None:
    """``--seeds`` as the commands take it: comma-separated integers (``None`` stays ``None``: the profile's)."""
    if text is None:
        return None
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds {text!r}: give comma-separated integers, e.g. 0,1,2") from None
    if not seeds:
        raise argparse.ArgumentTypeError("--seeds is empty; give comma-separated integers, e.g. 0,1,2")
    return seeds


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sisnet.train",
        description="Train one SiSNet configuration into <data-root>/runs/<run_id>/ (or return it from there). "
        "Launch with torchrun --nproc_per_node=N for DistributedDataParallel on N GPUs.",
    )
    add_run_arguments(parser)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field (repeatable), e.g. --set seed=1 --set sync_bn=True")
    parser.add_argument("--force", action="store_true", help="train again even when the run is in the runs cache")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def train_config(profile: str, dataset: str, data_root: str | os.PathLike, overrides: dict[str, Any] | None = None):
    """The :class:`~sisnet.config.TrainConfig` this command trains: the profile, ``dataset`` in ``data_root`` (its
    folder and the runs cache, as :mod:`sisnet.reproduce` and the notebooks derive them), then ``overrides``."""
    from sisnet.config import dataset_folder, get_config, runs_folder

    return get_config(profile, **{
        "dataset": dataset,
        "dataset_dir": str(dataset_folder(dataset, data_root, profile)),
        "runs_dir": str(runs_folder(data_root)),
        **(overrides or {}),
    })


def command(profile: str, dataset: str, data_root: str | os.PathLike, overrides: dict[str, Any] | None = None, *,
            nproc: int = 1, force: bool = False, progress: bool = False) -> list[str]:
    """The command line that trains this run: ``python -m sisnet.train ...``, under ``torch.distributed.run``
    (torchrun) with ``--standalone --nproc_per_node=nproc`` when ``nproc > 1``."""
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise ValueError(f"nproc={nproc!r} must be an integer >= 1 (processes, one per GPU).")
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"] \
        if nproc > 1 else [sys.executable]
    cmd = [*launcher, "-m", "sisnet.train", "--profile", profile, "--dataset", dataset, "--data-root", str(data_root)]
    for key, value in (overrides or {}).items():
        cmd += ["--set", f"{key}={value!r}"]
    if force:
        cmd.append("--force")
    if not progress:
        cmd.append("--no-progress")
    return cmd


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = train_config(args.profile, args.dataset, args.data_root, parse_overrides(args.set))
    except ValueError as exc:
        print(f"sisnet.train: {exc}", file=sys.stderr)
        return 2
    from sisnet import distributed
    from sisnet.config import profile_settings

    world = distributed.init_from_env(config.device)
    try:
        threads = profile_settings(args.profile).num_threads
        if threads is not None and not os.environ.get("OMP_NUM_THREADS"):
            import torch

            torch.set_num_threads(threads)
        if config.dataset == "synthetic":
            with distributed.main_first(world):
                if world.is_main:
                    from sisnet.data.synthetic import generate

                    generate(config.dataset_dir, size=profile_settings(args.profile).synthetic_size, seed=0)
        from sisnet.engine import fit

        history = fit(config, resume=not args.force, progress=not args.no_progress)
        if world.is_main:
            run_dir = Path(config.runs_dir) / history["run_id"]  # sisnet.runs.run_key, as fit named it
            last = history["epochs"][-1] if history.get("epochs") else {}
            print(f"run {history['run_id']} in {run_dir}: {len(history.get('epochs', []))} epochs, "
                  f"{world.size} process(es), last loss {last.get('loss_total', float('nan')):.4f}")
    finally:
        distributed.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
