"""Export a trained checkpoint's retrieval feature extractor to ONNX, and run such a file with onnxruntime.

CLI::

    python -m sisnet.export --checkpoint data/runs/<run_id> --out model.onnx [--mode either|cascaded] \
        [--opset 18] [--no-check]

What the graph computes: the library's retrieval feature of ``mode`` (:func:`sisnet.model.retrieval_features`,
as :func:`sisnet.evaluation.extract_features` computes it):

* ``either``: the L2-normalised BNNeck feature of the full-size image, ``(N, C)``;
* ``cascaded``: the L2-normalised concatenation of the BNNeck features of the image and of its second-scale view,
  ``(N, 2C)``. The second view is made inside the graph from the input, as the library makes it
  (:func:`sisnet.data.transforms.make_small_view` with the checkpoint config's ``scale_factor`` and
  ``small_view``), so the input is the same for both modes.

Input ``images``: ``float32 (N, 3, H, W)``, a NORMALISED image batch as the library feeds the network: RGB resized
to the checkpoint's input size (``img_height x img_width``, 96 x 48 for the cpu profile, 256 x 128 for paper), then
``(x / 255 - mean) / std`` with the ImageNet mean and std (:data:`sisnet.data.transforms.IMAGENET_MEAN` /
``IMAGENET_STD``, also in the model's metadata). ``N`` is any (dynamic batch axis). With numpy and PIL::

    rgb = PIL.Image.open(path).convert("RGB").resize((W, H), PIL.Image.BILINEAR)
    x = (numpy.asarray(rgb, numpy.float32) / 255 - MEAN) / STD                   # (H, W, 3)
    images = x.transpose(2, 0, 1)[None].astype(numpy.float32)                    # (1, 3, H, W)

Output ``features``: ``float32 (N, D)``, L2-normalised (compare with cosine distance ``1 - a @ b``, as
:func:`sisnet.metrics.compute_distance` does). ``python -m sisnet.extract --onnx model.onnx`` does the
preprocessing and runs the file (:class:`OnnxFeatureExtractor`).

The model's metadata (``onnx.load(path).metadata_props``, or ``InferenceSession.get_modelmeta()``) records the
mode, the input size, the normalisation constants, the second view, the checkpoint and its run id.
``export_onnx`` checks the exported file with onnxruntime against PyTorch on normalised random images (batch 1
and 3) unless ``check=False``. onnxruntime is an optional dependency (``pip install 'sisnet[onnx]'``; ``make
test`` installs it); exporting without the check needs only ``onnx`` and ``onnxscript``.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from sisnet.utils import atomic_write

__all__ = ["FeatureExtractor", "OnnxFeatureExtractor", "export_onnx", "check_onnx", "normalised_batch", "DEFAULT_OPSET"]

DEFAULT_OPSET = 18
INPUT_NAME = "images"
OUTPUT_NAME = "features"
_ORT_MISSING = ("onnxruntime is not installed; install it with `pip install 'sisnet[onnx]'` (or `pip install "
                "onnxruntime`){}.")


class FeatureExtractor(nn.Module):
    """Normalised ``images`` float32 ``(N, 3, H, W)`` -> the L2-normalised retrieval feature of ``mode``.

    ``spec`` (:meth:`sisnet.config.TrainConfig.view_spec`) defines the second view of ``"cascaded"``. Works on a
    copy of ``model`` in eval mode, with sisnet's CPU-only rewrite of dilated depthwise convolutions
    (``DenseDilatedDepthwiseConv2d``, the same function) turned back into plain dilated ``Conv2d`` so the graph
    uses ONNX's own dilation.
    """

    def __init__(self, model: nn.Module, spec: Any, mode: str = "either") -> None:
        super().__init__()
        from sisnet.model import EVAL_MODES, DenseDilatedDepthwiseConv2d

        if mode not in EVAL_MODES:
            raise ValueError(f"mode {mode!r} is not valid; choose one of {list(EVAL_MODES)}.")
        self.spec, self.mode = spec, mode
        self.model = copy.deepcopy(model).float().eval().to(memory_format=torch.contiguous_format)
        for module in self.model.modules():
            if isinstance(module, DenseDilatedDepthwiseConv2d):
                module.__class__ = nn.Conv2d
        self.eval()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        from sisnet.data.transforms import make_small_view
        from sisnet.model import retrieval_features  # the one definition of each mode's feature

        f_small = self.model(make_small_view(images, self.spec)).bn_feature if self.mode == "cascaded" else None
        return retrieval_features(self.model(images).bn_feature, f_small, (self.mode,))[self.mode]


def normalised_batch(images: torch.Tensor) -> torch.Tensor:
    """``uint8 (N, 3, H, W)`` RGB -> the float32 network input: the library's evaluation normalisation."""
    from sisnet.data.transforms import EvalTransform, ViewSpec

    return EvalTransform(ViewSpec(*images.shape[-2:])).finish(images, small=False)[0]


