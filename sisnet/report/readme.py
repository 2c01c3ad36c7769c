"""README's generated blocks and each results folder's ``claims.md``, read from the committed results files.

``python -m sisnet.reproduce --update-readme`` rewrites the text between each pair of markers (:data:`BLOCKS`) and
writes ``claims.md`` into every results folder that has paired tables (:func:`write_claims`); a test checks that
the committed files equal what the committed results produce. Tables are read through
:mod:`sisnet.report.registry`; claims are rendered by :mod:`sisnet.report.claims`.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from sisnet.report.claims import (SYNTHETIC_PRIMARY, claims_table, family_sentence, forest_plot, render_families,
                                  with_family)
from sisnet.report.io import save_figure, to_markdown
from sisnet.report.registry import TABLES
from sisnet.report.tables import table2_wide, table3_paired

__all__ = ["BLOCKS", "mean_target_rank1", "answer_block", "use_block", "results_block", "claims_markdown", "write_claims", "readme_block",
           "update_readme"]

#: what each notebook teaches (the run times beside it are read from the manifests)
NOTEBOOK_LESSONS = {
    "00_sisnet_by_hand.ipynb": "SiSNet by hand: one person near and far, the CAM step by step, the DRC loss checked "
                               "against `DRCLoss`",
    "01_data.ipynb": "the synthetic multi-scale set, and the evaluation protocol worked through on one query",
    "02_training.ipynb": "one SiSNet+DRC run: the losses, the DRC formula beside its code, the training curves",
    "03_ablation.ipynb": "Table 2: the grid of methods x losses over seeds, paired verdicts, the augmentation control",
    "04_table1.ipynb": "Table 1: the paper's published rows beside this run's measured ones, and why they differ",
    "05_table3.ipynb": "Table 3: does one scale's feature become as good as both (the cascaded gap)",
    "06_fig3_cam.ipynb": "Fig. 3: CAMs at two scales, where they lie, and whether the models use the person",
    "07_scale_robustness.ipynb": "how rank-1 / mAP fall as the query resolution drops",
    "08_your_images.ipynb": "your own footage: tracking annotations -> ReID crops -> features -> search; the "
                            "synthetic-trained models on real pedestrians",
    "09_real_pedestrians.ipynb": "Table 2's claims on real pedestrians (CUHK03 + CUHK01 -> VIPeR, PRID, GRID, i-LIDS)",
    "10_scale_study.ipynb": "the controlled scale study: a cue that fades with distance, validation that decides, "
                            "far -> near retrieval",
}


def _minutes(seconds: float) -> str:
    whole = int(round(seconds))
    return f"{whole // 60} min {whole % 60} s"


def _json(path: Path) -> dict | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _primary(paired: pd.DataFrame) -> pd.DataFrame:
    return with_family(paired).query("family == 'primary'")


def _experiments(results: Path, profile: str) -> list[tuple[str, str, pd.DataFrame]]:
    """``(heading, folder, primary family)`` of every experiment with results: synthetic, real, scale."""
    out = []
    for heading, kind, table in (("Synthetic data", "synthetic", TABLES.table2_paired),
                                 ("Real pedestrians", "real", TABLES.real_paired),
                                 ("Controlled scale study", "scale", TABLES.scale_paired)):
        paired = table.read(results / profile / kind / "tables")
        if paired is not None:
            out.append((heading, kind, _primary(paired)))
    return out


def _what_ran(results: Path, profile: str, kind: str) -> str:
    folder = results / profile / kind
    if kind == "synthetic":
        m, t = _json(folder / "manifest.json") or {}, _json(results / "scratch" / profile / kind / "timing.json")
        from sisnet.config import get_config, profile_settings

        seeds, cfg = ", ".join(str(s) for s in profile_settings(profile).seeds), get_config(profile)
        cores = (m.get("platform") or {}).get("usable_cores", "?")
        took = f"; `make reproduce` {_minutes(t['wall_seconds'])} from scratch" if t else ""
        return (f"(`{folder.as_posix()}/`, notebooks 01-08): the embedded synthetic set, {cfg.backbone} at "
                f"{cfg.img_height}x{cfg.img_width}, 4 methods x 2 losses, seeds "
                f"{seeds}, {(m.get('platform') or {}).get('processor', '?')} with {cores} usable cores{took}.")
    if kind == "real":
        m = _json(folder / "manifest.json") or {"settings": {}, "machine": {}}
        st = m["settings"]
        return (f"(`{folder.as_posix()}/`, notebook 09): trained on CUHK03 + CUHK01, tested on VIPeR, PRID, GRID and "
                f"i-LIDS, seeds {str(st.get('seeds')).replace(',', ', ')}, {st.get('workers')} CPU workers on "
                f"{m['machine'].get('processor', '?')}, {_minutes(m.get('wall_seconds', 0))} from an empty runs cache."
                + _real_rank1(results, profile))
    st = TABLES.scale_settings.read(folder / "tables")
    if st is None:
        return f"(`{folder.as_posix()}/`)."
    r = st.iloc[0]
    extra = ", ".join(f"{k} {r[k]}" for k in ("lr", "epochs") if k in r)
    check = TABLES.scale_check.read(folder / "tables")
    gate = ""
    if check is not None:
        c = check.iloc[0]
        gate = (f" Scale check on validation, before the seeds: far -> near rank-1 {c['far_near_rank1']:.1f} against "
                f"{c['reference_rank1']:.1f} near -> near, a gap of {c['gap']:.1f} (at least {c['required_gap']:g} "
                f"required): **{'passes' if c['passes'] else 'fails'}**"
                + ("" if c["passes"] else ", so this test bed showed no scale problem for these models and its "
                   "verdicts speak for that") + ".")
    return (f"(`{folder.as_posix()}/`, notebook 10): generated far/near people, seeds "
            f"{str(r['seeds']).replace(',', ', ')}" + (f", {extra}" if extra else "")
            + f", {_minutes(float(r['wall_seconds']))} from an empty runs cache on {r['workers']} CPU workers, load average "
            f"{r['load_average_start']} at its start and {r['load_average_end']} at its end.\n{gate.strip()}"
            + _plateau_line(TABLES.scale_plateau.read(folder / "tables")))


def _real_rank1(results: Path, profile: str) -> str:
    """README's sentence on mean target rank-1 (:func:`mean_target_rank1`), from the committed tables."""
    summary = TABLES.real_summary.read(results / profile / "real" / "tables")
    if summary is None:
        return ""
    return " " + mean_target_rank1(summary, TABLES.synthetic_on_real.read(results / profile / "synthetic" / "tables"))


