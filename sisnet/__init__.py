"""SiSNet: a reproducible companion to "Scale-Invariant Siamese Network for Person Re-Identification".

The package is deliberately thin; every notebook in ``notebooks/`` calls into it.

Modules (one job each; README's "Layout" section has the full map):
    sisnet.config      TrainConfig, the named profiles (smoke / cpu / paper) and their settings, the Table 2 grid
    sisnet.data        dataset formats, synthetic generator, PK sampler, two-scale transforms, MOT conversion
    sisnet.weights     what ``pretrained`` may be, and which ImageNet weights it resolves to
    sisnet.model       the weight-shared siamese network on a timm backbone; the either / cascaded feature;
                       build_model (a config's network)
    sisnet.cam         class activation maps
    sisnet.losses      ID (label smoothing), batch-hard triplet (gathered over processes under torchrun), DRC
    sisnet.metrics     CMC / mAP / mINP, k-reciprocal re-ranking, distances, the reference evaluators
    sisnet.evaluation  feature extraction and evaluation of a model (standard / cross-scale / re-ranking)
    sisnet.runs        a run on disk: history, checkpoints, load_model
    sisnet.engine      fit / train_step (training)
    sisnet.report      the notebooks' logic by role (context, io, tables, runs, measure, cam_measures, figures, ...)
    sisnet.provenance  git commit, package versions, machine
    sisnet.paper       the paper's published numbers, as data
    sisnet.reproduce   runs the notebooks in order with papermill
    sisnet.experiments runs apart from the notebooks: real, validate, convergence, triplet-schedule, other-view
"""

__version__ = "0.1.0"