def _metadata(config: Any, mode: str, feature_dim: int, checkpoint: str | None, run_id: str | None) -> dict[str, str]:
    from sisnet import __version__
    from sisnet.data.transforms import IMAGENET_MEAN, IMAGENET_STD

    h, w = int(config.img_height), int(config.img_width)
    dim = feature_dim * (2 if mode == "cascaded" else 1)
    feature = ("either: L2-normalised BNNeck feature of the full-size image" if mode == "either" else
               f"cascaded: L2-normalised concatenation of the BNNeck features of the image and of its second view "
               f"(small_view={config.small_view!r}, scale_factor={config.scale_factor:g}, made in the graph)")
    return {
        "sisnet_version": str(__version__),
        "mode": mode,
        "feature": f"{feature} (sisnet.model.retrieval_features)",
        "feature_dim": str(dim),
        "input": f"{INPUT_NAME}: float32 (N, 3, {h}, {w}) RGB, normalised: (x / 255 - mean_rgb) / std_rgb",
        "input_size_hw": json.dumps([h, w]),
        "preprocessing": f"PIL: Image.open(p).convert('RGB').resize(({w}, {h}), Image.BILINEAR) -> float32 CHW / 255, "
                         f"then (x - mean_rgb) / std_rgb per channel",
        "mean_rgb": json.dumps(list(IMAGENET_MEAN)),
        "std_rgb": json.dumps(list(IMAGENET_STD)),
        "small_view": str(config.small_view),
        "scale_factor": repr(float(config.scale_factor)),
        "distance": f"{config.metric} (features are L2-normalised)",
        "backbone": str(config.backbone),
        "checkpoint": checkpoint or "",
        "run_id": run_id or "",
    }


def export_onnx(
    model: nn.Module,
    config: Any,
    out: str | os.PathLike,
    *,
    mode: str = "either",
    opset: int = DEFAULT_OPSET,
    check: bool = True,
    checkpoint: str | None = None,
    run_id: str | None = None,
) -> Path:
    """Write ``model``'s ``mode`` feature extractor (``"either"`` or ``"cascaded"``) to the ONNX file ``out``.

    One file, weights inside. ``config`` is the model's training config (input size, second view, metric). With
    ``check`` the file is run with onnxruntime on normalised random images (batch 1 and 3) and compared with
    PyTorch; a difference above 1e-4 removes the file and raises. Returns ``out``.
    """
    import onnx

    out = Path(out)
    if out.suffix.lower() != ".onnx":
        raise ValueError(f"ONNX output {str(out)!r} must end in .onnx.")
    wrapper = FeatureExtractor(model, config.view_spec(), mode).cpu()
    h, w = int(config.img_height), int(config.img_width)
    # batch 2: a batch of 1 would be specialised as a constant
    example = normalised_batch(torch.randint(0, 256, (2, 3, h, w), dtype=torch.uint8))
    with torch.no_grad():
        program = torch.onnx.export(
            wrapper, (example,), None, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], opset_version=opset,
            dynamo=True, external_data=False, verbose=False,
            dynamic_shapes={"images": {0: torch.export.Dim("batch", min=1)}},
        )  # fmt: skip
    proto = program.model_proto
    for key, value in _metadata(config, mode, int(wrapper.model.feature_dim), checkpoint, run_id).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out, "wb") as fh:
        fh.write(proto.SerializeToString())
    if check:
        try:
            diff = check_onnx(out, wrapper)
        except ImportError:
            out.unlink()
            raise
        if diff > 1e-4:
            out.unlink()
            raise RuntimeError(
                f"The exported ONNX model differs from PyTorch by up to {diff:.2e} (tolerance 1e-4); the file was "
                f"removed. Try another opset (--opset) or report the backbone ({config.backbone})."
            )
    return out