def mean_target_rank1(real_summary: pd.DataFrame | None, on_real: pd.DataFrame | None) -> str:
    """Mean target rank-1 (standard protocol): of the real Baseline (``real_summary``, the real experiment's table),
    of ImageNet only (from that table, else from ``on_real``) and of the synthetic-trained models where ``on_real``
    (notebook 08's table) scored them."""
    parts = []
    if real_summary is not None:
        dg = real_summary[real_summary["protocol_name"] == "targets mean, standard"].set_index("method")["rank1_mean"]
        parts += [f"Baseline {dg.get('Baseline', float('nan')):.1f} %",
                  f"ImageNet only {dg.get('ImageNet only', float('nan')):.1f} %"]
    if on_real is not None:
        r = on_real[(on_real["set"] == "targets mean") & (on_real["protocol"] == "standard")]
        trained, imagenet = r[r["trained_on"] != "ImageNet"], r[r["trained_on"] == "ImageNet"]
        if real_summary is None and len(imagenet):
            parts.append(f"ImageNet only {imagenet['rank1'].iloc[0]:.1f} %")
        parts.append(f"the synthetic-trained models (notebook 08, seed {int(trained['seed'].iloc[0])}) "
                     f"{trained['rank1'].min():.1f}-{trained['rank1'].max():.1f} %")
    return "Mean target rank-1: " + "; ".join(parts) + "."


