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
  cross-scale, re-ranking), :func:`scale_robustness`, :func:`cam_consistency`.
- :mod:`~sisnet.report.protocol` -- the evaluation protocol worked through on one query (notebook 01).
- :mod:`~sisnet.report.registry` -- every result table declared once (:data:`TABLES`: name, maker, columns, title).
- :mod:`~sisnet.report.claims` -- paired claims rendered: :func:`render_claims` / :func:`render_families`, the forest plot.
- :mod:`~sisnet.report.figures` -- every figure, with one ranked-list drawer (:func:`draw_ranked_lists`).

Metrics in histories are fractions in [0, 1]; every table and figure here shows percent.
"""
from __future__ import annotations

import warnings

with warnings.catch_warnings():
    # tqdm.auto warns once at import when ipywidgets is missing ("IProgress not found"), then falls back to text
    # bars (fine here). timm's hub client imports it, so it is imported here first, before anything else, quietly.
    warnings.simplefilter("ignore")
    import tqdm.auto  # noqa: F401

from sisnet.evaluation import evaluate_query_scales
from sisnet.provenance import git_commit
from sisnet.report.context import (NotebookContext, dataset_dir, default_seeds, init_comparison_enabled, load,
                                   prepare_dataset, setup, synthetic_size)
from sisnet.report.claims import claims_table, forest_plot, render_claims, render_families, with_family
from sisnet.report.figures import (
    RankedRow,
    draw_ranked_lists,
    fig3_cam,
    market_pid,
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
from sisnet.report.io import format_mean_std, read_table, save_figure, save_table, to_markdown
from sisnet.report.measure import (
    PERSON_EDITS,
    QUERY_SCALES,
    backbone_on_person,
    cam_agreement,
    cam_agreement_summary,
    cam_cell_sources,
    cam_consistency,
    cam_mass_on_mask,
    cam_on_person,
    cam_on_person_grid,
    cam_on_person_summary,
    drc_share,
    drc_share_table,
    measure_protocols,
    pearson_rows,
    person_reliance,
    person_reliance_grid,
    person_reliance_paired,
    scale_robustness,
    split_scale_bins,
    triplet_diagnosis,
)
from sisnet.report.registry import TABLES
from sisnet.report.validation import convergence_frame, convergence_summary, validation_evidence
from sisnet.report.protocol import ProtocolExample, protocol_example, worked_query
from sisnet.report.runs import (TrainedModel, config_frame, grid_config, init_comparison, load_models, run_folder,
                                run_grid, train)
from sisnet.report.tables import (
    PROTOCOL_RERANK,
    PROTOCOL_STANDARD,
    GridRun,
    cascade_gap,
    epochs_frame,
    evals_frame,
    last_eval,
    protocol_cross_scale,
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
    "NotebookContext", "setup", "default_seeds", "init_comparison_enabled", "dataset_dir", "synthetic_size", "load",
    "prepare_dataset",
    "git_commit", "save_table", "read_table", "save_figure", "to_markdown", "format_mean_std",
    "evals_frame", "epochs_frame", "last_eval", "GridRun", "runs_frame", "summarize", "table2_wide",
    "table2_effects", "table2_paired", "cascade_gap", "table3_measured", "table3_side_by_side", "table1_with_measured",
    "table1_wide_with_provenance", "training_cost", "PROTOCOL_STANDARD", "protocol_cross_scale", "PROTOCOL_RERANK",
    "grid_config", "config_frame", "run_folder", "train", "run_grid", "init_comparison", "TrainedModel", "load_models",
    "QUERY_SCALES", "PERSON_EDITS", "measure_protocols", "split_scale_bins", "scale_robustness", "evaluate_query_scales", "pearson_rows",
    "cam_agreement", "cam_agreement_summary", "cam_consistency", "cam_mass_on_mask", "cam_on_person",
    "RankedRow", "draw_ranked_lists", "plot_sample_grid", "plot_scale_distribution", "plot_training",
    "plot_table2", "plot_table3", "plot_scale_robustness", "plot_cam_consistency", "fig3_cam",
    "ranked_list_figure", "plot_mot_frame", "market_pid", "plot_search_results", "plot_worked_query",
    "protocol_example", "ProtocolExample", "worked_query",
    "TABLES", "render_claims", "render_families", "with_family", "claims_table", "forest_plot", "table3_paired",
    "convergence_frame", "convergence_summary", "validation_evidence",
    "drc_share", "drc_share_table", "cam_on_person_grid", "cam_on_person_summary", "backbone_on_person",
    "triplet_diagnosis", "person_reliance", "person_reliance_grid", "person_reliance_paired",
    "cam_cell_sources",
]