def _session(path: str | os.PathLike):
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ImportError(_ORT_MISSING.format(" to run ONNX files")) from exc
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def check_onnx(path: str | os.PathLike, reference: FeatureExtractor, batch_sizes: tuple[int, ...] = (1, 3),
               seed: int = 0) -> float:
    """Largest absolute difference between onnxruntime on ``path`` and ``reference`` (a :class:`FeatureExtractor`)
    on normalised random images of each batch size."""
    try:
        session = _session(path)
    except ImportError as exc:
        raise ImportError(_ORT_MISSING.format(" to check the export, or pass --no-check / check=False")) from exc
    gen = torch.Generator().manual_seed(seed)
    worst = 0.0
    for n in batch_sizes:
        images = normalised_batch(torch.randint(0, 256, (n, 3, *reference.spec.size), dtype=torch.uint8, generator=gen))
        with torch.no_grad():
            expected = reference(images).numpy()
        got = session.run([OUTPUT_NAME], {INPUT_NAME: images.numpy()})[0]
        if got.shape != expected.shape:
            raise RuntimeError(f"ONNX output shape {got.shape} != PyTorch {expected.shape} for batch {n}.")
        worst = max(worst, float(np.abs(got - expected).max()))
    return worst


class OnnxFeatureExtractor:
    """An ONNX file written by :func:`export_onnx`, run with onnxruntime on the CPU.

    ``mode``, ``input_size_hw`` (H, W) and ``meta`` (the file's metadata) come from the file. Call it on a
    normalised batch (:func:`normalised_batch` of ``uint8`` images) to get its L2-normalised features.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"No ONNX file at {str(path)!r}; write one with `python -m sisnet.export --checkpoint RUN --out {path}`."
            )
        self.path = path
        self.session = _session(path)
        self.meta = dict(self.session.get_modelmeta().custom_metadata_map)
        if "mode" not in self.meta or "input_size_hw" not in self.meta:
            raise ValueError(
                f"{str(path)!r} was not written by sisnet.export (no mode / input size in its metadata); export the "
                f"checkpoint again with `python -m sisnet.export`."
            )
        self.mode = self.meta["mode"]
        self.input_size_hw = tuple(int(v) for v in json.loads(self.meta["input_size_hw"]))

    def __call__(self, images: torch.Tensor | np.ndarray) -> np.ndarray:
        """Features ``(N, D)`` float32 of a normalised batch ``(N, 3, H, W)``."""
        x = np.ascontiguousarray(images.numpy() if isinstance(images, torch.Tensor) else images, dtype=np.float32)
        if x.ndim != 4 or tuple(x.shape[1:]) != (3, *self.input_size_hw):
            raise ValueError(f"{self.path.name} takes normalised images (N, 3, {self.input_size_hw[0]}, "
                             f"{self.input_size_hw[1]}); got {tuple(x.shape)}.")
        return self.session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]


def _main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sisnet.export", description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", required=True, help="checkpoint (last.pt) or run folder written by sisnet.engine.fit")
    ap.add_argument("--out", required=True, help="ONNX file to write (e.g. model.onnx)")
    ap.add_argument("--mode", default="either", choices=("either", "cascaded"),
                    help="either: full-size image's feature (C); cascaded: both scales' (2C)")
    ap.add_argument("--opset", type=int, default=DEFAULT_OPSET)
    ap.add_argument("--no-check", action="store_true", help="skip the onnxruntime-vs-PyTorch comparison")
    args = ap.parse_args(argv)
    try:
        from sisnet.runs import CHECKPOINT_NAME, load_checkpoint, load_model

        if Path(args.out).suffix.lower() != ".onnx":
            raise ValueError(f"--out {args.out!r} must end in .onnx.")
        model, config = load_model(args.checkpoint, device="cpu")
        ckpt = Path(args.checkpoint)
        ckpt = ckpt / CHECKPOINT_NAME if ckpt.is_dir() else ckpt
        run_id = load_checkpoint(ckpt).get("run_id")  # the runs-cache key the checkpoint was written under
        out = export_onnx(model, config, args.out, mode=args.mode, opset=args.opset, check=not args.no_check,
                          checkpoint=str(ckpt.absolute()), run_id=run_id)
    except (FileNotFoundError, ValueError, RuntimeError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    dim = model.feature_dim * (2 if args.mode == "cascaded" else 1)
    print(f"wrote {out}: normalised images float32 (N, 3, {config.img_height}, {config.img_width}) -> {args.mode} "
          f"features (N, {dim}), L2-normalised" + ("" if args.no_check else "; checked with onnxruntime"))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
