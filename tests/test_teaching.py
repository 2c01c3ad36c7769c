"""The notebooks teach and stay true: each opens with "What you will learn" and ends with a summary and exercises;
what their prose says about a profile's seeds, switches and settings agrees with :mod:`sisnet.config`; and
neither the notebooks nor the executed copies a reader opens speak of issues or goals set elsewhere."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sisnet.config import PROFILE_SETTINGS, get_config

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

_PROFILE = r"`?(smoke|cpu|paper)`?"
_SEEDS = r"(\d+(?:\s*(?:,|and)\s*\d+)+|\d+\s*(?:-|–|to)\s*\d+)"
#: Words that name a ProfileSettings switch in prose, and the switch.
SWITCH_WORDS = {"comparison": "init_comparison"}
ELSEWHERE = re.compile(r"\b(issues?|goals?)\b", re.IGNORECASE)


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def prose(cells: list[dict]) -> str:
    """Markdown cells and the commented lines of code cells (with the name a comment explains): what a reader reads."""
    parts = []
    for c in cells:
        if c["cell_type"] == "markdown":
            parts.append(_source(c))
        else:
            parts.extend(line for line in _source(c).splitlines() if "#" in line)
    return "\n".join(parts)


def _seed_list(text: str) -> tuple[int, ...]:
    span = re.fullmatch(r"(\d+)\s*(?:-|–|to)\s*(\d+)", text.strip())
    if span:
        return tuple(range(int(span.group(1)), int(span.group(2)) + 1))
    return tuple(int(s) for s in re.findall(r"\d+", text))


def profile_claims(text: str) -> list[tuple[str, str, object]]:
    """``(profile, what, value)`` for each statement in ``text`` about a profile's seeds, switches or settings.

    Recognised: "seeds 0-4 for cpu", "(0, 1, 2 for cpu)" in a sentence about seeds, "the `cpu` profile's seeds
    0, 1, 2, 3, 4"; "on for the `smoke` profile and off for `cpu` and `paper`" in a sentence naming a switch
    (:data:`SWITCH_WORDS`); "`small_view="degrade"`, the `cpu` profile's choice" and "the `cpu` profile's
    `small_view="degrade"`".
    """
    claims: list[tuple[str, str, object]] = []
    for sentence in re.split(r"(?<=[.;])\s|\n", text):
        if "seed" in sentence:
            for m in re.finditer(_SEEDS + r"\s*\)?,?\s*(?:for|in|under)\s+(?:the\s+)?" + _PROFILE, sentence):
                claims.append((m.group(2), "seeds", _seed_list(m.group(1))))
            for m in re.finditer(_PROFILE + r"(?:\s+profile)?(?:'s)?\s+(?:\w+\s+){0,3}?seeds?\s*(?:are|is|=|:)?\s*\(?"
                                 + _SEEDS, sentence):
                claims.append((m.group(1), "seeds", _seed_list(m.group(2))))
        for word, switch in SWITCH_WORDS.items():
            if word not in sentence:
                continue
            for m in re.finditer(r"\b(on|off)\s+for\s+((?:(?:the\s+)?" + _PROFILE.replace("(", "(?:")
                                 + r"(?:\s+profiles?)?(?:,\s*|\s+and\s+|\s+or\s+)?)+)", sentence):
                for profile in re.findall(_PROFILE, m.group(2)):
                    claims.append((profile, switch, m.group(1) == "on"))
        for m in re.finditer(r"`(\w+)=\"?([\w.]+)\"?`,?\s+the\s+" + _PROFILE + r" profile's", sentence):
            claims.append((m.group(3), m.group(1), m.group(2)))
        for m in re.finditer(r"the\s+" + _PROFILE + r" profile's\s+`(\w+)=\"?([\w.]+)\"?`", sentence):
            claims.append((m.group(1), m.group(2), m.group(3)))
    return claims


def wrong_claims(claims: list[tuple[str, str, object]]) -> list[str]:
    """The claims that :mod:`sisnet.config` contradicts, as readable lines."""
    wrong = []
    for profile, what, value in claims:
        settings = PROFILE_SETTINGS[profile]
        if what == "seeds":
            actual = tuple(settings.seeds)
        elif hasattr(settings, what):
            actual = getattr(settings, what)
        else:
            actual = str(getattr(get_config(profile), what))
        if actual != value:
            wrong.append(f"{profile}: prose says {what} = {value!r}, sisnet.config has {actual!r}")
    return wrong


def test_claim_parser_catches_the_statements_it_is_for():
    stale = ("init_seeds = None  # None: the profile's Table 2 seeds (0, 1, 2 for cpu)\n"
             "The comparison is on for the `cpu` and `smoke` profiles and off for `paper`, where it is long.\n"
             "with `small_view=\"native\"`, the `cpu` profile's choice.")
    claims = profile_claims(prose([{"cell_type": "markdown", "source": [stale]}]))
    assert ("cpu", "seeds", (0, 1, 2)) in claims
    assert {c for c in claims if c[1] == "init_comparison"} == {
        ("cpu", "init_comparison", True), ("smoke", "init_comparison", True), ("paper", "init_comparison", False)}
    assert ("cpu", "small_view", "native") in claims
    wrong = wrong_claims(claims)
    assert any("cpu: prose says seeds" in w for w in wrong)
    assert any("cpu: prose says init_comparison = True" in w for w in wrong)
    assert any("small_view" in w for w in wrong)
    true = f"seeds {PROFILE_SETTINGS['cpu'].seeds[0]}-{PROFILE_SETTINGS['cpu'].seeds[-1]} for `cpu`"
    assert profile_claims(true) == [("cpu", "seeds", tuple(PROFILE_SETTINGS["cpu"].seeds))]
    assert not wrong_claims(profile_claims(true))
    assert profile_claims("seeds = [0, 1] runs faster") == []  # no profile named: no claim


def test_notebook_prose_agrees_with_the_profiles():
    found, wrong = 0, []
    for path in NOTEBOOKS:
        claims = profile_claims(prose(_cells(path)))
        found += len(claims)
        wrong += [f"{path.name}: {w}" for w in wrong_claims(claims)]
    assert not wrong, "\n".join(wrong)
    assert found >= 6  # the parser reads the notebooks' statements (02's comparison switch twice, the second view)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_opens_with_what_you_will_learn_and_ends_with_summary_and_exercises(path):
    cells = _cells(path)
    markdown = [(i, _source(c)) for i, c in enumerate(cells) if c["cell_type"] == "markdown"]
    opening = next((text for _, text in markdown[:2] if "What you will learn" in text), None)
    assert opening is not None, f"{path.name}: no 'What you will learn' in its first two markdown cells"
    section = opening.split("What you will learn", 1)[1].split("\n#", 1)[0]
    bullets = [line for line in section.splitlines() if line.startswith("- ")]
    assert 2 <= len(bullets) <= 4, f"{path.name}: {len(bullets)} bullets under 'What you will learn'"
    summary = [i for i, text in markdown if re.search(r"^## Summary\b", text, re.M)]
    assert summary and summary[-1] >= len(cells) - 3, f"{path.name}: no '## Summary' near its end"
    last = markdown[-1][1]
    assert markdown[-1][0] == len(cells) - 1 and "## Exercises" in last, f"{path.name}: does not end with exercises"
    exercises = re.findall(r"^\d+\. ", last.split("## Exercises", 1)[1], re.M)
    assert 2 <= len(exercises) <= 3, f"{path.name}: {len(exercises)} exercises"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_do_not_speak_of_issues_or_goals(path):
    hits = [m.group(0) for c in _cells(path) for m in ELSEWHERE.finditer(_source(c))]
    assert not hits, f"{path.name} speaks of {hits}"


def test_generated_text_does_not_speak_of_issues_or_goals():
    """What the generators write for a reader: README.md, the docs and every results folder's claims.md. (The
    executed notebooks under results/ are regenerated by the next ``make reproduce``; their generated prose now comes
    from the same renderers, :mod:`sisnet.report.claims` and :mod:`sisnet.report.readme`.)"""
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "results").rglob("claims.md"))]
    assert len(files) >= 3
    hits = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in files for m in ELSEWHERE.finditer(p.read_text(encoding="utf-8"))]
    assert not hits, hits
