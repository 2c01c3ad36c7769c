"""The paper's published numbers (Tables 1, 2 and 3), as data.

One source of truth: every notebook that shows a published number reads it from here.
Transcribed from the extended abstract "Scale-Invariant Siamese Network for Person
Re-Identification" (Zhang, Shi, Liu, Bao, Wei). All values are percentages as printed;
``NaN`` stands for the paper's "-" (not available).

Each table is available in two shapes:

* ``table1()``, ``table2()``, ``table3()``: tidy (long) DataFrames, one published number per
  row, with columns naming exactly what the number is;
* ``table1_wide()``, ``table2_wide()``, ``table3_wide()``: the layout printed in the paper
  (MultiIndex columns ``(dataset label, metric)``).

Dataset keys follow :data:`sisnet.data.DATASET_NAMES` (``market1501``, ``dukemtmcreid``,
``msmt17``); :data:`DATASET_LABELS` maps them to the paper's column headings.
"""
from __future__ import annotations

import math

import pandas as pd

__all__ = [
    "PAPER_TITLE",
    "PAPER_DATASETS",
    "DATASET_LABELS",
    "METHODS",
    "CONTROL",
    "GRID_METHODS",
    "CONTROL_COMPARISONS",
    "LOSS_TYPES",
    "METRICS",
    "table1",
    "table2",
    "table3",
    "table1_wide",
    "table2_wide",
    "table3_wide",
    "published",
    "CLAIMS",
]

PAPER_TITLE = "Scale-Invariant Siamese Network for Person Re-Identification"
PAPER_DATASETS: tuple[str, ...] = ("market1501", "dukemtmcreid", "msmt17")
DATASET_LABELS: dict[str, str] = {
    "market1501": "Market-1501",
    "dukemtmcreid": "DukeMTMC-reID",
    "msmt17": "MSMT17",
    "synthetic": "Synthetic",
}
#: The three models of the ablation, in the paper's order.
METHODS: tuple[str, ...] = ("Baseline", "SiSNet", "SiSNet+DRC")
#: The augmentation control of the companion (not in the paper): the Baseline trained on each image replaced by
#: the second-scale view with probability 0.5 (``low_res_aug``), so it sees low-resolution images as SiSNet does.
CONTROL = "Baseline+LR aug."
#: The grid's methods in display order: the paper's three with the control after the Baseline.
GRID_METHODS: tuple[str, ...] = ("Baseline", CONTROL, "SiSNet", "SiSNet+DRC")
#: Loss types of Table 2: softmax (ID) alone, softmax + triplet.
LOSS_TYPES: tuple[str, ...] = ("S.", "S.+T.")
#: Metric names used in every table of this package (percent).
METRICS: tuple[str, ...] = ("rank1", "mAP")
_METRIC_LABELS = {"rank1": "R1", "mAP": "mAP"}

#: The paper's Table 2 claims, each "a scores higher than b": ``(name, loss, a, b)`` with ``a``, ``b`` =
#: ``(loss, method)`` cells of the grid. Table 2 shows each step (siamese, + DRC) raising both metrics under
#: both losses, and adding the triplet loss raising every method.
CLAIMS: tuple[tuple[str, str, tuple[str, str], tuple[str, str]], ...] = (
    *((name, loss, (loss, a), (loss, b))
      for loss in LOSS_TYPES
      for name, a, b in (("SiSNet - Baseline", "SiSNet", "Baseline"),
                         ("SiSNet+DRC - SiSNet", "SiSNet+DRC", "SiSNet"),
                         ("SiSNet+DRC - Baseline", "SiSNet+DRC", "Baseline"))),
    *((f"{m}: S.+T. - S.", "S.+T. - S.", ("S.+T.", m), ("S.", m)) for m in METHODS),
)
#: The companion's control comparisons (not claims of the paper): is SiSNet's gain more than seeing low-resolution
#: images? "supported" means SiSNet scores higher than the augmentation control.
CONTROL_COMPARISONS: tuple[tuple[str, str, tuple[str, str], tuple[str, str]], ...] = tuple(
    (f"{a} - {CONTROL}", loss, (loss, a), (loss, CONTROL)) for loss in LOSS_TYPES for a in ("SiSNet", "SiSNet+DRC"))

_NA = math.nan

