"""Experiments that write committed tables, apart from the notebook runner: ``python -m sisnet.experiments <name>``.

``real``: the paper's Table 2 grid on real pedestrians (:mod:`sisnet.experiments.real`): trained on CUHK03 +
CUHK01, settings chosen on CUHK03's validation identities, tested on VIPeR, PRID, GRID and i-LIDS.
"""
