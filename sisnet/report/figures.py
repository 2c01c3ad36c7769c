"""Every figure of the companion (seaborn / matplotlib), with one ranked-list drawer for all ranked lists.

Training curves, Table 2 / 3 bars, the sample grid, the scale histogram, the Fig. 3 CAM grid,
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
           "ranked_list_figure", "plot_mot_frame", "market_pid", "plot_search_results"]


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
    fig, axes = plt.subplots(len(pids), per_id, figsize=(1.1 * per_id, 2.1 * len(pids)), squeeze=False)
    for i, pid in enumerate(pids):
        recs = pick(by_pid[pid], per_id, seed + i)
        if heights:
            recs = sorted(recs, key=lambda r: -heights.get(r.path, 0))
        for j in range(per_id):
            ax = axes[i, j]
            ax.axis("off")
            if j < len(recs):
                ax.imshow(_open_rgb(recs[j].path))
                label = f"cam {recs[j].camid}"
                if heights:
                    label += f"\n{heights.get(recs[j].path, float('nan')):.0f} px"
                ax.set_title(label, fontsize=7)
        axes[i, 0].text(-0.15, 0.5, f"id {pid}", transform=axes[i, 0].transAxes, rotation=90, va="center",
                        ha="right", fontsize=8)
    fig.suptitle(f"{ds.name}: {split} identities (native person height under each crop)", fontsize=9)
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
    """Loss terms per epoch (left) and rank-1 / mAP per evaluation, either-scale vs cascaded (right)."""
    plt = _plt()
    import seaborn as sns

    ep = epochs_frame(history)
    ev = evals_frame(history)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    loss_cols = [c for c in ("loss_total", "loss_id", "loss_triplet", "loss_drc") if c in ep.columns]
    if len(ep):
        long = ep.melt(id_vars="epoch", value_vars=loss_cols, var_name="term", value_name="loss")
        long["term"] = long["term"].str.replace("loss_", "", regex=False)
        sns.lineplot(data=long, x="epoch", y="loss", hue="term", marker="o", ax=axes[0])
    axes[0].set_title("training losses")
    if len(ev):
        long = ev.melt(id_vars=["epoch", "mode"], value_vars=["rank1", "mAP"], var_name="metric", value_name="percent")
        sns.lineplot(data=long, x="epoch", y="percent", hue="metric", style="mode", marker="o", ax=axes[1])
    axes[1].set_title("evaluations (percent)")
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig

def plot_table2(per_run: pd.DataFrame):
    """Bars of rank-1 and mAP (mean over seeds, error bars = std) per method, loss type and protocol."""
    plt = _plt()
    import seaborn as sns

    long = per_run.melt(id_vars=["loss", "method", "seed", "protocol"], value_vars=["rank1", "mAP"],
                        var_name="metric", value_name="percent")
    g = sns.catplot(data=long, x="method", y="percent", hue="loss", col="protocol", row="metric", kind="bar",
                    errorbar="sd", order=[m for m in paper.GRID_METHODS if m in set(per_run["method"])],
                    hue_order=list(paper.LOSS_TYPES), height=2.8,
                    aspect=1.25, sharey="row")
    g.set_titles("{row_name} | {col_name}")
    g.set_axis_labels("", "percent")
    for ax in g.axes.flat:
        ax.set_ylim(0, max(1.0, ax.get_ylim()[1]))
    n = per_run.groupby(["loss", "method", "protocol"]).size().max()
    g.figure.suptitle(f"Table 2, measured (mean ± std over {n} seed{'s' if n > 1 else ''})", y=1.02)
    return g.figure

def plot_table3(per_run: pd.DataFrame):
    """Bars of the cascaded-minus-either gap (points) per method and loss type (error bars = std over seeds)."""
    plt = _plt()
    import seaborn as sns

    long = per_run.melt(id_vars=["loss", "method", "seed"], value_vars=["rank1_gap", "mAP_gap"],
                        var_name="metric", value_name="gap (points)")
    long["metric"] = long["metric"].map({"rank1_gap": "rank-1 gap", "mAP_gap": "mAP gap"})
    g = sns.catplot(data=long, x="method", y="gap (points)", hue="loss", col="metric", kind="bar", errorbar="sd",
                    order=[m for m in paper.GRID_METHODS if m in set(long["method"])], hue_order=list(paper.LOSS_TYPES),
                    height=3.0, aspect=1.2)
    for ax in g.axes.flat:
        ax.axhline(0, color="k", lw=0.8)
    g.set_titles("{col_name}")
    g.figure.suptitle("Table 3, measured: cascaded minus either-scale", y=1.03)
    return g.figure

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


def fig3_cam(
    models: Mapping[str, TrainedModel],
    ds,
    *,
    n_ids: int = 3,
    seed: int = 0,
    alpha: float = 0.5,
) -> tuple[Any, pd.DataFrame]:
    """The paper's Fig. 3 as the network sees it: the two input views of test identities and each model's CAMs.

    For ``n_ids`` test identities (query images, never seen in training; the largest crop of each) the figure
    shows, in two rows, the full-scale view and the second-scale view exactly as the network receives them
    (the evaluation transform's tensors, drawn at their true pixel size on the same scale and labelled with it:
    with ``small_view="degrade"`` the second view is a blurred full-size image, with ``"native"`` a smaller one).
    Then, per model, the CAM overlaid on the view (bilinear, as usually shown) and the CAM at its native
    feature-map resolution (nearest neighbour: what the DRC loss compares). A test identity is not a class of
    the classifier, so the CAM is that of the class the model predicts for the full view (the same class for
    both views). Returns ``(figure, table)``; the table has one row per (image, method): ``pid``, ``path``,
    ``method``, ``class``, the input and map sizes of both views, and ``corr`` / ``mse`` between the two
    views' normalised maps (see :func:`cam_agreement`).
    """
    from sisnet.cam import overlay_cam
    from sisnet.data.transforms import EvalTransform, decode_image

    plt = _plt()
    if not models:
        raise ValueError("fig3_cam needs at least one model (see load_models).")
    by_pid: dict[int, list] = {}
    for r in ds.query:
        by_pid.setdefault(r.pid, []).append(r)
    heights = {}
    scales = ds.scales()
    if scales is not None:
        heights = dict(zip(scales["path"], scales["height_px"]))
    pids = pick(sorted(by_pid), n_ids, seed)
    # the largest crop of each identity (most detail, as in the paper's examples)
    chosen = [max(by_pid[p], key=lambda r: (heights.get(r.path, 0), r.path)) for p in pids]

    first = next(iter(models.values())).config
    H, W = first.img_height, first.img_width
    cols = 1 + 2 * len(models)
    fig, axes = plt.subplots(2 * len(chosen), cols, figsize=(1.3 * cols, 2.4 * len(chosen) + 0.7), squeeze=False)
    rows = []
    letters = "bcdefgh"
    for i, rec in enumerate(chosen):
        views = EvalTransform(first.view_spec(), 1.0)(decode_image(rec.path, (H, W)))
        for k, x in enumerate(views):
            ax = axes[2 * i + k, 0]
            h, w = x.shape[-2:]
            ax.imshow(_as_rgb(x), extent=(0, w, h, 0), interpolation="nearest")
            ax.set_xlim(0, W)
            ax.set_ylim(H, 0)  # same pixel scale for both views: a native small view looks small
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_ylabel(f"id {rec.pid}\n{_view_label(first, bool(k))}", fontsize=7)
        for j, (method, tm) in enumerate(models.items()):
            cfg = tm.config
            x_full, x_small = EvalTransform(cfg.view_spec(), 1.0)(decode_image(rec.path, (cfg.img_height, cfg.img_width)))
            cam_f, cls = cams(tm.model, x_full[None], None)
            cam_s, _ = cams(tm.model, x_small[None], cls)
            corr, mse = cam_agreement(cam_f, cam_s)
            rows.append({"pid": int(rec.pid), "path": os.path.basename(rec.path), "method": method,
                         "class": int(cls[0]), "full_input_hw": f"{x_full.shape[-2]}x{x_full.shape[-1]}",
                         "small_input_hw": f"{x_small.shape[-2]}x{x_small.shape[-1]}",
                         "full_map_hw": f"{cam_f.shape[-2]}x{cam_f.shape[-1]}",
                         "small_map_hw": f"{cam_s.shape[-2]}x{cam_s.shape[-1]}",
                         "corr": float(corr[0]), "mse": float(mse[0])})
            for k, (x, cam) in enumerate(((x_full, cam_f[0]), (x_small, cam_s[0]))):
                ax_o, ax_m = axes[2 * i + k, 1 + 2 * j], axes[2 * i + k, 2 + 2 * j]
                ax_o.imshow(overlay_cam(_as_rgb(x), cam.numpy(), alpha=alpha))
                ax_o.axis("off")
                ax_m.imshow(cam.numpy(), cmap="jet", interpolation="nearest")
                ax_m.set_xticks([])
                ax_m.set_yticks([])
                ax_m.set_xlabel(f"{cam.shape[0]}x{cam.shape[1]} map", fontsize=6)
            axes[2 * i + 1, 1 + 2 * j].set_title(f"r={float(corr[0]):.2f}", fontsize=7, y=-0.16)
    axes[0, 0].set_title("(a) input as fed", fontsize=8)
    for j, method in enumerate(models):
        axes[0, 1 + 2 * j].set_title(f"({letters[j]}) {method}", fontsize=8)
        axes[0, 2 + 2 * j].set_title("native map", fontsize=7)
    loss = next(iter(models.values())).loss
    fig.suptitle(f"Fig. 3: CAMs of the predicted class at two scales, test identities ({loss}); r = correlation "
                 f"of the two maps", fontsize=9)
    fig.tight_layout()
    return fig, pd.DataFrame(rows)


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
    fig, axes = plt.subplots(len(rows), top_k + 1, figsize=(0.95 * (top_k + 1), 1.95 * len(rows)), squeeze=False)
    for i, row in enumerate(rows):
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
        ax = axes[i, 0]
        ax.imshow(row.query)
        ax.set_ylabel(row.label, fontsize=7)
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
            ax.set_title(row.titles[j], fontsize=6)
            if j < len(row.captions) and row.captions[j]:
                ax.set_xlabel(row.captions[j], fontsize=5)
            if row.colors[j]:
                for s in ax.spines.values():
                    s.set_edgecolor(row.colors[j])
                    s.set_linewidth(3)
            if j < len(row.struck) and row.struck[j]:
                h, w = row.images[j].shape[:2]
                ax.plot([0, w - 1], [0, h - 1], color="black", lw=2)
                ax.plot([0, w - 1], [h - 1, 0], color="black", lw=2)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_worked_query(ds, example: Any, n_show: int = 12, thumb_hw: tuple[int, int] = (128, 64)):
    """The worked query of :func:`sisnet.report.protocol.protocol_example`: its first ``n_show`` gallery items.

    Removed items (same identity, same camera) are crossed out and have no rank; true matches have a green
    frame, other identities a red one, distractors (pid 0) an orange one.
    """
    from sisnet.report.protocol import STATUS_DISTRACTOR, STATUS_MATCH, STATUS_REMOVED

    colors = {STATUS_MATCH: "limegreen", STATUS_DISTRACTOR: "orange", STATUS_REMOVED: None}
    top = example.ranked.head(n_show)
    q = example.query
    row = RankedRow(
        query=_open_rgb(q.path, thumb_hw), label=f"query: id {q.pid}, cam {q.camid + 1}",
        images=[_open_rgb(ds.gallery[int(i)].path, thumb_hw) for i in top["gallery_index"]],
        titles=[("removed" if st == STATUS_REMOVED else f"rank {int(r)}") for st, r in zip(top["status"], top["rank"])],
        colors=[colors.get(st, "red") for st in top["status"]],
        captions=[f"id {p}, cam {c + 1}" for p, c in zip(top["pid"], top["camid"])],
        struck=[st == STATUS_REMOVED for st in top["status"]], query_color="black")
    return draw_ranked_lists([row], "One query under the protocol (crossed out: same identity and camera, removed; "
                                    "green: true match)")


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
            captions=[Path(p).name[:14] for p in res["path"]]))
    return draw_ranked_lists(rows, title or "Search results (green = same person as the query, from the file names)")