def _plateau_line(plateau: pd.DataFrame | None) -> str:
    if plateau is None:
        return ""
    test = plateau[plateau["set"] == "test"]
    big = test.loc[test["move"].abs().idxmax()]
    return (f"\nTwice the schedule (seed 0) moves {int((~test['within_tolerance']).sum())} of {len(test)} arm-protocol "
            f"pairs by more than the plateau tolerance (largest {big['move']:+.1f} mAP, {big['method']}, "
            f"{big['protocol']}): {'not ' if not test['within_tolerance'].all() else ''}at a plateau.")


def _control_and_drc(results: Path, profile: str, found: list) -> list[str]:
    """Where the tables answer the augmentation control and DRC, and what the DRC term weighs."""
    drc = TABLES.drc_share.read(results / profile / "synthetic" / "tables")
    share = ""
    if drc is not None:
        r = drc.iloc[0]
        share = (f" The DRC term is {100 * r['loss_share_last_epoch']:.1f} % of the loss in the last epoch and "
                 f"{100 * r['grad_share']:.1f} % of the gradient on the last feature maps (training mode) at lambda "
                 f"{r['drc_weight']:g} (synthetic, seed 0)")
    scale = TABLES.scale_drc_share.read(results / profile / "scale" / "tables")
    if scale is not None:
        one = scale[scale["schedule"] == "1x"]
        last = one[one["epoch"] == one["epoch"].max()]
        share += (f"{';' if share else ' The DRC term is'} {100 * last['share'].mean():.1f} % of the training loss in "
                  f"the scale study's last epoch ({len(last)} runs)")
    return [f"- **The augmentation control** (Baseline+LR aug., not in the paper) is each table's first row (SiSNet "
            f"minus it); **DRC** is the second row (SiSNet+DRC minus SiSNet).{share + '.' if share else ''}"]


def answer_block(results_dir: str | Path = "results", profile: str = "cpu") -> str:
    """README's top: what was run, each experiment's primary claims with their Holm-adjusted intervals, the
    augmentation control, the DRC share and the tally over the primary families; the full lists are linked."""
    results = Path(results_dir)
    found = _experiments(results, profile)
    if not found:
        return f"_No results in `{results.as_posix()}/{profile}/` yet (run `make reproduce`)._\n"
    fam = SYNTHETIC_PRIMARY
    lines = ["## The answer",
             f"Each experiment's primary family: {', '.join(fam.comparisons)}; {fam.loss} loss; {fam.metric} under the "
             "experiment's two primary protocols (the table's columns); differences paired by seed, in points, with "
             "Holm-adjusted 95 % "
             "intervals (*supported*: the whole interval above 0; *not distinguishable*: the experiment cannot "
             "tell, not that the methods are equal).", ""]
    for heading, kind, primary in found:
        forest = sorted((results / profile / kind / "figures").glob("*forest*.png"))
        plot = f" [Forest plot]({forest[0].as_posix()})." if forest else ""
        lines += [f"**{heading}** {_what_ran(results, profile, kind)}",
                  f"{family_sentence(primary, 'Primary family')}{plot}", "",
                  claims_table(primary).rstrip(), ""]
    lines += _control_and_drc(results, profile, found)
    allp = pd.concat([p for _, _, p in found], ignore_index=True)
    counts = allp["verdict_holm"].value_counts()
    lines.append(f"- **Take-away**: of the {len(allp)} primary claims, {counts.get('supported', 0)} supported, "
                 f"{counts.get('reversed', 0)} reversed, {counts.get('not distinguishable', 0)} not distinguishable "
                 f"(Holm-adjusted within each experiment). " + _take_away(allp))
    links = [f"[{kind}]({(results / profile / kind / 'claims.md').as_posix()})" for _, kind, _ in found]
    lines.append(f"- Every claim, primary and exploratory, with its interval: {', '.join(links)}.")
    return "\n".join(lines) + "\n"