# ---------------------------------------------------------------------------------------------
# Table 1. Comparison with state-of-the-art methods.
# (method, publication, backbone, Market R1, Market mAP, Duke R1, Duke mAP, MSMT R1, MSMT mAP)
# ---------------------------------------------------------------------------------------------
_TABLE1_ROWS: tuple[tuple, ...] = (
    ("PCB [2]", "ECCV'18", "ResNet", 93.8, 81.6, 83.3, 69.2, 68.2, 40.4),
    ("HPM [3]", "AAAI'19", "ResNet", 94.2, 82.7, 86.6, 74.3, _NA, _NA),
    ("VPM [26]", "CVPR'19", "ResNet", 93.0, 80.8, 83.6, 72.6, _NA, _NA),
    ("CASN [4]", "CVPR'19", "PCB", 94.4, 82.8, 87.7, 73.7, _NA, _NA),
    ("AANet [5]", "CVPR'19", "ResNet", 93.9, 83.4, 87.7, 74.3, _NA, _NA),
    ("IANet [6]", "CVPR'19", "ResNet", 94.4, 83.1, 87.1, 73.4, 75.5, 46.8),
    ("DPFL [12]", "ICCV'17", "Inception", 88.9, 73.1, 79.2, 60.6, _NA, _NA),
    ("MLFN [9]", "CVPR'18", "ResNeXt", 90.0, 74.3, 81.0, 62.8, _NA, _NA),
    ("OSNet [11]", "ICCV'19", "OSNet", 94.8, 84.9, 88.6, 73.5, 78.7, 52.9),
    ("Ours", "-", "ResNet", 95.2, 85.4, 89.0, 75.9, 80.1, 54.6),
)
#: Grouping of Table 1 as described in the paper's text (local / attention / multi-scale).
_TABLE1_GROUPS = {
    "PCB [2]": "local features",
    "HPM [3]": "local features",
    "VPM [26]": "local features",
    "CASN [4]": "attention",
    "AANet [5]": "attention",
    "IANet [6]": "attention",
    "DPFL [12]": "multi-scale",
    "MLFN [9]": "multi-scale",
    "OSNet [11]": "multi-scale",
    "Ours": "ours (SiSNet+DRC, S.+T.)",
}

# ---------------------------------------------------------------------------------------------
# Table 2. Ablation study. (loss, method, Market R1, Market mAP, Duke R1, Duke mAP, MSMT R1, MSMT mAP)
# ---------------------------------------------------------------------------------------------
_TABLE2_ROWS: tuple[tuple, ...] = (
    ("S.", "Baseline", 91.9, 80.3, 84.3, 69.2, 70.3, 41.4),
    ("S.", "SiSNet", 93.3, 82.3, 86.4, 72.0, 73.8, 46.1),
    ("S.", "SiSNet+DRC", 93.9, 83.6, 88.2, 75.0, 76.0, 50.3),
    ("S.+T.", "Baseline", 94.2, 83.2, 86.5, 72.5, 76.3, 48.4),
    ("S.+T.", "SiSNet", 94.8, 84.7, 87.5, 74.5, 78.9, 52.2),
    ("S.+T.", "SiSNet+DRC", 95.2, 85.4, 89.0, 75.9, 80.1, 54.6),
)

# ---------------------------------------------------------------------------------------------
# Table 3. Gap between cascading both branches' features and either-scale features
# (mean over the last five evaluations). First line S., second line S.+T.; per dataset the
# columns are B. R1, B. m, Si. R1, Si. m, Si.+D. R1, Si.+D. m.
# ---------------------------------------------------------------------------------------------
_TABLE3_ROWS: dict[str, dict[str, tuple[float, ...]]] = {
    "S.": {
        "market1501": (0.96, 2.52, 0.46, 0.64, 0.22, 0.10),
        "dukemtmcreid": (1.58, 2.8, 0.2, 0.72, 0.08, 0.12),
        "msmt17": (3.2, 4.06, 0.92, 1.22, 0.14, 0.12),
    },
    "S.+T.": {
        "market1501": (0.82, 1.66, 0.28, 0.54, 0.12, 0.04),
        "dukemtmcreid": (1.54, 2.56, 0.28, 0.5, 0.06, 0.02),
        "msmt17": (2.6, 3.6, 0.7, 0.94, 0.06, 0.02),
    },
}


def table1() -> pd.DataFrame:
    """Table 1 (comparison with the state of the art), tidy.

    Columns: ``method``, ``publication``, ``backbone``, ``group``, ``dataset``, ``metric``
    (``rank1`` | ``mAP``), ``value`` (percent, NaN where the paper prints "-").
    60 rows (10 methods x 3 datasets x 2 metrics), in the paper's order.
    """
    rows = []
    for method, pub, backbone, *values in _TABLE1_ROWS:
        for i, dataset in enumerate(PAPER_DATASETS):
            for j, metric in enumerate(METRICS):
                rows.append(
                    {
                        "method": method,
                        "publication": pub,
                        "backbone": backbone,
                        "group": _TABLE1_GROUPS[method],
                        "dataset": dataset,
                        "metric": metric,
                        "value": float(values[2 * i + j]),
                    }
                )
    return pd.DataFrame(rows)


