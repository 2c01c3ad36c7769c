"""What made a result: the git commit, package versions and the machine (used by reproduce, report, benchmark).

Every committed table, figure, manifest and benchmark file names the code and the machine that produced
it; this module is the one place that finds those facts.
"""
from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

__all__ = ["project_root", "git_commit", "package_versions", "machine", "load_average", "PACKAGES"]

#: The packages whose versions a manifest records.
PACKAGES = ("sisnet", "torch", "torchvision", "timm", "numpy", "pandas", "scipy", "matplotlib", "seaborn",
            "pillow", "papermill", "nbformat", "ipykernel", "tqdm")


def project_root(start: Path | None = None) -> Path | None:
    """The nearest folder at or above ``start`` holding this project's ``pyproject.toml`` and ``sisnet/``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "sisnet").is_dir():
            return folder
    return None


def git_commit(path: str | os.PathLike | None = None) -> str | None:
    """The git commit of the project (``<sha>`` or ``<sha>-dirty``), or ``None`` outside a git checkout.

    ``-dirty`` means tracked files differ from the commit, leaving out ``results/``: that is where the
    notebooks write, so a re-run that replaces committed results would otherwise stamp itself dirty.
    """
    cwd = Path(path) if path is not None else (project_root() or Path.cwd())
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


def package_versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """``{"python": ..., <package>: version or None}`` for ``packages``."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            if name == "sisnet":
                import sisnet

                out[name] = getattr(sisnet, "__version__", None)
            else:
                out[name] = None
    return out


def _cpu_name() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
    except OSError:
        pass
    return cpu


def _usable_cores() -> int | None:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count()


def _device_name() -> str:
    try:
        import torch

        if torch.cuda.is_available():
            return f"cuda: {torch.cuda.get_device_name(0)}"
    except Exception:  # pragma: no cover - torch is a dependency
        pass
    return "cpu"


def load_average() -> str:
    """``"load average 0.51 0.32 0.20"``, or ``""`` where the OS does not report it."""
    try:
        return "load average %.2f %.2f %.2f" % os.getloadavg()
    except OSError:  # pragma: no cover
        return ""


def machine() -> dict[str, object]:
    """The machine a result was measured on: OS, CPU model, usable cores, accelerator."""
    return {"system": platform.platform(), "machine": platform.machine(), "processor": _cpu_name(),
            "cpu_count": os.cpu_count(), "usable_cores": _usable_cores(), "device": _device_name()}
