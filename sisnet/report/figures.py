"""Every figure of the companion (seaborn / matplotlib), with one ranked-list drawer for all ranked lists.

Training curves, Table 2 / 3 dot plots (mean ± std per method), the sample grid, the scale histogram, the Fig. 3 CAM grid,
scale-robustness and CAM-consistency curves, MOT frames and ranked lists. Functions return the figure;
:func:`sisnet.report.io.save_figure` writes it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from sisnet import paper
from sisnet.report.io import plt as _plt
from sisnet.report.cam_measures import cam_agreement, cams, pick
from sisnet.report.runs import TrainedModel
from sisnet.report.tables import METRIC_LABELS, epochs_frame, evals_frame

__all__ = ["RankedRow", "draw_ranked_lists", "plot_worked_query", "plot_sample_grid", "plot_scale_distribution", "plot_training",
           "plot_table2", "plot_table3", "plot_scale_robustness", "plot_cam_consistency", "fig3_cam",
           "ranked_list_figure", "plot_mot_frame", "market_pid", "plot_search_results", "MIN_FONT"]

#: Smallest font of a figure at its saved size (points; 100 dpi): legible where README shows the figure.
MIN_FONT = 9


def _open_rgb(path: str, size_hw: tuple[int, int] | None = None) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        if size_hw is not None:
            im = im.resize((size_hw[1], size_hw[0]), Image.BILINEAR)
        return np.asarray(im)

def _degraded_rgb(path: str, size_hw: tuple[int, int], factor: float) -> np.ndarray:
    """The image as a degraded query looks: resized to ``size_hw``, down by ``factor``, back up."""
    from PIL import Image

    img = _open_rgb(path, size_hw)
    if factor >= 1.0:
        return img
    small = (max(1, round(size_hw[1] * factor)), max(1, round(size_hw[0] * factor)))
    im = Image.fromarray(img).resize(small, Image.BILINEAR).resize((size_hw[1], size_hw[0]), Image.BILINEAR)
    return np.asarray(im)

def plot_sample_grid(ds, n_ids: int = 6, per_id: int = 6, seed: int = 0, split: str = "train"):
    """A grid of ``n_ids`` identities (rows) x ``per_id`` images (columns) from ``split``.

    Identities are drawn (seeded) among those with the most images; each row is sorted by native
    person height when the dataset has a scale sidecar (so the scale variation is visible).
    """
    plt = _plt()
    records = ds.split(split)
    if not records:
        raise ValueError(f"The {split} split is empty; nothing to show.")
    by_pid: dict[int, list] = {}
    for r in records:
        by_pid.setdefault(r.pid, []).append(r)
    heights = {}
    scales = ds.scales()
    if scales is not None:
        heights = dict(zip(scales["path"], scales["height_px"]))
    pids = sorted(by_pid, key=lambda p: (-len(by_pid[p]), p))[: max(n_ids * 3, n_ids)]
    pids = pick(pids, n_ids, seed)
    per_id = max(1, min(per_id, max(len(by_pid[p]) for p in pids)))
    fig, axes = plt.subplots(len(pids), per_id, figsize=(1.2 * per_id, 2.3 * len(pids)), squeeze=False)
    for i, pid in enumerate(pids):
        recs = pick(by_pid[pid], per_id, seed + i)
        if heights:
            recs = sorted(recs, key=lambda r: -heights.get(r.path, 0))
        for j in range(per_id):
            ax = axes[i, j]
            ax.axis("off")
            if j < len(recs):
                ax.imshow(_open_rgb(recs[j].path))
                label = f"cam {recs[j].camid + 1}"  # 1-based, as in the file names
                if heights:
                    label += f"\n{heights.get(recs[j].path, float('nan')):.0f} px"
                ax.set_title(label, fontsize=MIN_FONT)
        axes[i, 0].text(-0.15, 0.5, f"id {pid}", transform=axes[i, 0].transAxes, rotation=90, va="center",
                        ha="right", fontsize=MIN_FONT)
    fig.suptitle(f"{ds.name}: {split} identities (camera and native person height above each crop)", fontsize=MIN_FONT + 1)
    fig.tight_layout()
    return fig

def plot_scale_distribution(ds):
    """Histogram of native person height (px) per split; ``None`` (with a note) without a scale sidecar."""
    scales = ds.scales()
    if scales is None:
        print(f"{ds.name} has no scale sidecar ({ds.root}/scales.csv); no scale distribution to show.")
        return None
    plt = _plt()
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    sns.histplot(data=scales, x="height_px", hue="subset", element="step", stat="density", common_norm=False,
                 bins=30, ax=ax)
    ax.set_xlabel("native person height (px)")
    ax.set_title(f"{ds.name}: scale distribution per split")
    fig.tight_layout()
    return fig

def plot_training(history: Mapping[str, Any], title: str = ""):
    """Loss terms per epoch (left), the DRC term on its own log axis (middle), rank-1 / mAP per evaluation (right).

    The DRC term is orders of magnitude below the ID and triplet terms, so on their linear axis it would sit flat
    at zero; its own panel (log scale) shows how it moves. The evaluation panel draws one line per (metric,
    feature) and its legend names exactly those lines.
    """
    plt = _plt()
    from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

    ep = epochs_frame(history)
    ev = evals_frame(history)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), gridspec_kw={"width_ratios": [1.1, 0.9, 1.2]})
    colors = {"total": "C0", "id": "C1", "triplet": "C2"}
    for term, color in colors.items():
        if f"loss_{term}" in ep.columns and ep[f"loss_{term}"].abs().sum() > 0:
            axes[0].plot(ep["epoch"], ep[f"loss_{term}"], marker="o", color=color, label=term)
    axes[0].set(title="training losses", xlabel="epoch", ylabel="loss")
    if axes[0].lines:
        axes[0].legend(fontsize=MIN_FONT + 1)
    drc = ep["loss_drc"] if "loss_drc" in ep.columns else pd.Series(dtype=float)
    if len(drc) and (drc > 0).any():
        axes[1].plot(ep["epoch"], drc, marker="o", color="C3")
        axes[1].set_yscale("log")
        plain = FuncFormatter(lambda v, _: f"{v:.3g}")  # 0.0014, not 1.4 x 10^-3
        axes[1].yaxis.set_major_formatter(plain)
        positive = drc[drc > 0]
        # minor ticks labelled only when the term stays within one decade (no power of 10 to label otherwise)
        axes[1].yaxis.set_minor_formatter(plain if positive.max() < 10 * positive.min() else NullFormatter())
        share = 100.0 * float(drc.iloc[-1]) / float(ep["loss_total"].iloc[-1]) if "loss_total" in ep else float("nan")
        axes[1].set_title(f"DRC term (log axis; last epoch {share:.2g} % of the loss)", fontsize=MIN_FONT + 1)
    else:
        axes[1].text(0.5, 0.5, "no DRC term\nin this configuration", ha="center", va="center",
                     transform=axes[1].transAxes, fontsize=MIN_FONT + 2)
        axes[1].set_axis_off()
    axes[1].set(xlabel="epoch", ylabel="loss")
    if len(ev):
        styles = {"either": "-", "cascaded": "--"}
        for metric, color in (("rank1", "C0"), ("mAP", "C1")):
            for mode, sub in ev.groupby("mode", sort=False):
                axes[2].plot(sub["epoch"], sub[metric], marker="o", color=color, ls=styles.get(mode, ":"),
                             label=f"{'rank-1' if metric == 'rank1' else metric}, {mode}")
        epochs = sorted(int(e) for e in ev["epoch"].unique())
        which = ", ".join(map(str, epochs)) if len(epochs) <= 4 else f"{epochs[0]}..{epochs[-1]}"
        axes[2].set_title(f"evaluations at epoch{'s' if len(epochs) > 1 else ''} {which}", fontsize=MIN_FONT + 1)
        axes[2].legend(fontsize=MIN_FONT, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    else:
        axes[2].set_title("no evaluation recorded")
    axes[2].set(xlabel="epoch", ylabel="percent")
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _dot_panels(long: pd.DataFrame, value: str, *, cols: str | None, rows: str | None, xlabel: str,
                zero_line: bool = False):
    """Mean ± std over seeds as dots with horizontal bars: one panel per (row, col), methods on the y axis.

    Horizontal method labels never overlap, and the value axis is fitted to the data (it does not start at 0),
    so effects of a point or two stay visible. Loss types are offset vertically and coloured.
    """
    plt = _plt()
    row_keys = list(dict.fromkeys(long[rows])) if rows else [None]
    col_keys = list(dict.fromkeys(long[cols])) if cols else [None]
    methods = [m for m in paper.GRID_METHODS if m in set(long["method"])]
    losses = [lo for lo in paper.LOSS_TYPES if lo in set(long["loss"])]
    fig, axes = plt.subplots(len(row_keys), len(col_keys), figsize=(4.6 * len(col_keys), 0.55 * len(methods) * len(row_keys) + 1.6),
                             squeeze=False, sharey=True)
    for i, rk in enumerate(row_keys):
        for j, ck in enumerate(col_keys):
            ax = axes[i, j]
            sub = long[((long[rows] == rk) if rows else True) & ((long[cols] == ck) if cols else True)]
            stats = sub.groupby(["method", "loss"])[value].agg(["mean", "std"])
            for k, loss in enumerate(losses):
                ys, means, stds = [], [], []
                for y, method in enumerate(methods):
                    if (method, loss) in stats.index:
                        ys.append(y + (k - (len(losses) - 1) / 2) * 0.25)
                        means.append(stats.loc[(method, loss), "mean"])
                        stds.append(stats.loc[(method, loss), "std"])
                ax.errorbar(means, ys, xerr=np.nan_to_num(stds), fmt="o", color=f"C{k}", capsize=3,
                            label=loss if i == 0 and j == 0 else None)
            if zero_line:
                ax.axvline(0, color="k", lw=0.8)
            ax.set_yticks(range(len(methods)), methods)
            ax.set_ylim(len(methods) - 0.5, -0.5)
            ax.set_title(" | ".join(str(k) for k in (rk, ck) if k is not None))
            ax.set_xlabel(xlabel if i == len(row_keys) - 1 else "")
    fig.legend(title="loss", loc="upper right", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return fig


def plot_table2(per_run: pd.DataFrame):
    """Table 2 measured: rank-1 and mAP per method and loss type (mean ± std over seeds), one panel per protocol."""
    long = per_run.melt(id_vars=["loss", "method", "seed", "protocol"], value_vars=["rank1", "mAP"],
                        var_name="metric", value_name="percent")
    long["metric"] = long["metric"].map({"rank1": "rank-1 (%)", "mAP": "mAP (%)"})
    fig = _dot_panels(long, "percent", cols="protocol", rows="metric", xlabel="percent")
    n = per_run.groupby(["loss", "method", "protocol"]).size().max()
    fig.suptitle(f"Table 2, measured (dot: mean, bar: ± std over {n} seed{'s' if n > 1 else ''})", x=0.45)
    fig.tight_layout(rect=(0, 0, 0.9, 1))
    return fig


def plot_table3(per_run: pd.DataFrame):
    """The cascaded-minus-either gap (points) per method and loss type (mean ± std over seeds)."""
    long = per_run.melt(id_vars=["loss", "method", "seed"], value_vars=["rank1_gap", "mAP_gap"],
                        var_name="metric", value_name="gap")
    long["metric"] = long["metric"].map({"rank1_gap": "rank-1 gap", "mAP_gap": "mAP gap"})
    fig = _dot_panels(long, "gap", cols="metric", rows=None, xlabel="cascaded - either (points)", zero_line=True)
    fig.suptitle("Table 3, measured: cascaded minus either-scale (mean ± std over seeds)", x=0.45)
    fig.tight_layout(rect=(0, 0, 0.88, 1))
    return fig

def plot_scale_robustness(df: pd.DataFrame):
    """Rank-1 and mAP vs query resolution factor (1 = full), one line per model."""
    plt = _plt()
    import seaborn as sns

    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.4), sharex=True)
    for ax, metric in zip(axes, ("rank1", "mAP")):
        sns.lineplot(data=df, x="query_scale", y=metric, hue="method", hue_order=[m for m in paper.GRID_METHODS if m in set(df["method"])],
                     marker="o", ax=ax)
        ax.set_xlabel("query resolution factor")
        ax.set_ylabel(f"{METRIC_LABELS[metric]} (%)")
        ax.invert_xaxis()
    loss = ", ".join(sorted(df["loss"].unique())) if "loss" in df else ""
    fig.suptitle(f"Scale robustness: degraded queries vs full-resolution gallery ({loss})")
    fig.tight_layout()
    return fig

def plot_cam_consistency(df: pd.DataFrame):
    """CAM correlation (and MSE) between the full-resolution and reduced-resolution views, per model."""
    plt = _plt()
    import seaborn as sns

    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.4), sharex=True)
    order = [m for m in paper.GRID_METHODS if m in set(df["method"])]
    for ax, (col, label) in zip(axes, (("corr_mean", "Pearson correlation"), ("mse_mean", "MSE (DRC term)"))):
        sns.lineplot(data=df, x="query_scale", y=col, hue="method", hue_order=order, marker="o", ax=ax)
        ax.set_xlabel("query resolution factor")
        ax.set_ylabel(label)
        ax.invert_xaxis()
    fig.suptitle("CAM consistency: full-resolution vs degraded query views")
    fig.tight_layout()
    return fig

def _as_rgb(x: Any) -> np.ndarray:
    """A normalised (3, h, w) input tensor as the uint8 (h, w, 3) image it encodes."""
    from sisnet.data.transforms import IMAGENET_MEAN, IMAGENET_STD

    mean = np.asarray(IMAGENET_MEAN, dtype=np.float32)[:, None, None]
    std = np.asarray(IMAGENET_STD, dtype=np.float32)[:, None, None]
    img = (x.detach().cpu().float().numpy() * std + mean).transpose(1, 2, 0)
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


def _view_label(cfg: Any, small: bool) -> str:
    if not small:
        return f"full view\n{cfg.img_height}x{cfg.img_width}"
    h, w = cfg.small_size
    how = "degraded" if cfg.small_view == "degrade" else "native"
    return f"x{cfg.scale_factor:g} view ({how})\n{h}x{w}"


def _fig3_images(ds, n_ids: int, seed: int) -> list:
    """``n_ids`` query images of test identities (drawn seeded), the largest crop of each (most detail)."""
    by_pid: dict[int, list] = {}
    for r in ds.query:
        by_pid.setdefault(r.pid, []).append(r)
    scales = ds.scales()
    heights = dict(zip(scales["path"], scales["height_px"])) if scales is not None else {}
    return [max(by_pid[p], key=lambda r: (heights.get(r.path, 0), r.path)) for p in pick(sorted(by_pid), n_ids, seed)]


def _fig3_maps(tm: TrainedModel, rec: Any) -> dict[str, Any]:
    """One model's two input views of ``rec`` as fed, their raw CAMs (the class predicted for the full view) and
    the table row of that (image, model)."""
    from sisnet.data.transforms import EvalTransform, decode_image

    cfg = tm.config
    x_full, x_small = EvalTransform(cfg.view_spec(), 1.0)(decode_image(rec.path, (cfg.img_height, cfg.img_width)))
    cam_f, cls = cams(tm.model, x_full[None], None)
    cam_s, _ = cams(tm.model, x_small[None], cls)
    corr, mse = cam_agreement(cam_f, cam_s)
    row = {"pid": int(rec.pid), "path": os.path.basename(rec.path), "method": tm.method, "class": int(cls[0]),
           "full_input_hw": f"{x_full.shape[-2]}x{x_full.shape[-1]}",
           "small_input_hw": f"{x_small.shape[-2]}x{x_small.shape[-1]}",
           "full_map_hw": f"{cam_f.shape[-2]}x{cam_f.shape[-1]}", "small_map_hw": f"{cam_s.shape[-2]}x{cam_s.shape[-1]}",
           "corr": float(corr[0]), "mse": float(mse[0])}
    return {"views": (x_full, x_small), "cams": (cam_f[0].numpy(), cam_s[0].numpy()), "row": row}


def _draw_view(ax, x: Any, full_hw: tuple[int, int], cam: np.ndarray | None = None, **cam_style: Any) -> None:
    """An input view at its true pixel size on a full-size canvas, optionally with its CAM over it."""
    h, w = x.shape[-2:]
    ax.imshow(_as_rgb(x), extent=(0, w, h, 0), interpolation="nearest")
    if cam is not None:
        ax.imshow(cam, extent=(0, w, h, 0), interpolation="bilinear", **cam_style)
    ax.set_xlim(0, full_hw[1])
    ax.set_ylim(full_hw[0], 0)
    ax.set_xticks([])
    ax.set_yticks([])


def fig3_cam(
    models: Mapping[str, TrainedModel],
    ds,
    *,
    n_ids: int = 3,
    seed: int = 0,
    alpha: float = 0.5,
    cmap: str = "viridis",
) -> tuple[Any, pd.DataFrame]:
    """The paper's Fig. 3 as the network sees it: the two input views of test identities and each model's CAMs.

    For ``n_ids`` test identities (query images, never seen in training; the largest crop of each) the figure
    shows, in two rows, the full-scale view and the second-scale view exactly as the network receives them
    (the evaluation transform's tensors, drawn at their true pixel size on the same scale: with
    ``small_view="degrade"`` the second view is a blurred full-size image, with ``"native"`` a smaller one).
    Then, per model, the CAM over the view (bilinear) and the CAM at its native feature-map resolution (nearest
    neighbour: what the DRC loss compares). Every map of the figure is drawn on **one** colour scale, the raw CAM
    in logit units (its spatial mean is the class logit up to a constant), with one colour bar and a perceptually
    uniform ``cmap``: a near-uniform map looks uniform, it is not stretched to the full range per image. A test
    identity is not a class of the classifier, so the CAM is that of the class the model predicts for the full
    view (the same class for both views). The title states n, the number of images. Returns ``(figure,
    table)``; the table has one row per (image, method): ``pid``, ``path``, ``method``, ``class``, the input and
    map sizes of both views, and ``corr`` / ``mse`` between the two views' normalised maps (see
    :func:`cam_agreement`).
    """
    from matplotlib.colors import Normalize

    plt = _plt()
    if not models:
        raise ValueError("fig3_cam needs at least one model (see load_models).")
    chosen = _fig3_images(ds, n_ids, seed)
    maps = {(i, m): _fig3_maps(tm, rec) for i, rec in enumerate(chosen) for m, tm in models.items()}
    values = np.concatenate([c.ravel() for v in maps.values() for c in v["cams"]])
    style = {"cmap": cmap, "norm": Normalize(float(values.min()), float(values.max()))}
    first = next(iter(models.values())).config
    full_hw = (first.img_height, first.img_width)
    cols = 1 + 2 * len(models)
    fig, axes = plt.subplots(2 * len(chosen), cols, figsize=(1.55 * cols + 1.2, 2.7 * len(chosen) + 1.0),
                             squeeze=False, layout="constrained")
    for i, rec in enumerate(chosen):
        views = maps[(i, next(iter(models)))]["views"]
        for k in range(2):
            _draw_view(axes[2 * i + k, 0], views[k], full_hw)
            axes[2 * i + k, 0].set_ylabel(f"id {rec.pid}\n{_view_label(first, bool(k))}", fontsize=MIN_FONT)
        for j, method in enumerate(models):
            entry = maps[(i, method)]
            for k in range(2):
                ax_o, ax_m = axes[2 * i + k, 1 + 2 * j], axes[2 * i + k, 2 + 2 * j]
                _draw_view(ax_o, entry["views"][k], full_hw, entry["cams"][k], alpha=alpha, **style)
                image = ax_m.imshow(entry["cams"][k], interpolation="nearest", **style)
                ax_m.set_xticks([])
                ax_m.set_yticks([])
                ax_m.set_xlabel("{}x{} map".format(*entry["cams"][k].shape), fontsize=MIN_FONT)
            axes[2 * i + 1, 1 + 2 * j].set_xlabel(f"r = {entry['row']['corr']:.2f}", fontsize=MIN_FONT)
    axes[0, 0].set_title("(a) input as fed", fontsize=MIN_FONT + 1)
    for j, method in enumerate(models):
        axes[0, 1 + 2 * j].set_title(f"({'bcdefgh'[j]}) {method}", fontsize=MIN_FONT + 1)
        axes[0, 2 + 2 * j].set_title("native map", fontsize=MIN_FONT)
    fig.colorbar(image, ax=axes, shrink=0.5, label="raw CAM (logit units), one scale for every map")
    loss = next(iter(models.values())).loss
    fig.suptitle(f"Fig. 3: CAMs at two scales, n = {len(chosen)} test images ({loss}); class: the one predicted for the "
                 f"full view\nr = correlation of the two min-max normalised maps (what the DRC loss compares)",
                 fontsize=MIN_FONT + 1)
    return fig, pd.DataFrame([v["row"] for v in maps.values()])

@dataclass
class RankedRow:
    """One row of a ranked-list figure: a query and its top gallery items.

    ``label`` is written beside the query; ``titles`` above each item; ``colors`` frame each item (``None``:
    no frame); ``captions`` (optional) under each item; ``struck`` (optional) crosses items out.
    """

    query: np.ndarray
    label: str
    images: list[np.ndarray]
    titles: list[str]
    colors: list[str | None]
    captions: list[str] = field(default_factory=list)
    query_color: str | None = None
    struck: list[bool] = field(default_factory=list)


def draw_ranked_lists(rows: Sequence[RankedRow], title: str | None = None):
    """The one ranked-list drawer: one row per query, the query first, then its ranked items."""
    plt = _plt()
    if not rows:
        raise ValueError("draw_ranked_lists needs at least one row (a query and its ranked items).")
    top_k = max(1, max(len(r.images) for r in rows))
    fig, axes = plt.subplots(len(rows), top_k + 1, figsize=(1.1 * (top_k + 1), 2.3 * len(rows) + 0.4), squeeze=False)
    for i, row in enumerate(rows):
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
        ax = axes[i, 0]
        ax.imshow(row.query)
        ax.set_ylabel(row.label, fontsize=MIN_FONT)
        if row.query_color:
            for s in ax.spines.values():
                s.set_edgecolor(row.query_color)
                s.set_linewidth(2)
        for j in range(top_k):
            ax = axes[i, j + 1]
            if j >= len(row.images):
                ax.axis("off")
                continue
            ax.imshow(row.images[j])
            ax.set_title(row.titles[j], fontsize=MIN_FONT)
            if j < len(row.captions) and row.captions[j]:
                ax.set_xlabel(row.captions[j], fontsize=MIN_FONT)
            if row.colors[j]:
                for s in ax.spines.values():
                    s.set_edgecolor(row.colors[j])
                    s.set_linewidth(3)
            if j < len(row.struck) and row.struck[j]:
                h, w = row.images[j].shape[:2]
                ax.plot([0, w - 1], [0, h - 1], color="black", lw=2)
                ax.plot([0, w - 1], [h - 1, 0], color="black", lw=2)
    if title:
        fig.suptitle(title, fontsize=MIN_FONT + 1)
    fig.tight_layout()
    return fig


def plot_worked_query(ds, example: Any, n_show: int = 12, thumb_hw: tuple[int, int] = (128, 64)):
    """The worked query of :func:`sisnet.report.protocol.protocol_example`: ``n_show`` items of its ranked gallery.

    The first items of the ranking, then, when the query's true matches or removed items (same identity, same
    camera) rank further down, those items too (up to half of ``n_show``), so that every rule is seen; each item
    is titled with its rank. Removed items are crossed out and have no rank; true matches have a green frame,
    other identities a red one, distractors (pid 0) an orange one. The title names only what is shown.
    Cameras are numbered from 1, as in Market-1501's file names (``c1`` ... ``c6``).
    """
    from sisnet.report.protocol import STATUS_DISTRACTOR, STATUS_MATCH, STATUS_REMOVED

    colors = {STATUS_MATCH: "limegreen", STATUS_DISTRACTOR: "orange", STATUS_REMOVED: None}
    ranked = example.ranked
    special = ranked.iloc[n_show:]
    special = special[special["status"].isin([STATUS_MATCH, STATUS_REMOVED])].head(n_show // 2)
    top = pd.concat([ranked.head(n_show - len(special)), special])
    q = example.query
    row = RankedRow(
        query=_open_rgb(q.path, thumb_hw), label=f"query: id {q.pid}, cam {q.camid + 1}",
        images=[_open_rgb(ds.gallery[int(i)].path, thumb_hw) for i in top["gallery_index"]],
        titles=[("removed" if st == STATUS_REMOVED else f"rank {int(r)}") for st, r in zip(top["status"], top["rank"])],
        colors=[colors.get(st, "red") for st in top["status"]],
        captions=[f"id {p}\ncam {c}" for p, c in zip(top["pid"], top["camera"])],
        struck=[st == STATUS_REMOVED for st in top["status"]], query_color="black")
    shown = set(top["status"])
    what = [f"the first {n_show - len(special)} gallery items"]
    if len(special):
        what.append(f"then {len(special)} further down")
    keys = [("crossed out: same identity and camera, removed", STATUS_REMOVED), ("green: true match", STATUS_MATCH),
            ("orange: distractor", STATUS_DISTRACTOR)]
    legend = "; ".join(text for text, status in keys if status in shown) + "; red: another identity"
    return draw_ranked_lists([row], f"One query under the protocol: {', '.join(what)}\n{legend}")

def ranked_list_figure(
    models: Mapping[str, TrainedModel],
    ds,
    *,
    methods: Sequence[str] = ("Baseline", "SiSNet+DRC"),
    n_queries: int = 4,
    top_k: int = 8,
    query_scale: float = 0.5,
    seed: int = 0,
):
    """Top-``top_k`` gallery matches of ``n_queries`` degraded queries, one row per (query, model).

    Same-identity same-camera gallery images are left out (standard protocol); a green frame marks
    a true match, red a false one. Queries are drawn (seeded) among those with at least one valid
    true match in the gallery.
    """
    from sisnet.evaluation import extract_features
    from sisnet.metrics import compute_distance

    methods = [m for m in methods if m in models] or list(models)[:1]
    g_pids = np.array([r.pid for r in ds.gallery])
    g_cams = np.array([r.camid for r in ds.gallery])
    valid_q = [q for q in ds.query if np.any((g_pids == q.pid) & (g_cams != q.camid))]
    if not valid_q:
        raise ValueError("No query has a true match in the gallery under the standard protocol.")
    queries = pick(valid_q, n_queries, seed)
    gallery_feats: dict[str, Any] = {}
    rows = []
    for q in queries:
        for method in methods:
            tm = models[method]
            cfg = tm.config
            size = (cfg.img_height, cfg.img_width)
            qf, _, _ = extract_features(tm.model, [q], cfg, "either", query_scale=query_scale)
            if method not in gallery_feats:
                gallery_feats[method] = extract_features(tm.model, ds.gallery, cfg, "either")[0]
            dist = compute_distance(qf, gallery_feats[method], metric=cfg.metric)[0]
            keep = ~((g_pids == q.pid) & (g_cams == q.camid))
            order = np.flatnonzero(keep)[np.argsort(dist[keep], kind="stable")][:top_k]
            gal = [ds.gallery[k] for k in order]
            rows.append(RankedRow(
                query=_degraded_rgb(q.path, size, query_scale), label=f"{method}\nquery x{query_scale:g}",
                images=[_open_rgb(g.path, size) for g in gal],
                titles=[f"{j + 1}: d={dist[k]:.2f}" for j, k in enumerate(order)],
                colors=["limegreen" if g.pid == q.pid else "red" for g in gal], query_color="black"))
    return draw_ranked_lists(rows, f"Ranked lists (queries at x{query_scale:g} resolution; green = same identity)")


def plot_mot_frame(sequence: str | os.PathLike, frame: int | None = None, fmt: str = "auto"):
    """One frame of a MOTChallenge sequence (frame folder or video) with its ground-truth boxes and track ids.

    ``sequence`` is what :func:`sisnet.data.mot.convert_mot` takes: a sequence folder or a video file beside
    ``gt/gt.txt``. ``frame`` (1-based) defaults to the annotated frame with the most boxes. Labels sit inside
    the top of each box, on a dark background, so neighbouring labels stay legible.
    """
    from sisnet.data.frames import FrameSource
    from sisnet.data.mot import read_mot_annotations

    plt = _plt()
    src = FrameSource(Path(sequence))
    gt, _ = read_mot_annotations(src.seq_dir / "gt" / "gt.txt", fmt)
    frame = int(gt["frame"].value_counts().idxmax()) if frame is None else int(frame)
    rgb = np.asarray(next(src.iter_frames([frame]))[1])
    fig, ax = plt.subplots(figsize=(6.4, 6.4 * rgb.shape[0] / rgb.shape[1]))
    ax.imshow(rgb)
    palette = plt.get_cmap("tab10")
    for row in gt[gt["frame"] == frame].itertuples(index=False):
        color = palette(int(row.id) % 10)
        ax.add_patch(plt.Rectangle((row.bb_left - 1, row.bb_top - 1), row.width, row.height, fill=False,
                                   edgecolor=color, linewidth=1.5))
        ax.text(row.bb_left, row.bb_top, f"{int(row.id)}", color="white", fontsize=6, va="top", ha="left",
                bbox=dict(boxstyle="square,pad=0.1", facecolor=color, edgecolor="none", alpha=0.85))
    ax.set_axis_off()
    ax.set_title(f"{src.name}, frame {frame}: ground-truth boxes (track id)", fontsize=9)
    fig.tight_layout()
    return fig


def market_pid(path: str | os.PathLike) -> int:
    """The identity in a Market-1501-style file name (``0012_c3s1_000123_00.jpg`` -> 12; ``-1`` for junk)."""
    name = Path(path).name
    head = name.split("_", 1)[0]
    try:
        return int(head)
    except ValueError:
        raise ValueError(f"{name!r} is not a Market-1501-style file name (expected '<pid>_c<cam>...').") from None

def plot_search_results(queries: Sequence[str | os.PathLike], results: Sequence[pd.DataFrame], *,
                        thumb_hw: tuple[int, int] = (128, 64), title: str | None = None):
    """Ranked lists from :func:`sisnet.search.search`, one row per query.

    When the file names carry identities (Market-1501 style, as the MOT converter writes them) a green frame
    marks the same person as the query and red another one; otherwise items have no frame.
    """
    if len(queries) != len(results) or not queries:
        raise ValueError("plot_search_results needs one results table per query (and at least one query).")

    def pid_or_none(path) -> int | None:
        try:
            return market_pid(path)
        except ValueError:
            return None

    rows = []
    for q, res in zip(queries, results):
        q_pid = pid_or_none(q)
        colors = []
        for path in res["path"]:
            g_pid = pid_or_none(path)
            colors.append(None if q_pid is None or g_pid is None else ("limegreen" if g_pid == q_pid else "red"))
        rows.append(RankedRow(
            query=_open_rgb(str(q), thumb_hw), label="query", images=[_open_rgb(p, thumb_hw) for p in res["path"]],
            titles=[f"{int(r)}: d={d:.2f}" for r, d in zip(res["rank"], res["distance"])], colors=colors,
            captions=["_".join(Path(p).name.split("_")[:2]) for p in res["path"]]))  # identity and camera
    return draw_ranked_lists(rows, title or "Search results (green = same person as the query, from the file names)")