def table2() -> pd.DataFrame:
    """Table 2 (ablation), tidy.

    Columns: ``loss`` (``S.`` | ``S.+T.``), ``method`` (:data:`METHODS`), ``dataset``, ``metric``,
    ``value`` (percent). 36 rows.
    """
    rows = []
    for loss, method, *values in _TABLE2_ROWS:
        for i, dataset in enumerate(PAPER_DATASETS):
            for j, metric in enumerate(METRICS):
                rows.append(
                    {"loss": loss, "method": method, "dataset": dataset, "metric": metric, "value": float(values[2 * i + j])}
                )
    return pd.DataFrame(rows)


def table3() -> pd.DataFrame:
    """Table 3 (cascaded minus either-scale gap, mean of the last five evaluations), tidy.

    Columns: ``loss``, ``method``, ``dataset``, ``metric``, ``gap`` (percentage points;
    positive = cascading both branches' features scores higher than one scale alone). 36 rows.
    """
    rows = []
    for loss, per_dataset in _TABLE3_ROWS.items():
        for dataset in PAPER_DATASETS:
            values = per_dataset[dataset]
            for k, method in enumerate(METHODS):
                for j, metric in enumerate(METRICS):
                    rows.append(
                        {"loss": loss, "method": method, "dataset": dataset, "metric": metric, "gap": float(values[2 * k + j])}
                    )
    return pd.DataFrame(rows)


def _wide(df: pd.DataFrame, index: list[str], value: str) -> pd.DataFrame:
    """Pivot a tidy table to the paper's layout: columns ``(dataset label, metric label)``."""
    out = df.set_index(index + ["dataset", "metric"])[value].unstack(["dataset", "metric"], sort=False)
    order = [(d, m) for d in PAPER_DATASETS for m in METRICS]
    out = out.reindex(columns=pd.MultiIndex.from_tuples(order, names=["dataset", "metric"]))
    out.columns = pd.MultiIndex.from_tuples(
        [(DATASET_LABELS[d], _METRIC_LABELS[m]) for d, m in out.columns], names=["dataset", "metric"]
    )
    return out


def table1_wide() -> pd.DataFrame:
    """Table 1 as printed: index ``(method, publication, backbone)``, columns ``(dataset, R1|mAP)``."""
    return _wide(table1(), ["method", "publication", "backbone"], "value")


def table2_wide() -> pd.DataFrame:
    """Table 2 as printed: index ``(loss, method)``, columns ``(dataset, R1|mAP)``."""
    return _wide(table2(), ["loss", "method"], "value")


def table3_wide() -> pd.DataFrame:
    """Table 3 with rows ``(loss, method)`` and columns ``(dataset, R1|mAP)`` (gap, points).

    The paper prints the three methods side by side in one line per loss type; this is the same
    36 numbers with the methods moved into the rows so it lines up with Table 2.
    """
    return _wide(table3(), ["loss", "method"], "gap")


def published(table: int, *, dataset: str, metric: str, method: str, loss: str | None = None) -> float:
    """One published number, e.g. ``published(2, dataset="market1501", metric="mAP", method="SiSNet", loss="S.")``.

    ``table`` is 1, 2 or 3; Table 1 ignores ``loss`` (its "Ours" row is SiSNet+DRC with S.+T.).
    Raises ``KeyError`` naming the valid choices when nothing matches.
    """
    if table == 1:
        df, col = table1(), "value"
        mask = df["method"] == method
    elif table in (2, 3):
        df = table2() if table == 2 else table3()
        col = "value" if table == 2 else "gap"
        if loss not in LOSS_TYPES:
            raise KeyError(f"loss={loss!r} is not a loss type of Table {table}; use one of {LOSS_TYPES}.")
        mask = (df["method"] == method) & (df["loss"] == loss)
    else:
        raise KeyError(f"table={table!r}: the paper has Tables 1, 2 and 3.")
    mask &= (df["dataset"] == dataset) & (df["metric"] == metric)
    hit = df.loc[mask, col]
    if len(hit) != 1:
        raise KeyError(
            f"No published number for table={table}, dataset={dataset!r}, metric={metric!r}, method={method!r}, "
            f"loss={loss!r}. Valid datasets: {PAPER_DATASETS}; metrics: {METRICS}; "
            f"methods: {sorted(df['method'].unique())}."
        )
    return float(hit.iloc[0])
