"""Every result table, declared once: its name, what makes it, its columns and its title.

Writers save a table by its name (:func:`sisnet.report.io.save_table` checks the frame against the declaration);
every other reader (README's generator, the claims files, the tests) reaches it through :data:`TABLES`, as
``TABLES.table2_paired.read(tables_dir)``, so a table's name is written in this file and at most one other.
A table lives in one results folder kind: ``synthetic`` (``results/<profile>/synthetic``, the notebooks and the
checks of ``sisnet.reproduce``), ``real`` (``python -m sisnet.experiments real``) or ``scale`` (the controlled
synthetic scale study).
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

__all__ = ["Table", "TABLES", "declared", "PAIRED_COLUMNS", "HOLM_COLUMNS"]

#: the columns of a paired-difference table (:func:`sisnet.stats.paired_table`)
PAIRED_COLUMNS = ("loss", "comparison", "protocol", "metric", "mean_diff", "ci_low", "ci_high", "n_seeds", "verdict")
#: a pre-registered family with Holm's adjustment (:func:`sisnet.stats.holm_family`) and the command that made it
HOLM_COLUMNS = ("family", *PAIRED_COLUMNS, "p_value", "p_holm", "ci_low_holm", "ci_high_holm", "verdict_holm", "command")
_RUN = ("loss", "method", "seed", "protocol", "mode", "rank1", "rank5", "rank10", "mAP", "mINP", "epoch", "run_id",
        "num_valid_queries")
_SUMMARY = ("loss", "method", "protocol", "rank1_mean", "rank1_std", "mAP_mean", "mAP_std", "n_seeds")
_PAPER = tuple(f"paper_{d}_{m}" for d in ("market1501", "dukemtmcreid", "msmt17") for m in ("rank1", "mAP"))
_SPLITS = ("split", "ids", "images", "cameras", "min_height_px", "max_height_px")


@dataclass(frozen=True)
class Table:
    """One result table: ``name`` (the file stem), ``made_by`` (the notebook or function that writes it),
    ``columns`` (each must be there), ``title`` (the Markdown heading), ``folder`` (the results folder kind),
    ``optional`` (columns that may be there) and ``extra`` (a regular expression for data-dependent columns,
    e.g. one per evaluated epoch)."""

    name: str
    made_by: str
    columns: tuple[str, ...]
    title: str
    folder: str = "synthetic"
    optional: tuple[str, ...] = ()
    extra: str | None = None

    def path(self, tables_dir: str | Path) -> Path:
        return Path(tables_dir) / f"{self.name}.csv"

    def read(self, tables_dir: str | Path) -> pd.DataFrame | None:
        """The table from ``tables_dir``, or ``None`` when it has not been written there."""
        path = self.path(tables_dir)
        return pd.read_csv(path) if path.is_file() else None

    def check(self, frame: pd.DataFrame) -> None:
        """``ValueError`` naming the table and the columns that differ from the declaration."""
        have = [str(c) for c in (frame.reset_index() if _named_index(frame) else frame).columns]
        missing = [c for c in self.columns if c not in have]
        allowed = set(self.columns) | set(self.optional)
        unknown = [c for c in have if c not in allowed and not (self.extra and re.fullmatch(self.extra, c))]
        if missing or unknown:
            raise ValueError(f"table {self.name!r} ({self.made_by}) does not match its declaration in "
                             f"sisnet/report/registry.py: missing columns {missing}, undeclared columns {unknown}. "
                             "Fix the frame, or change the declaration (and every reader of the table) together.")


def _named_index(frame: pd.DataFrame) -> bool:
    return not isinstance(frame.index, pd.RangeIndex) and any(n is not None for n in frame.index.names)


class _Tables(dict):
    """``{name: Table}`` that also answers ``TABLES.<name>``."""

    def __getattr__(self, name: str) -> Table:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(_unknown(name)) from None


def _unknown(name: str) -> str:
    near = difflib.get_close_matches(name, list(TABLES), n=3)
    return (f"no result table {name!r} is declared in sisnet/report/registry.py"
            + (f" (did you mean {', '.join(near)}?)" if near else "") + "; declare it there with its maker, columns "
            "and title.")


def declared(name: str | Table) -> Table:
    """The declaration of ``name`` (a :class:`Table` is returned as it is); ``KeyError`` with the near names."""
    if isinstance(name, Table):
        return name
    if name not in TABLES:
        raise KeyError(_unknown(name))
    return TABLES[name]


def _nb(number: str, call: str = "") -> str:
    names = {"01": "01_data", "02": "02_training", "03": "03_ablation", "04": "04_table1", "05": "05_table3",
             "06": "06_fig3_cam", "07": "07_scale_robustness", "08": "08_your_images"}
    return f"notebooks/{names[number]}.ipynb" + (f" ({call})" if call else "")


_CHECK = "sisnet.report.validation.run_checks"
_REAL = "sisnet.experiments.tables.real_tables"
_SCALE = "sisnet.experiments.scale_tables.scale_tables"
_DECLARED = (
    # notebook 01
    Table("dataset_summary", _nb("01"), _SPLITS, "Dataset statistics"),
    Table("protocol_query", _nb("01", "sisnet.report.protocol_example"),
          ("position", "gallery_index", "pid", "distance", "status", "rank", "hit", "precision"),
          "One query's ranked gallery, labelled by the evaluation protocol",
          optional=("camera", "camid")),  # camera: 1-based (camid, 0-based, in results written before the rename)
    Table("protocol_summary", _nb("01", "sisnet.report.protocol_example"),
          ("query_pid", "AP", "INP", "first_hit_rank", "num_matches"), "That query's AP and INP",
          optional=("query_camera", "query_camid")),  # as protocol_query: 1-based camera, or the older camid
    # notebook 02
    Table("training_epochs", _nb("02"), ("epoch", "loss_total", "loss_id", "loss_triplet", "loss_drc", "lr", "seconds",
                                         "eval_seconds"), "Training history of one run"),
    Table("training_evals", _nb("02"), ("epoch", "mode", "rank1", "rank5", "rank10", "mAP", "mINP"),
          "Evaluation history of one run"),
    Table("init_runs", _nb("02", "sisnet.report.init_comparison"),
          ("init", "seed", "weights", "sha256", "rank1", "mAP", "mINP", "epoch", "wall_seconds", "run_id"),
          "Initial weights: the profile's against random, per seed"),
    Table("init_comparison", _nb("02", "sisnet.report.init_comparison"),
          ("init", "rank1_mean", "rank1_std", "mAP_mean", "mAP_std", "n_seeds"),
          "Profile initial weights vs random (percent, mean ± std over seeds)"),
    # notebook 03
    Table("training_cost", _nb("03", "sisnet.report.training_cost"),
          ("loss", "method", "mean_seconds", "total_seconds", "n_runs"),
          "Training wall time per configuration (seconds, evaluations included)"),
    Table("convergence", _nb("03", "sisnet.report.convergence_frame"),
          ("loss", "method", "seed", "epoch", "rank1", "mAP", "run_id"), "Rank-1 at every evaluation of every run (percent)"),
    Table("convergence_summary", _nb("03", "sisnet.report.convergence_summary"),
          ("loss", "method", "n_seeds"), "Rank-1 per evaluation, mean over seeds", optional=("last_change", "flat"),
          extra=r"epoch \d+"),
    Table("table2_runs", _nb("03", "sisnet.report.measure_protocols"), _RUN, "Table 2, every run (percent)"),
    Table("scale_bins", _nb("03", "sisnet.report.split_scale_bins"), _RUN,
          "Results by native query height (percent; n = num_valid_queries)"),
    Table("table2", _nb("03", "sisnet.report.summarize"), _SUMMARY,
          "Table 2: rank-1 / mAP (percent), mean ± std over seeds"),
    Table("table2_effects", _nb("03", "sisnet.report.table2_effects"),
          ("loss", "method", "measured_rank1", "measured_mAP", *_PAPER), "Gain over the Baseline (points): measured vs paper"),
    Table("table2_paired", _nb("03", "sisnet.report.table2_paired"), PAIRED_COLUMNS,
          "Table 2: the paper's claims, paired by seed (points)"),
    Table("triplet_diagnosis", _nb("03", "sisnet.report.triplet_diagnosis"),
          ("loss", "method", "seed", "protocol", "rank1", "rank5", "rank10", "mAP", "mINP", "num_valid_queries",
           "loss_id_first", "loss_id_last", "loss_triplet_first", "loss_triplet_last", "run_id"),
          "Baseline with and without the triplet loss: standard protocol, gallery without distractors, loss terms"),
    Table("triplet_diagnosis_paired", _nb("03", "sisnet.report.triplet_diagnosis"), PAIRED_COLUMNS,
          "Baseline S.+T. - S., paired by seed, with and without the gallery's distractors"),
    # the checks of sisnet.reproduce (their own options), each with its command
    Table("validation_runs", _CHECK, ("choice", "candidate", "method", "loss", "seed", "rank1", "mAP", "epoch",
                                      "wall_seconds", "run_id", "command"),
          "Validation sweep: every run (held-out training identities; the test split is not read)", optional=("where",)),
    Table("validation_choices", _CHECK, ("choice", "candidate", "eligible", "val_rank1", "val_mAP", "seconds_per_run",
                                         "n_runs", "chosen", "tolerance", "scored_on", "overrides", "command"),
          "Validation choices: candidates, validation scores and the chosen one", optional=("where",)),
    Table("convergence_2x", _CHECK, ("loss", "method", "seed", "epochs_1x", "rank1_1x", "epochs_2x", "rank1_2x",
                                     "rank1_diff", "mAP_1x", "mAP_2x", "within_limit", "run_id_1x", "run_id_2x", "command"),
          "Convergence: every configuration at the schedule and at twice its length (seed 0, test)"),
    Table("triplet_schedule_runs", _CHECK, ("loss", "method", "seed", "protocol", "epochs", "rank1", "mAP",
                                            "swap_rank1_cost", "swap_mAP_cost", "run_id", "command"),
          "Triplet anomaly against the schedule: Baseline S. and S.+T. at the schedule and at twice it"),
    Table("triplet_schedule_paired", _CHECK, (*PAIRED_COLUMNS, "command"),
          "Baseline S.+T. - S. at the schedule and at twice it, paired by seed"),
    Table("table2_other_view_runs", _CHECK, (*_RUN, "second_view", "command"),
          "Table 2 with the other second view (disclosed ablation): every run"),
    Table("table2_other_view", _CHECK, (*_SUMMARY, "second_view", "command"),
          "Table 2 with the other second view (disclosed ablation), mean and std over seeds"),
    Table("table2_other_view_paired", _CHECK, (*PAIRED_COLUMNS, "second_view", "command"),
          "Paired differences with the other second view"),
    # notebook 04, 05
    Table("table1", _nb("04", "sisnet.report.table1_with_measured"),
          ("method", "publication", "backbone", "dataset", "metric", "value", "std", "n_seeds", "provenance", "source"),
          "Table 1 with this run's measured rows"),
    Table("table3_runs", _nb("05", "sisnet.report.table3_measured"),
          ("loss", "method", "seed", "rank1_gap", "mAP_gap", "n_evals", "run_id"), "Table 3, every run (points)"),
    Table("table3", _nb("05", "sisnet.report.table3_side_by_side"),
          ("loss", "method", "rank1_gap_mean", "rank1_gap_std", "mAP_gap_mean", "mAP_gap_std", "n_seeds", "n_evals",
           *_PAPER), "Table 3: cascaded minus either-scale (points)"),
    # notebook 06
    Table("fig3_cam_consistency", _nb("06", "sisnet.report.cam_agreement"),
          ("pid", "path", "method", "class", "full_input_hw", "small_input_hw", "full_map_hw", "small_map_hw", "corr",
           "mse"), "Fig. 3: CAM agreement between the two scales"),
    Table("fig3_cam_agreement", _nb("06", "sisnet.report.cam_agreement_summary"),
          ("method", "corr_mean", "corr_std", "mse_mean", "mse_std", "n_images"), "Fig. 3: CAM agreement per model"),
    Table("cam_on_person", _nb("06", "sisnet.report.cam_on_person_grid"),
          ("method", "loss", "seed", "person_share_mean", "person_share_std", "mask_area_mean", "activation_share_mean",
           "outer_share_mean", "outer_area", "coverage_map_share_mean", "n_images"),
          "Share of CAM mass on the person, every configuration and seed (query images)"),
    Table("cam_on_person_summary", _nb("06", "sisnet.report.cam_on_person_summary"),
          ("loss", "method", "person_share", "person_share_std", "uniform_map_share", "activation_share", "outer_share",
           "uniform_outer_share", "coverage_map_share", "n_seeds"), "Share of CAM mass on the person, mean over seeds"),
    Table("cam_on_person_backbone", _nb("06", "sisnet.report.backbone_on_person"),
          ("weights", "activation_share_mean", "mask_area_mean", "n_images"),
          "Activation share on the person of the backbone before ReID training"),
    Table("person_reliance", _nb("06", "sisnet.report.person_reliance_grid"),
          ("method", "loss", "seed", "query", "rank1", "mAP", "n_queries"),
          "Retrieval with edited query images: person kept on another background, on grey, or painted out"),
    Table("person_reliance_paired", _nb("06", "sisnet.report.person_reliance_paired"), PAIRED_COLUMNS,
          "Rank-1 / mAP each edit costs, S.+T. - S., paired by seed"),
    Table("cam_cell_sources", _nb("06", "sisnet.report.cam_cell_sources"),
          ("method", "loss", "seed", "map_hw", "cell_share_min", "cell_share_max", "cell_share_mean", "outer_cell_share",
           "inner_cell_share", "mask_area_mean", "n_images"), "Share of each CAM cell's input gradient on the person"),
    Table("two_view_agreement", _nb("06", "sisnet.report.two_view_agreement_grid"),
          ("method", "loss", "seed", "map", "corr_mean", "corr_std", "mse_mean", "map_hw", "n_images"),
          "Agreement of the two views' maps, every configuration and seed (query images)"),
    Table("two_view_agreement_summary", _nb("06", "sisnet.report.two_view_agreement_summary"),
          ("map", "method", "corr", "corr_sd_over_seeds", "drc_term", "drc_term_sd_over_seeds", "map_hw", "n_seeds",
           "n_images"), "Agreement of the two views' maps, mean over seeds"),
    Table("drc_share", _nb("06", "sisnet.report.drc_share_table"),
          ("drc_weight", "loss_share_last_epoch", "loss_drc", "loss_total", "loss_share", "grad_share"),
          "DRC share of the loss and of the gradient on the last feature maps (training mode)"),
    # notebook 07, 08
    Table("scale_robustness", _nb("07", "sisnet.report.scale_robustness"),
          ("method", "loss", "seed", "query_scale", "rank1", "rank5", "rank10", "mAP", "mINP", "num_valid_queries"),
          "Rank-1 / mAP vs query resolution (percent)"),
    Table("cam_consistency", _nb("07", "sisnet.report.cam_consistency"),
          ("method", "loss", "seed", "query_scale", "corr_mean", "corr_std", "mse_mean", "mse_std", "n_images"),
          "CAM consistency across query scales"),
    Table("footage_dataset", _nb("08"), _SPLITS, "ReID crops converted from the footage"),
    Table("synthetic_on_real", _nb("08", "sisnet.experiments.real.score_on_real"),
          ("model", "trained_on", "seed", "set", "protocol", "protocol_name", "rank1", "mAP"),
          "The synthetic-trained models and ImageNet-only on real pedestrians (percent; targets: mean of 10 splits)",
          optional=("n_query",)),
    Table("footage_eval", _nb("08", "sisnet.footage.evaluate_models"),
          ("method", "loss", "seed", "protocol", "rank1", "rank5", "rank10", "mAP", "mINP", "num_valid_queries"),
          "Trained models on crops from the footage (percent)",
          optional=("queries", "junk_crops", "junk_total", "junk_per_query", "gallery")),
    # python -m sisnet.experiments real
    Table("real_evals", _REAL, ("train_seconds", "run_id", "schedule", "seed", "loss", "method", "set", "split",
                                "protocol", "height_bin", "rank1", "mAP", "n_query", "n_gallery", "command"),
          "Every evaluation of every run: one row per (run, set, split, protocol, native-height bin)", "real"),
    Table("real_curves", _REAL, ("schedule", "seed", "loss", "method", "epoch", "rank1", "rank5", "rank10", "mAP", "mINP",
                                 "command"),
          "Validation curves: each run's periodic evaluations on CUHK03's validation identities", "real"),
    Table("real_runs", _REAL, ("train_seconds", "run_id", "schedule", "seed", "loss", "method", "protocol", "rank1",
                               "mAP", "protocol_name", "set", "n_query", "command"),
          "Every run: each evaluation set (mean over its splits) and the mean over the four targets", "real"),
    Table("real_summary", _REAL, ("protocol_name", "rank1_mean", "mAP_mean", "method", "n_seeds", "rank1_std", "mAP_std",
                                  "command"),
          "Mean (sd) over seeds, S.+T., chosen schedule; ImageNet only = the backbone before ReID training", "real"),
    Table("real_paired", _REAL, HOLM_COLUMNS,
          "Paired differences by seed (points); the primary family with Holm's adjustment", "real"),
    Table("real_datasets", _REAL, ("set", "role", "train_ids", "train_images", "query_ids", "query_images",
                                   "gallery_ids", "gallery_images", "splits", "query_height_min", "query_height_max",
                                   "command"),
          "The sets: sources (trained on), validation, in-domain test and the four targets (split 0)", "real"),
    Table("real_validation", _REAL, ("lr", "epochs", "steps", "mAP", "rank1", "se_diff", "diff_from_best", "chosen",
                                     "command"),
          "Learning rate x schedule on CUHK03's validation identities (Baseline S.+T., seed 0)", "real"),
    Table("real_plateau", _REAL, ("method", "protocol_name", "mAP_1x", "mAP_2x", "move", "within_tolerance", "command"),
          "The 2x-schedule check (seed 0): how much twice the schedule moves each arm", "real"),
    Table("real_height_bins", _REAL, ("set", "protocol", "height_bin", "method", "rank1", "mAP", "n_query", "n_seeds",
                                      "command"),
          "By native query height (mean over splits and seeds; n = queries per split)", "real"),
    # python -m sisnet.experiments scale
    Table("scale_runs", _SCALE, ("train_seconds", "run_id", "schedule", "seed", "loss", "method", "set", "protocol",
                                 "rank1", "mAP", "n_query", "n_gallery", "command"),
          "Scale study: every run, each protocol on the validation and on the test set (rank-1 and mAP %, n)", "scale"),
    Table("scale_curves", _SCALE, ("schedule", "seed", "loss", "method", "epoch", "rank1", "rank5", "rank10", "mAP",
                                   "mINP", "command"),
          "Scale study: validation curves, each run's periodic evaluations (standard protocol)", "scale"),
    Table("scale_summary", _SCALE, ("protocol", "method", "rank1_mean", "rank1_std", "mAP_mean", "mAP_std", "n_query",
                                    "n_seeds", "command"),
          "Scale study: test set, mean (sd) over seeds, S.+T., chosen schedule", "scale"),
    Table("scale_paired", _SCALE, HOLM_COLUMNS,
          "Scale study: paired differences by seed (points); the primary family with Holm's adjustment", "scale"),
    Table("scale_validation", _SCALE, ("lr", "epochs", "steps", "mAP", "se_diff", "diff_from_best", "chosen", "command"),
          "Scale study: learning rate x schedule on the validation set (Baseline S.+T., seed 0), chosen jointly",
          "scale", extra=r"mAP .+"),
    Table("scale_plateau", _SCALE, ("set", "method", "protocol", "mAP_1x", "mAP_2x", "move", "within_tolerance",
                                    "command"),
          "Scale study: the 2x-schedule check (seed 0), how much twice the schedule moves each arm", "scale"),
    Table("scale_check", _SCALE, ("standard_rank1", "reference_rank1", "far_near_rank1", "gap", "passes", "required_gap",
                                  "required_floor", "command"),
          "Scale study: the scale check on the validation set, before any seed is spent (chosen Baseline)", "scale"),
    Table("scale_drc_share", _SCALE, ("seed", "schedule", "epoch", "loss_drc_weighted", "loss_total", "share",
                                      "command"),
          "Scale study: the DRC term's share of the training loss, per epoch (SiSNet+DRC runs, training mode)", "scale"),
    Table("scale_settings", _SCALE, ("wall_seconds", "load_average_start", "load_average_end", "seeds", "command"),
          "Scale study: what was run (one row)", "scale", extra=r".+"),
)
TABLES = _Tables({t.name: t for t in _DECLARED})
