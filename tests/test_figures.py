"""The figures say what they show: one CAM colour scale with a colour bar, the DRC term on its own log axis,
legends that name the lines drawn, a protocol figure that shows the items its title names, labels that do not
overlap, and fonts of at least ``MIN_FONT`` points. Drawn on the tiny generated set and small hand-made frames."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sisnet.report import figures
from sisnet.report.figures import MIN_FONT


@pytest.fixture(scope="module")
def tiny(tiny_synthetic_root):
    from sisnet.data import load_dataset

    return load_dataset("synthetic", tiny_synthetic_root)


def _texts(fig):
    from matplotlib.text import Text

    fig.canvas.draw()
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]


def _assert_fonts_readable(fig):
    small = [(t.get_text(), t.get_fontsize()) for t in _texts(fig) if t.get_fontsize() < MIN_FONT]
    assert not small, f"text below {MIN_FONT} pt: {small[:5]}"


def _history(drc: float):
    epochs = [{"epoch": e, "loss_total": 5.0 / e + drc / e, "loss_id": 4.0 / e, "loss_triplet": 1.0 / e,
               "loss_drc": drc / e, "lr": 1e-3, "seconds": 1.0} for e in range(1, 6)]
    evals = [{"epoch": e, "mode": m, "rank1": 0.5 + 0.01 * e, "mAP": 0.4 + 0.01 * e} for e in (4, 5)
             for m in ("cascaded", "either")]
    return {"epochs": epochs, "evals": evals}


def test_training_curves_put_the_drc_term_on_its_own_log_axis_and_legends_match_the_lines():
    fig = figures.plot_training(_history(drc=0.01), title="t")
    losses, drc_ax, evals = fig.axes[:3]
    assert drc_ax.get_yscale() == "log" and len(drc_ax.lines) == 1
    np.testing.assert_allclose(drc_ax.lines[0].get_ydata(), [0.01 / e for e in range(1, 6)])
    assert "drc" not in [t.get_text() for t in losses.get_legend().get_texts()]
    drawn = [line.get_label() for line in evals.lines]
    assert [t.get_text() for t in evals.get_legend().get_texts()] == drawn
    assert sorted(drawn) == ["mAP, cascaded", "mAP, either", "rank-1, cascaded", "rank-1, either"]
    assert "4, 5" in evals.get_title()
    _assert_fonts_readable(fig)
    no_drc = figures.plot_training(_history(drc=0.0))
    assert not no_drc.axes[1].lines and "no DRC term" in " ".join(t.get_text() for t in no_drc.axes[1].texts)


def _per_run():
    rows = []
    for method in ("Baseline", "Baseline+LR aug.", "SiSNet", "SiSNet+DRC"):
        for loss in ("S.", "S.+T."):
            for seed in range(3):
                for protocol in ("standard", "cross-scale (query x0.5)"):
                    rows.append({"method": method, "loss": loss, "seed": seed, "protocol": protocol,
                                 "rank1": 90 + seed + (loss == "S."), "mAP": 80 + seed})
    return pd.DataFrame(rows)


def test_table2_labels_are_horizontal_and_the_axis_fits_the_data():
    fig = figures.plot_table2(_per_run())
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["Baseline", "Baseline+LR aug.", "SiSNet", "SiSNet+DRC"]
    assert all(t.get_rotation() == 0 for t in ax.get_yticklabels())
    assert ax.get_xlim()[0] > 50  # rank-1 of 90-93 is not drawn from 0: differences of a point stay visible
    boxes = [t.get_window_extent() for t in ax.get_yticklabels()]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    assert "3 seeds" in fig._suptitle.get_text()
    _assert_fonts_readable(fig)


def test_fig3_cam_has_one_colour_scale_a_colour_bar_and_states_n(tiny):
    import torch

    from sisnet.config import get_config
    from sisnet.model import build_model
    from sisnet.report.runs import TrainedModel

    torch.manual_seed(0)
    cfg = get_config("smoke")
    models = {m: TrainedModel(m, "S.", 0, build_model(cfg, tiny.num_train_pids, pretrained=False).eval(), cfg, Path("."))
              for m in ("Baseline", "SiSNet+DRC")}
    fig, table = figures.fig3_cam(models, tiny, n_ids=2, seed=0)
    maps = [im for ax in fig.axes for im in ax.get_images() if im.get_array().ndim == 2]  # maps, not photos
    assert {im.get_cmap().name for im in maps} == {"viridis"}  # perceptually uniform, not jet
    assert len(maps) == 2 * 2 * 2 * 2  # images x views x models x (overlay, native map)
    assert len({im.get_clim() for im in maps}) == 1  # one shared vmin / vmax
    lo, hi = maps[0].get_clim()
    assert hi > lo
    colorbars = [ax for ax in fig.axes if "raw CAM" in ax.get_ylabel()]
    assert len(colorbars) == 1
    assert "n = 2 test images" in fig._suptitle.get_text()
    assert len(table) == 4 and table["corr"].between(-1, 1).all()
    _assert_fonts_readable(fig)


def test_protocol_figure_shows_what_its_title_promises(tiny):
    from sisnet.report.protocol import STATUS_MATCH, STATUS_REMOVED, protocol_example

    example = protocol_example(tiny, seed=0)
    ranked = example.ranked
    assert ranked["camera"].min() >= 1  # cameras numbered from 1, as in the file names
    gallery_cams = {int(r.camid) + 1 for r in tiny.gallery}
    assert set(ranked["camera"]) <= gallery_cams
    n_show = 4
    fig = figures.plot_worked_query(tiny, example, n_show=n_show)
    title = fig._suptitle.get_text()
    items = fig.axes[1:]
    titles = [ax.get_title() for ax in items]
    greens = sum(ax.spines["top"].get_edgecolor()[:3] == pytest.approx((0.196, 0.804, 0.196), abs=0.01) for ax in items)
    crossed = sum(len(ax.lines) == 2 for ax in items)
    assert len(items) == n_show
    assert ("green" in title) == (greens > 0) and ("crossed out" in title) == (crossed > 0)
    assert crossed == titles.count("removed")
    # at least one true match and one removed item are shown although neither need be in the first n_show
    wanted = set(ranked["status"]) & {STATUS_MATCH, STATUS_REMOVED}
    assert greens > 0 and (STATUS_REMOVED not in wanted or crossed > 0)
    _assert_fonts_readable(fig)


def test_sample_grid_numbers_cameras_from_one(tiny):
    fig = figures.plot_sample_grid(tiny, n_ids=2, per_id=3)
    cams = [int(t.get_text().split()[1]) for ax in fig.axes for t in [ax.title] if t.get_text().startswith("cam ")]
    assert cams and min(cams) >= 1 and max(cams) <= tiny.num_train_cams
    _assert_fonts_readable(fig)