def _take_away(primary: pd.DataFrame) -> str:
    """Which primary claims the intervals decide, or that none is decided."""
    decided = primary[primary["verdict_holm"] != "not distinguishable"]
    if not len(decided):
        return ("No primary claim is decided at these seeds: the experiments show neither SiSNet nor DRC helping, "
                "nor hurting, beyond what the intervals allow.")
    return "Decided: " + "; ".join(f"{r['comparison']} {r['protocol']} **{r['verdict_holm']}**"
                                   for _, r in decided.iterrows()) + "; every other primary claim is not decided."


def use_block(results_dir: str | Path = "results", profile: str = "cpu") -> str:
    """Two tables: the ways to use the companion with their measured times (from the manifests), and the
    notebooks with what each teaches and its run time."""
    results = Path(results_dir)
    syn = results / profile / "synthetic"
    quick, scratch = _json(results / "quick" / profile / "synthetic" / "manifest.json"), \
        _json(results / "scratch" / profile / "synthetic" / "timing.json")
    real = _json(results / profile / "real" / "manifest.json")
    scale = _json(results / profile / "scale" / "manifest.json")

    def took(m: dict | None, key: str, where: Path) -> str:
        return f"{_minutes(float(m[key]))} (`{where.as_posix()}`)" if m else "not timed in `results/`"

    folders = [f for f in (syn, results / profile / "real", results / profile / "scale") if any(f.glob("[01]*.ipynb"))]
    rows = [("Read the executed notebooks", ", ".join(f"[`{f.as_posix()}/`]({f.as_posix()}/)" for f in folders)
             + " (GitHub renders them; or `jupyter lab` there)", "0 min"),
            ("Smoke run", "`python -m sisnet.reproduce --profile smoke`", "not timed in `results/` (what the tests run)"),
            ("One seed of the grid", "`python -m sisnet.reproduce --quick`",
             took(quick, "wall_seconds_total", results / "quick" / profile / "synthetic" / "manifest.json")),
            ("Everything, synthetic", "`make reproduce`",
             took(scratch, "wall_seconds", results / "scratch" / profile / "synthetic" / "timing.json")),
            ("The controlled scale study", "`make scale` (`python -m sisnet.experiments scale`)",
             took(scale, "wall_seconds", results / profile / "scale" / "manifest.json")),
            ("Real pedestrians", "`python -m sisnet.experiments real` (data: see *Real datasets*)",
             took(real, "wall_seconds", results / profile / "real" / "manifest.json")),
            ("A GPU", "`make reproduce PROFILE=paper DATASET=market1501`, `tools/gpu_real.sh`",
             "not timed in `results/` (see *Training on GPUs*)")]
    lines = ["| way | command | measured time |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    per = (_json(results / "scratch" / profile / "synthetic" / "manifest.json") or _json(syn / "manifest.json")
           or {}).get("notebooks", {})
    lines += ["", "| notebook | what you learn | run time |", "|---|---|---|"]
    for name, lesson in NOTEBOOK_LESSONS.items():
        own = {"09": real, "10": scale}.get(name[:2])
        t = (own or {}).get("wall_seconds") if name[:2] in ("09", "10") else per.get(name, {}).get("wall_seconds")
        lines.append(f"| `{name}` | {lesson} | {_minutes(t) if t is not None else '-'} |")
    lines.append("\nRun times of notebooks 00-08 from `make reproduce` from scratch (its manifest; 00 joined the run "
                 "after it, so it shows none); 09's and 10's are their experiments' commands, training included.")
    return "\n".join(lines) + "\n"


def _validation_lines(choices: pd.DataFrame) -> list[str]:
    lines = ["### Settings chosen on validation", "",
             "Chosen on identities held out from the training split, never the test split (`validation_choices.csv`; "
             "mean validation rank-1; the chosen candidate in bold):", ""]
    for name, group in choices[~choices["candidate"].str.startswith("reference")].groupby("choice", sort=False):
        lines.append(f"- {name}: " + "; ".join(f"{'**' if c else ''}{cand} {r1:.1f}{'**' if c else ''}" for cand, r1, c
                                               in zip(group["candidate"], group["val_rank1"], group["chosen"].astype(bool))))
    return lines + ["", "Made, in order, by:", ""] + [f"- `{c}`" for c in dict.fromkeys(choices["command"])]


