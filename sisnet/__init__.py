"""SiSNet: a reproducible companion to "Scale-Invariant Siamese Network for Person Re-Identification".

The package is deliberately thin; every notebook in ``notebooks/`` calls into it.

Modules (one idea of the paper each):
    sisnet.data      dataset formats, synthetic generator, PK sampler, two-scale transforms
    sisnet.model     the weight-shared siamese network on a timm backbone (BNNeck, classifier)
    sisnet.cam       class activation maps
    sisnet.losses    ID (label smoothing), batch-hard triplet, DRC
    sisnet.metrics   CMC / mAP / mINP, k-reciprocal re-ranking
    sisnet.config    dataclass configs and named profiles (smoke / cpu / paper)
    sisnet.engine    fit / evaluate / extract features, checkpoints
    sisnet.paper     the paper's published numbers, as data
    sisnet.reproduce runs the notebooks in order with papermill
"""

__version__ = "0.1.0"
