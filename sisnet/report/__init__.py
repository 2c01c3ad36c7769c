"""Everything the notebooks do that is logic, split by role; ``from sisnet import report`` gives all of it.

The notebooks in ``notebooks/`` stay thin: each cell calls one function from here (or from
:mod:`sisnet.engine`, :mod:`sisnet.data`, :mod:`sisnet.paper`). One module per role:

- :mod:`~sisnet.report.context` -- :func:`setup` resolves a notebook's parameters into a
  :class:`NotebookContext` (paths, seeds); :func:`prepare_dataset` / :func:`load` give it its dataset.
- :mod:`~sisnet.report.io` -- :func:`save_table` / :func:`save_figure` write CSV + Markdown / PNG atomically
  into ``<results_dir>/<profile>/<dataset>/{tables,figures}/``, stamped with what made them.
- :mod:`~sisnet.report.tables` -- histories -> tables (pure pandas): :func:`runs_frame`, :func:`summarize`
  (mean +- std over seeds), :func:`cascade_gap` (Table 3), :func:`table1_with_measured` (Table 1).
- :mod:`~sisnet.report.runs` -- the Table 2 grid as runs: :func:`run_folder`, :func:`train`, :func:`run_grid`
  (trained or answered from the runs cache), :func:`load_models`.
- :mod:`~sisnet.report.measure` -- protocols on trained models: :func:`measure_protocols` (standard,
  cross-scale, re-ranking, native query heights), :func:`scale_robustness`.
- :mod:`~sisnet.report.cam_measures` -- CAMs across scales and on the person: :func:`cam_consistency`,
  :func:`cam_on_person_grid`, :func:`backbone_on_person`, :func:`two_view_agreement_grid` (CAM, class-free and
  similarity maps of the two views, every seed).
- :mod:`~sisnet.report.gradients` -- where a CAM cell's gradient comes from (:func:`cam_cell_sources`) and the
  DRC term's share of the loss and gradient (:func:`drc_share`).
- :mod:`~sisnet.report.query_edits` -- person or background: retrieval with edited queries
  (:func:`person_reliance_grid`).
- :mod:`~sisnet.report.triplet` -- why the triplet loss lowers the Baseline here (:func:`triplet_diagnosis`).
- :mod:`~sisnet.report.validation` / :mod:`~sisnet.report.schedule_checks` -- the validation sweep and the
  2x-schedule checks (run by ``python -m sisnet.experiments``; the notebooks read their tables).
- :mod:`~sisnet.report.protocol` -- the evaluation protocol worked through on one query (notebook 01).
- :mod:`~sisnet.report.registry` -- every result table declared once (:data:`TABLES`: name, maker, columns, title).
- :mod:`~sisnet.report.claims` -- paired claims rendered: :func:`render_claims` / :func:`render_families`, the forest plot.
- :mod:`~sisnet.report.figures` -- every figure, with one ranked-list drawer (:func:`~sisnet.report.figures.draw_ranked_lists`).

Metrics in histories are fractions in [0, 1]; every table and figure here shows percent.
"""
from __future__ import annotations

import warnings

with warnings.catch_warnings():
    # tqdm.auto warns once at import when ipywidgets is missing ("IProgress not found"), then falls back to text
    # bars (fine here). timm's hub client imports it, so it is imported here first, before anything else, quietly.
    warnings.simplefilter("ignore")
    import tqdm.auto  # noqa: F401

from sisnet.provenance import git_commit
from sisnet.report.context import load, prepare_dataset, setup
from sisnet.report.claims import claims_table, forest_plot, render_claims, render_families, with_family
from sisnet.report.figures import (
    fig3_cam,
    plot_cam_consistency,
    plot_mot_frame,
    plot_sample_grid,
    plot_scale_distribution,
    plot_scale_robustness,
    plot_search_results,
    plot_table2,
    plot_table3,
    plot_training,
    plot_worked_query,
    ranked_list_figure,
)
from sisnet.report.io import read_table, save_figure, save_table, to_markdown
from sisnet.report.cam_measures import (backbone_on_person, cam_agreement, cam_agreement_summary, cam_consistency,
                                      cam_mass_on_mask, cam_on_person, cam_on_person_grid, cam_on_person_summary,
                                      pearson_rows, MAP_KINDS, two_view_agreement, two_view_agreement_grid,
                                      two_view_agreement_summary)
from sisnet.report.gradients import cam_cell_sources, drc_share, drc_share_table
from sisnet.report.measure import measure_protocols, scale_robustness, split_scale_bins
from sisnet.report.query_edits import PERSON_EDITS, person_reliance, person_reliance_grid, person_reliance_paired
from sisnet.report.schedule_checks import convergence_frame, convergence_summary
from sisnet.report.triplet import triplet_diagnosis
from sisnet.report.validation import validation_evidence
from sisnet.report.protocol import protocol_example
from sisnet.report.registry import TABLES
from sisnet.report.runs import config_frame, grid_config, init_comparison, load_models, run_folder, run_grid, train
from sisnet.report.tables import (
    PROTOCOL_STANDARD,
    GridRun,
    cascade_gap,
    epochs_frame,
    evals_frame,
    last_eval,
    runs_frame,
    summarize,
    table1_wide_with_provenance,
    table1_with_measured,
    table2_effects,
    table2_paired,
    table2_wide,
    table3_measured,
    table3_paired,
    table3_side_by_side,
    training_cost,
)

__all__ = [
    "setup", "load", "prepare_dataset",
    "git_commit", "save_table", "read_table", "save_figure", "to_markdown",
    "evals_frame", "epochs_frame", "last_eval", "GridRun", "runs_frame", "summarize", "table2_wide",
    "table2_effects", "table2_paired", "cascade_gap", "table3_measured", "table3_side_by_side", "table1_with_measured",
    "table1_wide_with_provenance", "training_cost", "PROTOCOL_STANDARD",
    "grid_config", "config_frame", "run_folder", "train", "run_grid", "init_comparison", "load_models",
    "PERSON_EDITS", "measure_protocols", "split_scale_bins", "scale_robustness", "pearson_rows",
    "cam_agreement", "cam_agreement_summary", "cam_consistency", "cam_mass_on_mask", "cam_on_person",
    "plot_sample_grid", "plot_scale_distribution", "plot_training",
    "plot_table2", "plot_table3", "plot_scale_robustness", "plot_cam_consistency", "fig3_cam",
    "ranked_list_figure", "plot_mot_frame", "plot_search_results", "plot_worked_query",
    "protocol_example",
    "TABLES", "render_claims", "render_families", "with_family", "claims_table", "forest_plot", "table3_paired",
    "convergence_frame", "convergence_summary", "validation_evidence",
    "drc_share", "drc_share_table", "cam_on_person_grid", "cam_on_person_summary", "backbone_on_person",
    "triplet_diagnosis", "person_reliance", "person_reliance_grid", "person_reliance_paired",
    "cam_cell_sources", "MAP_KINDS", "two_view_agreement", "two_view_agreement_grid", "two_view_agreement_summary",
]