def results_block(results_dir: str | Path = "results", profile: str = "cpu", dataset: str = "synthetic") -> str:
    """README's measured-results block for ``<results_dir>/<profile>/<dataset>``: the run, the settings chosen on
    validation, the convergence check, Table 2 and the benchmarks' tally; the claims are in ``claims.md``."""
    results = Path(results_dir)
    out = results / profile / dataset
    tables = out / "tables"
    lines = [f"## Measured results ({profile} profile, {dataset} data)", "",
             f"_Generated by `python -m sisnet.reproduce --update-readme` from `{out.as_posix()}/`; not edited by hand. "
             f"Every paired claim: [`claims.md`]({(out / 'claims.md').as_posix()})._", ""]
    m = _json(out / "manifest.json")
    if m is None:
        lines += [f"No complete run in `{out.as_posix()}` (no `manifest.json`).", ""]
    else:
        lines += [f"**The run.** Commit `{str(m.get('commit'))[:12]}`, finished {m.get('finished_at')}, the notebooks "
                  f"{_minutes(float(m['wall_seconds_total']))} with the runs cache filled.", ""]
    cost = TABLES.training_cost.read(tables)
    if cost is not None:
        lines += [f"**Training cost.** {int(cost['n_runs'].sum())} runs, {cost['total_seconds'].sum() / 60:.0f} min of "
                  f"run wall time, one thread each (`training_cost.csv`).", ""]
    choices = TABLES.validation_choices.read(tables)
    if choices is not None:
        lines += _validation_lines(choices) + [""]
    check = TABLES.convergence_2x.read(tables)
    if check is not None:
        big = check.loc[check["rank1_diff"].abs().idxmax()]
        lines += [f"**Convergence.** Twice the schedule (seed {int(check['seed'].iloc[0])}) keeps rank-1 within the "
                  f"limit for {int(check['within_limit'].sum())} of {len(check)} configurations; largest change "
                  f"{big['rank1_diff']:+.1f} ({big['loss']} {big['method']}; `convergence_2x.csv`).", ""]
    summary = TABLES.table2.read(tables)
    if summary is not None:
        lines += ["### Table 2", "", to_markdown(table2_wide(summary)).rstrip(), "",
                  "Mean ± sample std over seeds, percent; either-scale feature, last evaluation of each run.", ""]
    other = TABLES.table2_other_view_paired.read(tables)
    if other is not None:
        lines += [f"{family_sentence(_primary(other), 'Table 2 with the other second view, primary family')} "
                  "Every row in `claims.md`.", ""]
    triplet = TABLES.triplet_diagnosis_paired.read(tables)
    if triplet is not None:
        lines += [f"{family_sentence(triplet, 'Exploratory: the triplet loss on the Baseline (S.+T. - S.)')} "
                  "Unadjusted; every row in `claims.md`.", ""]
    bench = results / "benchmarks" / "benchmarks.csv"
    if bench.is_file():
        b = pd.read_csv(bench)
        held = b["holds"].dropna().astype(str)
        lines += [f"**Benchmarks** (`python -m sisnet.benchmark`): {int((held == 'True').sum())} of {len(held)} thresholds "
                  f"met; [`{(results / 'benchmarks' / 'benchmarks.md').as_posix()}`]"
                  f"({(results / 'benchmarks' / 'benchmarks.md').as_posix()})."]
    return "\n".join(lines).rstrip() + "\n"


