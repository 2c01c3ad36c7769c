"""The paper's published numbers: spot values, shapes and the paper's own cross-references.

The cross-checks use facts the paper states in its text (Table 1's "Ours" is the S.+T. SiSNet+DRC
row of Table 2; the gains quoted under Table 2; "Ours" is the best in every column), so a
transcription slip in either table makes one of them fail.
"""
from __future__ import annotations

import math

import pytest

from sisnet import paper


def test_table1_shape_and_spot_values():
    t1 = paper.table1()
    assert len(t1) == 10 * 3 * 2
    assert list(t1["method"].unique())[:2] == ["PCB [2]", "HPM [3]"]
    assert paper.published(1, dataset="market1501", metric="rank1", method="PCB [2]") == 93.8
    assert paper.published(1, dataset="msmt17", metric="mAP", method="OSNet [11]") == 52.9
    assert paper.published(1, dataset="dukemtmcreid", metric="mAP", method="DPFL [12]") == 60.6
    # "-" in the paper: HPM, VPM, CASN, AANet, DPFL and MLFN have no MSMT17 numbers.
    missing = t1[t1["value"].isna()]
    assert set(missing["dataset"]) == {"msmt17"}
    assert len(missing) == 6 * 2
    assert math.isnan(paper.published(1, dataset="msmt17", metric="rank1", method="HPM [3]"))


def test_table1_ours_is_best_in_every_column():
    wide = paper.table1_wide()
    ours = wide.xs("Ours", level="method").iloc[0]
    others = wide.drop(index="Ours", level="method")
    assert (ours > others.max()).all()


def test_table1_ours_equals_table2_sisnet_drc_softmax_triplet():
    for dataset in paper.PAPER_DATASETS:
        for metric in paper.METRICS:
            assert paper.published(1, dataset=dataset, metric=metric, method="Ours") == paper.published(
                2, dataset=dataset, metric=metric, method="SiSNet+DRC", loss="S.+T."
            )


def test_table2_gains_quoted_in_the_text():
    def gain(dataset, metric):
        return paper.published(2, dataset=dataset, metric=metric, method="SiSNet", loss="S.+T.") - paper.published(
            2, dataset=dataset, metric=metric, method="Baseline", loss="S.+T."
        )

    # "the Rank1/mAP goes up by 0.6%/1.5% on Market-1501, 1%/2% on DukeMTMC-ReID and .../3.8% on MSMT17"
    assert gain("market1501", "rank1") == pytest.approx(0.6)
    assert gain("market1501", "mAP") == pytest.approx(1.5)
    assert gain("dukemtmcreid", "rank1") == pytest.approx(1.0)
    assert gain("dukemtmcreid", "mAP") == pytest.approx(2.0)
    assert gain("msmt17", "mAP") == pytest.approx(3.8)
    # (the text's MSMT17 rank-1 gain "0.6%" disagrees with the table, 78.9 - 76.3 = 2.6; the table is kept)
    assert gain("msmt17", "rank1") == pytest.approx(2.6)


def test_table2_ordering_and_layout():
    wide = paper.table2_wide()
    assert wide.shape == (6, 6)
    assert list(wide.index) == [(l, m) for l in paper.LOSS_TYPES for m in paper.METHODS]
    assert wide.loc[("S.", "Baseline"), ("MSMT17", "mAP")] == 41.4
    # every column: Baseline < SiSNet < SiSNet+DRC within a loss type, and S.+T. beats S.
    for loss in paper.LOSS_TYPES:
        block = wide.xs(loss, level="loss")
        assert (block.loc["Baseline"] < block.loc["SiSNet"]).all()
        assert (block.loc["SiSNet"] < block.loc["SiSNet+DRC"]).all()
    assert (wide.xs("S.+T.", level="loss").values > wide.xs("S.", level="loss").values).all()


def test_table3_values_and_the_papers_claim_that_drc_closes_the_gap():
    t3 = paper.table3()
    assert len(t3) == 36
    assert paper.published(3, dataset="market1501", metric="mAP", method="Baseline", loss="S.") == 2.52
    assert paper.published(3, dataset="msmt17", metric="rank1", method="SiSNet", loss="S.+T.") == 0.7
    assert paper.published(3, dataset="dukemtmcreid", metric="mAP", method="SiSNet+DRC", loss="S.+T.") == 0.02
    wide = paper.table3_wide()
    for loss in paper.LOSS_TYPES:
        block = wide.xs(loss, level="loss")
        assert (block.loc["Baseline"] > block.loc["SiSNet"]).all()
        assert (block.loc["SiSNet"] > block.loc["SiSNet+DRC"]).all()
    assert (t3["gap"] > 0).all()


def test_published_rejects_unknown_keys_with_the_valid_choices():
    with pytest.raises(KeyError, match="Valid datasets"):
        paper.published(2, dataset="cuhk03", metric="rank1", method="SiSNet", loss="S.")
    with pytest.raises(KeyError, match="loss type"):
        paper.published(3, dataset="market1501", metric="rank1", method="SiSNet", loss="T.")
    with pytest.raises(KeyError, match="Tables 1, 2 and 3"):
        paper.published(4, dataset="market1501", metric="rank1", method="SiSNet")
