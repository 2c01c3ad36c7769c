"""Why adding the triplet loss lowers the Baseline here: the same runs scored with and without the gallery's
distractors, beside the loss terms of their first and last epoch."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from sisnet.report.context import NotebookContext, load
from sisnet.report.measure import percent
from sisnet.report.tables import PROTOCOL_STANDARD, GridRun

__all__ = ["PROTOCOL_NO_DISTRACTORS", "triplet_diagnosis"]

#: Label of the diagnostic protocol of :func:`triplet_diagnosis`: the standard one with the gallery's distractors
#: (pid 0: images of identities no query has) removed.
PROTOCOL_NO_DISTRACTORS = "standard, gallery without distractors"


def triplet_diagnosis(ctx: NotebookContext, runs: Sequence[GridRun], method: str = "Baseline") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Why adding the triplet loss lowers ``method`` here: ``(per_run, paired)``.

    ``per_run``: for each of ``method``'s runs in ``runs`` (both losses, every seed) rank-1 / mAP under the standard
    protocol and with the gallery's distractors removed (:data:`PROTOCOL_NO_DISTRACTORS`; both scored by
    :func:`sisnet.evaluation.evaluate_subsets` on the same features), and the ID and triplet loss terms of its
    first and last training epoch (from the run's history). ``paired``: :func:`sisnet.stats.paired_table` of
    S.+T. - S. under both protocols. If the gap is the distractors' doing, it closes without them.
    """
    from sisnet import paper
    from sisnet.evaluation import evaluate_subsets
    from sisnet.runs import load_model
    from sisnet.stats import Comparison, paired_table

    ds = load(ctx)
    every_query = np.ones(len(ds.query), dtype=bool)
    subsets = {PROTOCOL_STANDARD: (every_query, np.ones(len(ds.gallery), dtype=bool)),
               PROTOCOL_NO_DISTRACTORS: (every_query, np.array([r.pid != 0 for r in ds.gallery]))}
    rows, cache = [], {}
    for run in (r for r in runs if r.method == method):
        model, config = load_model(run.run_dir)
        first, last = run.history["epochs"][0], run.history["epochs"][-1]
        losses = {"loss_id_first": first["loss_id"], "loss_id_last": last["loss_id"],
                  "loss_triplet_first": first["loss_triplet"], "loss_triplet_last": last["loss_triplet"]}
        for protocol, res in evaluate_subsets(model, ds, config, subsets, image_cache=cache).items():
            rows.append({"loss": run.loss, "method": run.method, "seed": run.seed, "protocol": protocol,
                         **percent(res), "num_valid_queries": res["num_valid_queries"], **losses,
                         "run_id": run.run_id})
    per_run = pd.DataFrame(rows)
    if not len(per_run):
        raise ValueError(f"triplet_diagnosis: no run of {method!r} among the {len(runs)} runs given.")
    # the paper's own claim for this method (sisnet.paper.CLAIMS), not a second definition of it
    comparison = [Comparison(*c) for c in paper.CLAIMS if c[0] == f"{method}: S.+T. - S."]
    return per_run, paired_table(per_run, comparison)