def claims_markdown(results_dir: str | Path, profile: str, kind: str) -> str | None:
    """``claims.md`` of ``<results_dir>/<profile>/<kind>``: every paired table there, rendered by
    :func:`sisnet.report.claims.render_families` (``None`` when the folder has none)."""
    tables = Path(results_dir) / profile / kind / "tables"
    parts = []
    specs = {"synthetic": ((TABLES.table2_paired, "Table 2"), (TABLES.table2_other_view_paired,
                                                               "Table 2 with the other second view"),
                           (TABLES.triplet_diagnosis_paired, "The triplet anomaly"),
                           (TABLES.triplet_schedule_paired, "The triplet anomaly against the schedule"),
                           (TABLES.person_reliance_paired, "What editing the query costs, S.+T. - S.")),
             "real": ((TABLES.real_paired, "Real pedestrians"),), "scale": ((TABLES.scale_paired, "Scale study"),)}
    for table, name in specs[kind]:
        frame = table.read(tables)
        if frame is not None:
            frame = frame.drop(columns=[c for c in ("second_view", "command") if c in frame])
            parts.append(f"## {name}\n\n_From `{table.name}.csv`._\n\n" + render_families(with_family(frame), name))
    runs = TABLES.table3_runs.read(tables) if kind == "synthetic" else None
    if runs is not None:
        gaps = table3_paired(runs).assign(family="exploratory")
        parts.append("## Table 3: the cascaded gap shrinks\n\n_From `table3_runs.csv`, paired by seed; positive = the "
                     "paper's reading._\n\n" + render_families(gaps, "Table 3"))
    if not parts:
        return None
    return (f"# Every paired claim in `{tables.parent.as_posix()}/`\n\n_Generated by `python -m sisnet.reproduce "
            "--update-readme`; not edited by hand. The tally counts the primary family only._\n\n"
            + "\n".join(parts))


def write_claims(results_dir: str | Path = "results", profile: str = "cpu") -> list[Path]:
    """Write ``claims.md`` into each results folder of ``profile`` that has paired tables, and the synthetic
    primary family's forest plot (``figures/synthetic_forest.png``; the real and the scale study's notebooks draw
    their own); returns the paths."""
    from sisnet.utils import atomic_write

    written = []
    syn = Path(results_dir) / profile / "synthetic"
    paired = TABLES.table2_paired.read(syn / "tables")
    if paired is not None:
        fig = forest_plot(_primary(paired), "Primary family, synthetic data (mAP, S.+T.)", unit="mAP points")
        written.append(save_figure(syn / "figures", "synthetic_forest", fig, show=False))
    for kind in ("synthetic", "real", "scale"):
        text = claims_markdown(results_dir, profile, kind)
        if text is not None:
            path = Path(results_dir) / profile / kind / "claims.md"
            with atomic_write(path, "w", encoding="utf-8") as fh:
                fh.write(text)
            written.append(path)
    return written


#: ``(start marker, end marker, maker)``: README's generated blocks
BLOCKS = (("<!-- ANSWER-START -->", "<!-- ANSWER-END -->", lambda r, p, d: answer_block(r, p)),
          ("<!-- USE-START -->", "<!-- USE-END -->", lambda r, p, d: use_block(r, p)),
          ("<!-- RESULTS-START -->", "<!-- RESULTS-END -->", results_block))


def readme_block(readme: str | Path, start: str, end: str) -> str:
    """The text between the markers of ``readme`` (``ValueError`` naming the file when they are missing)."""
    text = Path(readme).read_text(encoding="utf-8")
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise ValueError(f"{readme} must hold exactly one {start} ... {end} block; add the two marker lines.")
    return text[text.index(start) + len(start):text.index(end)].strip("\n") + "\n"


def update_readme(readme: str | Path, results_dir: str | Path = "results", profile: str = "cpu",
                  dataset: str = "synthetic") -> bool:
    """Rewrite ``readme``'s generated blocks (those whose markers it holds) and the ``claims.md`` files from the
    results; returns whether README changed."""
    from sisnet.utils import atomic_write

    readme = Path(readme)
    write_claims(results_dir, profile)
    text = old = readme.read_text(encoding="utf-8")
    for start, end, make in BLOCKS:
        if start in text:
            readme_block(readme, start, end)  # both markers, in order
            text = text[:text.index(start) + len(start)] + "\n" + make(results_dir, profile, dataset) + text[text.index(end):]
    if text != old:
        with atomic_write(readme, "w", encoding="utf-8") as fh:
            fh.write(text)
    return text != old
