"""Packaging: pyproject.toml and environment.yml agree, and the CI entry runs the full offline test suite.

conda cannot be run here, so the agreement of the two dependency lists is checked by parsing both.
"""
from __future__ import annotations

import os
import re
import shlex
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
# What the issue says the package must depend on (runtime) and what the dev extra must hold.
REQUIRED_RUNTIME = {"torch", "torchvision", "timm", "papermill", "jupyterlab", "pandas", "seaborn", "tqdm"}


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def _environment() -> dict:
    return yaml.safe_load((REPO / "environment.yml").read_text(encoding="utf-8"))


def _key(req: Requirement) -> tuple[str, str, tuple[str, ...], str]:
    """Comparable form of a requirement: canonical name, normalised specifier, extras, marker."""
    return (canonicalize_name(req.name), str(SpecifierSet(str(req.specifier))), tuple(sorted(req.extras)),
            str(req.marker or ""))


def _pip_section(env: dict) -> list[str]:
    sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(sections) == 1, "environment.yml must have exactly one pip: section"
    return [str(item) for item in sections[0]]


def _make_rule(target: str) -> tuple[str, list[str]]:
    """(prerequisites, recipe lines) of ``target`` in the Makefile."""
    lines = (REPO / "Makefile").read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        match = re.match(rf"^{re.escape(target)}\s*:(?!=)(.*)$", line)
        if match:
            recipe = []
            for follow in lines[i + 1:]:
                if not follow.startswith("\t"):
                    break
                recipe.append(follow.strip())
            return match.group(1).strip(), recipe
    raise AssertionError(f"Makefile has no {target!r} rule")


def test_pyproject_and_environment_yml_declare_the_same_requirements():
    project = _pyproject()["project"]
    declared = [Requirement(r) for r in project["dependencies"]]
    declared += [Requirement(r) for r in project["optional-dependencies"]["dev"]]
    pip_items = _pip_section(_environment())
    installs_project = [i for i in pip_items if re.fullmatch(r"-e\s+\.(\[[\w,]+\])?|\.(\[[\w,]+\])?", i.strip())]
    assert installs_project, "environment.yml's pip section must install the project itself (`-e .`)"
    mirrored = [Requirement(i) for i in pip_items if i not in installs_project]

    declared_keys = {_key(r) for r in declared}
    mirrored_keys = {_key(r) for r in mirrored}
    only_pyproject = sorted(declared_keys - mirrored_keys)
    only_env = sorted(mirrored_keys - declared_keys)
    assert not only_pyproject and not only_env, (
        f"pyproject.toml (dependencies + dev extra) and environment.yml (pip section) disagree.\n"
        f"  only in pyproject.toml: {only_pyproject}\n  only in environment.yml: {only_env}"
    )
    # no duplicates hiding a conflicting pin in either file
    assert len({k[0] for k in declared_keys}) == len(declared), "a package is listed twice in pyproject.toml"
    assert len({k[0] for k in mirrored_keys}) == len(mirrored), "a package is listed twice in environment.yml"


def test_declared_dependencies_cover_the_issue_list():
    project = _pyproject()["project"]
    runtime = {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}
    assert REQUIRED_RUNTIME <= runtime, f"missing runtime dependencies: {sorted(REQUIRED_RUNTIME - runtime)}"
    dev = {canonicalize_name(Requirement(r).name) for r in project["optional-dependencies"]["dev"]}
    assert "pytest" in dev


def test_environment_python_satisfies_requires_python():
    env = _environment()
    assert "conda-forge" in env["channels"]
    pythons = [d for d in env["dependencies"] if isinstance(d, str) and re.match(r"^python\b", d)]
    assert len(pythons) == 1, "environment.yml must pin python once"
    version = re.sub(r"^python\s*=*\s*", "", pythons[0])
    assert re.fullmatch(r"\d+\.\d+(\.\d+)?", version), f"unexpected python pin {pythons[0]!r}"
    assert version in SpecifierSet(_pyproject()["project"]["requires-python"])
    assert "pip" in env["dependencies"], "environment.yml must install pip to run its pip: section"


def test_makefile_torch_pin_satisfies_pyproject():
    """The torch build the Makefile installs must satisfy what pyproject.toml declares."""
    text = (REPO / "Makefile").read_text(encoding="utf-8")
    match = re.search(r"^TORCH_SPEC\s*\?=\s*(.+)$", text, re.MULTILINE)
    assert match, "Makefile should define TORCH_SPEC"
    declared = {canonicalize_name(Requirement(r).name): Requirement(r)
                for r in _pyproject()["project"]["dependencies"]}
    for spec in match.group(1).split():
        pinned = Requirement(spec)
        versions = [s.version for s in pinned.specifier if s.operator == "=="]
        assert versions, f"TORCH_SPEC entry {spec!r} should pin an exact version"
        name = canonicalize_name(pinned.name)
        assert name in declared, f"{name} pinned in the Makefile but not declared in pyproject.toml"
        assert declared[name].specifier.contains(versions[0]), f"{spec} violates {declared[name]}"


def test_make_test_runs_the_whole_suite_offline():
    prereqs, recipe = _make_rule("test")
    assert "install" in prereqs.split(), "`make test` must install first so it works from a clean clone"
    pytest_lines = [line for line in recipe if re.search(r"-m\s+pytest|\bpytest\b", line)]
    assert len(pytest_lines) == 1, f"`make test` should run pytest once, recipe: {recipe}"
    words = shlex.split(pytest_lines[0])
    env_words = words[: words.index(next(w for w in words if "python" in w or w.endswith("pytest")))]
    exported = re.search(r"^export\s+HF_HUB_OFFLINE\s*:?=\s*1\s*$", (REPO / "Makefile").read_text(), re.MULTILINE)
    assert "HF_HUB_OFFLINE=1" in env_words or exported, "`make test` must set HF_HUB_OFFLINE=1 for pytest"
    after = words[words.index("pytest") + 1:]
    weakening = [w for w in after if w in {"-k", "-m", "-x", "--lf", "--deselect", "--co"} or w.startswith("tests/")]
    assert not weakening, f"`make test` must run the whole suite, found {weakening}"


def test_ci_entry_calls_make_test():
    ci = REPO / ".ci" / "run"
    assert os.access(ci, os.X_OK), ".ci/run must be executable"
    lines = [line.strip() for line in ci.read_text(encoding="utf-8").splitlines()]
    assert lines[0].startswith("#!"), ".ci/run needs a shebang"
    commands = [line for line in lines[1:] if line and not line.startswith("#")]
    assert any(re.fullmatch(r"(exec\s+)?make\s+test", c) for c in commands), f".ci/run must call `make test`: {commands}"
    assert any(re.match(r"set\s+-\w*e", c) for c in commands), ".ci/run must stop on the first failure (set -e)"
    # nothing that would weaken or bypass the test run
    assert not any(re.search(r"\|\|\s*true|PYTEST_ADDOPTS|-k\s", c) for c in commands), commands
