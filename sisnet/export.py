"""Export a trained checkpoint's retrieval feature extractor to ONNX, for inference without PyTorch.

CLI::

    python -m sisnet.export --checkpoint data/runs/<run_id> --out model.onnx [--opset 18] [--no-check]

What the graph computes: the library's ``"either"`` feature (:func:`sisnet.evaluation.extract_features`,
:meth:`sisnet.model.SiSNet.extract`), i.e. the L2-normalised BNNeck feature of the full-size image, with the
ImageNet normalisation inside the graph:

* input ``images``: ``float32 (N, 3, H, W)``, RGB, values 0-255, ``N`` any (dynamic batch axis), ``H x W`` the
  checkpoint's input size (``img_height x img_width``, e.g. 96 x 48 for the cpu profile, 256 x 128 for paper).
  Preprocessing is the library's (``sisnet.data.transforms.decode_image``)::

      rgb = PIL.Image.open(path).convert("RGB").resize((W, H), PIL.Image.BILINEAR)
      images = numpy.asarray(rgb, numpy.float32).transpose(2, 0, 1)[None]          # (1, 3, H, W), 0..255

* output ``features``: ``float32 (N, C)``, L2-normalised (compare with cosine distance ``1 - a @ b``, as
  :func:`sisnet.metrics.compute_distance` does).

The model's metadata (``onnx.load(path).metadata_props``, or ``InferenceSession.get_modelmeta()``) records the
input size, the normalisation constants, the feature, the checkpoint and its run id. ``export_onnx`` checks the
exported file with onnxruntime against PyTorch on random images (batch 1 and 3) unless ``check=False``.
The ``"cascaded"`` mode (two scales, 2C) is not exported: it needs the second-scale view of each image.
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

__all__ = ["FeatureExtractor", "export_onnx", "check_onnx", "DEFAULT_OPSET"]

DEFAULT_OPSET = 18
INPUT_NAME = "images"
OUTPUT_NAME = "features"


class FeatureExtractor(nn.Module):
    """``images`` float32 ``(N, 3, H, W)`` RGB 0-255 -> L2-normalised BNNeck feature ``(N, C)``.

    The same feature as the library's ``"either"`` mode (:func:`sisnet.model.retrieval_features`): ``normalize(model((x / 255 - mean) / std).bn_feature)``.
    Works on a copy of ``model`` in eval mode, with sisnet's CPU-only rewrite of dilated depthwise convolutions
    (``DenseDilatedDepthwiseConv2d``, the same function) turned back into plain dilated ``Conv2d`` so the graph
    uses ONNX's own dilation.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        from sisnet.data.transforms import IMAGENET_MEAN, IMAGENET_STD
        from sisnet.model import DenseDilatedDepthwiseConv2d

        self.model = copy.deepcopy(model).float().eval().to(memory_format=torch.contiguous_format)
        for module in self.model.modules():
            if isinstance(module, DenseDilatedDepthwiseConv2d):
                module.__class__ = nn.Conv2d
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        self.register_buffer("scale", 1.0 / (255.0 * std))
        self.register_buffer("shift", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) / std)
        self.eval()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        from sisnet.model import retrieval_features  # the one definition of the "either" feature

        return retrieval_features(self.model(images * self.scale - self.shift).bn_feature, None, ("either",))["either"]


def _metadata(config: Any, feature_dim: int, checkpoint: str | None, run_id: str | None) -> dict[str, str]:
    from sisnet import __version__
    from sisnet.data.transforms import IMAGENET_MEAN, IMAGENET_STD

    h, w = int(config.img_height), int(config.img_width)
    return {
        "sisnet_version": str(__version__),
        "feature": "either: L2-normalised BNNeck feature of the full-size image (sisnet.model.retrieval_features)",
        "feature_dim": str(feature_dim),
        "input": f"{INPUT_NAME}: float32 (N, 3, {h}, {w}) RGB, values 0-255 (normalised inside the graph)",
        "input_size_hw": json.dumps([h, w]),
        "preprocessing": f"PIL: Image.open(p).convert('RGB').resize(({w}, {h}), Image.BILINEAR) -> float32 CHW",
        "mean_rgb": json.dumps(list(IMAGENET_MEAN)),
        "std_rgb": json.dumps(list(IMAGENET_STD)),
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
    opset: int = DEFAULT_OPSET,
    check: bool = True,
    checkpoint: str | None = None,
    run_id: str | None = None,
) -> Path:
    """Write ``model``'s either-scale feature extractor to the ONNX file ``out`` (one file, weights inside).

    ``config`` is the model's training config (input size, metric). With ``check`` the file is run with
    onnxruntime on random images (batch 1 and 3) and compared with PyTorch; a difference above 1e-4 raises.
    Returns ``out``.
    """
    import onnx

    out = Path(out)
    if out.suffix.lower() != ".onnx":
        raise ValueError(f"ONNX output {str(out)!r} must end in .onnx.")
    wrapper = FeatureExtractor(model).cpu()
    h, w = int(config.img_height), int(config.img_width)
    example = torch.rand(2, 3, h, w) * 255  # batch 2: a batch of 1 would be specialised as a constant
    with torch.no_grad():
        program = torch.onnx.export(
            wrapper, (example,), None, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], opset_version=opset,
            dynamo=True, external_data=False, verbose=False,
            dynamic_shapes={"images": {0: torch.export.Dim("batch", min=1)}},
        )  # fmt: skip
    proto = program.model_proto
    feature_dim = int(wrapper.model.feature_dim)
    for key, value in _metadata(config, feature_dim, checkpoint, run_id).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out, "wb") as fh:
        fh.write(proto.SerializeToString())
    if check:
        diff = check_onnx(out, wrapper)
        if diff > 1e-4:
            out.unlink()
            raise RuntimeError(
                f"The exported ONNX model differs from PyTorch by up to {diff:.2e} (tolerance 1e-4); the file was "
                f"removed. Try another opset (--opset) or report the backbone ({config.backbone})."
            )
    return out


def check_onnx(path: str | os.PathLike, reference: nn.Module, batch_sizes: tuple[int, ...] = (1, 3), seed: int = 0) -> float:
    """Largest absolute difference between onnxruntime on ``path`` and ``reference`` (a :class:`FeatureExtractor`)
    on random 0-255 images of each batch size."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    _, _, h, w = session.get_inputs()[0].shape
    gen = torch.Generator().manual_seed(seed)
    worst = 0.0
    for n in batch_sizes:
        images = torch.rand(n, 3, int(h), int(w), generator=gen) * 255
        with torch.no_grad():
            expected = reference(images).numpy()
        got = session.run([OUTPUT_NAME], {INPUT_NAME: images.numpy()})[0]
        if got.shape != expected.shape:
            raise RuntimeError(f"ONNX output shape {got.shape} != PyTorch {expected.shape} for batch {n}.")
        worst = max(worst, float(np.abs(got - expected).max()))
    return worst


def _main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sisnet.export", description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", required=True, help="checkpoint (last.pt) or run folder written by sisnet.engine.fit")
    ap.add_argument("--out", required=True, help="ONNX file to write (e.g. model.onnx)")
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
        out = export_onnx(model, config, args.out, opset=args.opset, check=not args.no_check,
                          checkpoint=str(ckpt.absolute()), run_id=run_id)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {out}: images float32 (N, 3, {config.img_height}, {config.img_width}) RGB 0-255 -> features "
          f"(N, {model.feature_dim}), L2-normalised" + ("" if args.no_check else "; checked with onnxruntime"))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
