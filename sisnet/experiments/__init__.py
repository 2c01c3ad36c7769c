"""Experiments that write committed tables, apart from the notebook runner: ``python -m sisnet.experiments <name>``.

``real``: the paper's Table 2 grid on real pedestrians (:mod:`sisnet.experiments.real`): trained on CUHK03 +
CUHK01, settings chosen on CUHK03's validation identities, tested on VIPeR, PRID, GRID and i-LIDS.

``scale``: the controlled scale study (:mod:`sisnet.experiments.scale`): Table 2's claims on generated people whose
identity cue vanishes at a distance (generator version 4), chosen on a separately generated validation set.

What the real and the scale experiments share (the arms, the primary family of claims, the 1-SE rule, Holm's table) is in
:mod:`sisnet.experiments.common`.

The checks on synthetic data whose tables notebook 03 reads (each row carries the exact ``command``):
``validate`` (the validation sweep, :mod:`sisnet.experiments.validate`), ``convergence`` (the 2x-schedule check),
``triplet-schedule`` (Baseline S. and S.+T. at twice the schedule) and ``other-view`` (Table 2 with the other
second view); they share :mod:`sisnet.experiments.checks`.
"""
