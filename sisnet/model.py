"""The weight-shared siamese re-identification network (SiSNet) on a timm backbone.

One :class:`SiSNet` module *is* both siamese branches: :meth:`SiSNet.forward_pair` runs the same
weights on the full-scale and the small-scale view of a batch (two forward calls, so the two scales may
have different spatial sizes). The head follows the Bag-of-Tricks strong baseline (Luo et al. 2019):

    image (B, 3, H, W) -> timm backbone -> feature map F (B, C, h, w)
                       -> global average pooling -> pooled f (B, C)            [triplet loss]
                       -> BNNeck (BatchNorm1d, bias frozen at 0) -> f_bn (B, C) [retrieval, CAM]
                       -> bias-free Linear -> logits (B, num_classes)          [ID loss]

Decisions that the paper leaves open (documented parameters):

* ``last_stride`` -- 1 (the strong-baseline default) removes the final down-sampling so the last map is
  twice as large in each direction. For resnet-like backbones (timm ``ResNet`` family: a ``layer4``
  stage) the stride of the first ``layer4`` block (its strided conv, blur-pool and the shortcut's
  conv / average pool) is set to 1 exactly as Bag-of-Tricks does (no dilation). For any other backbone
  ``last_stride=1`` is implemented with timm's own ``output_stride=16`` (which replaces the last stride by
  a dilation) when the architecture supports it; otherwise a ``ValueError`` says so and suggests
  ``last_stride=None``. ``last_stride=None`` or ``2`` keeps the backbone's default (output stride 32).
* ``pretrained`` -- already resolved (see :func:`sisnet.weights.resolve_pretrained`, which owns what a
  ``pretrained`` spec may be): ``False`` (random init), ``True`` (timm's own weights; needs the Hugging
  Face hub or a cached copy; with ``HF_HUB_OFFLINE=1`` and nothing cached it fails at once with a message
  explaining how to pass a local file), or the path of a weights file holding a timm state dict for this
  backbone (checked by :func:`sisnet.weights.check_weights_file`, then loaded by timm via
  ``pretrained_cfg_overlay=dict(file=...)``).
"""
from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import timm
import torch
import torch.nn.functional as F
from torch import Tensor, nn

if TYPE_CHECKING:
    from sisnet.config import TrainConfig

__all__ = ["DenseDilatedDepthwiseConv2d", "ModelOutput", "SiSNet", "LAST_STRIDES", "check_backbone", "retrieval_features",
           "EVAL_MODES", "build_model"]

#: The values ``last_stride`` may take: 1 (strong baseline), 2 or None (the backbone's default).
LAST_STRIDES = (1, 2, None)


#: Retrieval feature modes (the paper's Table 3): one scale's feature, or both scales' concatenated.
EVAL_MODES = ("either", "cascaded")


def retrieval_features(f_full: Tensor, f_small: Tensor | None, modes: tuple[str, ...] = ("either",)) -> dict[str, Tensor]:
    """The retrieval features of BNNeck features, L2-normalised, float32: the one definition of each mode.

    ``"either"`` = L2(bn(x)), (B, C): one scale alone (``x`` may be either scale). ``"cascaded"`` =
    L2(cat(bn(x), bn(x_small))), (B, 2C): both scales of the same images.
    """
    bad = [m for m in modes if m not in EVAL_MODES]
    if bad:
        raise ValueError(f"mode(s) {bad} not valid; choose from {list(EVAL_MODES)}.")
    out = {}
    if "either" in modes:
        out["either"] = F.normalize(f_full.float(), p=2, dim=1)
    if "cascaded" in modes:
        if f_small is None:
            raise ValueError("mode='cascaded' concatenates both scales' features: pass x_small (the small-scale view).")
        if f_small.shape[0] != f_full.shape[0]:
            raise ValueError(
                f"x and x_small must hold the same images: batch sizes {f_full.shape[0]} and {f_small.shape[0]} differ."
            )
        out["cascaded"] = F.normalize(torch.cat([f_full.float(), f_small.float()], dim=1), p=2, dim=1)
    return out


class ModelOutput(NamedTuple):
    """What one branch returns for a batch of B images."""

    feature_map: Tensor  # (B, C, h, w) last backbone feature map
    pooled: Tensor  # (B, C) global average pooled feature (triplet loss uses this)
    bn_feature: Tensor  # (B, C) after the BNNeck (retrieval and CAM use this)
    logits: Tensor  # (B, num_classes) identity logits


def check_backbone(backbone: str) -> None:
    """Raise ``ValueError`` (with similar names) unless ``backbone`` is a timm model name, optionally tagged.

    The one check of a backbone name (the config validates with it).
    """
    if not isinstance(backbone, str) or not timm.is_model(backbone):
        close = difflib.get_close_matches(str(backbone).split(".")[0], timm.list_models(), n=6, cutoff=0.6)
        hint = f" Similar names: {', '.join(close)}." if close else ""
        raise ValueError(
            f"backbone={backbone!r} is not a timm model name.{hint} List the available CNNs with "
            f"`timm.list_models('*resnet*')` (or another pattern), e.g. 'resnet50', 'resnet18', "
            f"'mobilenetv2_100', 'mobilenetv3_small_100'."
        )
    arch, _, tag = backbone.partition(".")
    if tag:
        tagged = timm.list_pretrained(f"{arch}.*")
        if backbone not in tagged:
            raise ValueError(
                f"Unknown pretrained tag {tag!r} for timm backbone {arch!r}. Valid names: "
                f"{', '.join(tagged[:8]) or arch + ' (no tags)'}; or use {arch!r} without a tag."
            )


def _is_resnet_like(backbone: nn.Module) -> bool:
    layer4 = getattr(backbone, "layer4", None)
    return isinstance(layer4, nn.Sequential) and len(layer4) > 0


def _set_resnet_last_stride_1(backbone: nn.Module) -> None:
    """Remove the final down-sampling of a timm ResNet-family model, Bag-of-Tricks style (no dilation).

    Hand-written because timm offers only ``output_stride`` (dilation), which is a different network.
    In ``layer4[0]`` every stride-2 conv becomes stride 1, a stride-2 average pool on the shortcut
    (ResNet-D ``avg_down``) becomes an identity, and an anti-aliasing blur pool gets stride 1.
    """
    block = backbone.layer4[0]
    changed = 0
    for name, module in list(block.named_modules()):
        stride = getattr(module, "stride", None)
        if stride not in (2, (2, 2), [2, 2]):
            continue
        if isinstance(module, nn.Conv2d):
            module.stride = (1, 1)
        elif isinstance(module, (nn.AvgPool2d, nn.MaxPool2d)):
            parent_name, _, child = name.rpartition(".")
            parent = block.get_submodule(parent_name) if parent_name else block
            setattr(parent, child, nn.Identity())
        else:
            module.stride = 1 if isinstance(stride, int) else (1, 1)
        changed += 1
    if changed == 0:
        raise ValueError(
            "last_stride=1: the first block of this backbone's layer4 has no stride-2 layer to change "
            "(it is probably already dilated). Use last_stride=None to keep the backbone as it is."
        )


class DenseDilatedDepthwiseConv2d(nn.Conv2d):
    """A dilated depthwise ``nn.Conv2d`` that, on CPU, runs as the equivalent undilated conv.

    A k x k kernel with dilation d is a ((k-1)d+1)^2 kernel with zeros between the taps; with the same
    padding and stride both give the same outputs and the same gradients (the inserted zeros add exact
    zeros; the weight gradient of the real taps is read back through the strided assignment). Taps that
    can only ever land on the zero padding (a "same" conv on a map smaller than the dilated kernel, e.g.
    width 2 with dilation 2) are dropped as well.

    Measured on this project's 2-core CPU (PyTorch 2.14, channels_last, batch 32, 960 channels):
    forward+backward of the 3x3 dilation-2 depthwise conv on a 3x2 map takes 15 ms, the 5x5 form 4 ms; on
    a 6x3 map 7.9 vs 6.3 ms. Those are the last blocks of mobilenetv2 with ``output_stride=16``
    (``last_stride=1``), where the slow dilated kernel made the half-scale branch cost more than the
    full-scale one. The whole SiSNet/baseline training-step ratio went from 1.58 to about 1.45.
    Hand-written because neither timm nor PyTorch offers the substitution. On CUDA (cuDNN handles
    dilation well) the module runs the ordinary dilated conv. Parameters and state-dict keys are
    those of ``nn.Conv2d``: checkpoints load either way.
    """

    def forward(self, x: Tensor) -> Tensor:
        if x.device.type != "cpu":
            return super().forward(x)
        weight, padding = self.weight, list(self.padding)
        dil = list(self.dilation)
        for axis, size in ((0, x.shape[-2]), (1, x.shape[-1])):
            k, d = weight.shape[2 + axis], dil[axis]
            # Stride-1 "same" conv on a map smaller than the dilated kernel: the outer taps only ever
            # see the zero padding, so drop them (exact) and shrink the padding to match.
            if self.stride[axis] == 1 and k % 2 == 1 and padding[axis] == d * (k - 1) // 2:
                r = min((k - 1) // 2, (size - 1) // d)
                if r < (k - 1) // 2:
                    c = (k - 1) // 2
                    weight = weight.narrow(2 + axis, c - r, 2 * r + 1)
                    padding[axis] = r * d
        kh, kw = weight.shape[2:]
        dense = weight.new_zeros((weight.shape[0], weight.shape[1], (kh - 1) * dil[0] + 1, (kw - 1) * dil[1] + 1))
        dense[:, :, :: dil[0], :: dil[1]] = weight
        return F.conv2d(x, dense, self.bias, self.stride, tuple(padding), 1, self.groups)

    @classmethod
    def convert(cls, module: nn.Module) -> int:
        """Switch every plain, zero-padded, dilated depthwise ``nn.Conv2d`` in ``module`` to this class, in place.

        Returns how many were switched. The modules keep their parameters, so this is safe at any time.
        """
        n = 0
        for m in module.modules():
            if (
                type(m) is nn.Conv2d
                and m.groups > 1
                and m.groups == m.in_channels
                and max(m.dilation) > 1
                and m.padding_mode == "zeros"
                and not isinstance(m.padding, str)
            ):
                m.__class__ = cls
                n += 1
        return n


class SiSNet(nn.Module):
    """Siamese ReID network: timm backbone + GAP + BNNeck + bias-free classifier, shared by both branches.

    Args:
        backbone: any timm CNN name (``timm.list_models()``), e.g. ``"resnet50"`` (the paper), ``"resnet18"``,
            ``"mobilenetv2_100"``, ``"mobilenetv3_small_100"``.
        num_classes: number of training identities (>= 1).
        pretrained: ``False`` (or ``None``) | ``True`` | path to a local ``.pth``/``.pt``/``.safetensors`` timm state dict.
        last_stride: ``1`` (strong-baseline default), ``2`` or ``None`` (keep the backbone's default).
            See the module docstring for how 1 is realised on non-resnet backbones.
        **timm_kwargs: passed to ``timm.create_model`` (e.g. ``drop_path_rate``). ``num_classes`` and
            ``global_pool`` are fixed by this class; ``output_stride`` requires ``last_stride=None``.

    Attributes:
        feature_dim: C, the channel count of the last feature map (= pooled / BNNeck feature size).
    """

    def __init__(
        self,
        backbone: str,
        num_classes: int,
        pretrained: bool | str | Path = False,
        last_stride: int | None = 1,
        **timm_kwargs: Any,
    ) -> None:
        super().__init__()
        check_backbone(backbone)
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(
                f"num_classes must be a positive int (the number of training identities), got {num_classes!r}."
            )
        if last_stride not in LAST_STRIDES:
            raise ValueError(f"last_stride must be 1, 2 or None (keep the backbone's default), got {last_stride!r}.")
        for fixed in ("num_classes", "global_pool", "pretrained", "pretrained_cfg_overlay"):
            if fixed in timm_kwargs:
                raise ValueError(
                    f"timm keyword {fixed!r} is set by SiSNet itself; remove it "
                    f"(use SiSNet's num_classes / pretrained arguments instead)."
                )
        if "output_stride" in timm_kwargs and last_stride is not None:
            raise ValueError(
                "Pass either output_stride (a timm keyword) or last_stride, not both: "
                "use last_stride=None together with output_stride."
            )

        self.backbone_name = backbone
        self.num_classes = num_classes
        self.last_stride = last_stride

        create_kwargs: dict[str, Any] = dict(timm_kwargs, num_classes=0, global_pool="")
        resnet_like = self._probe_resnet_like(backbone)
        if last_stride == 1 and not resnet_like:
            create_kwargs["output_stride"] = 16
        self.backbone = self._create_backbone(backbone, pretrained, create_kwargs, last_stride)
        if last_stride == 1 and resnet_like:
            if not _is_resnet_like(self.backbone):
                raise ValueError(
                    f"last_stride=1: {backbone!r} has no layer4 stage to modify; use last_stride=None."
                )
            _set_resnet_last_stride_1(self.backbone)
        # Same function, faster on CPU (see the class): mobilenetv2's dilated last stage with last_stride=1.
        DenseDilatedDepthwiseConv2d.convert(self.backbone)

        self.feature_dim: int = int(self.backbone.num_features)
        self.bottleneck = nn.BatchNorm1d(self.feature_dim)
        self.bottleneck.bias.requires_grad_(False)  # BNNeck: bias frozen at zero (Bag-of-Tricks)
        nn.init.ones_(self.bottleneck.weight)
        nn.init.zeros_(self.bottleneck.bias)
        self.classifier = nn.Linear(self.feature_dim, num_classes, bias=False)
        nn.init.normal_(self.classifier.weight, std=0.001)

    # ------------------------------------------------------------------ construction helpers
    @staticmethod
    def _probe_resnet_like(backbone: str) -> bool:
        """Whether the architecture is a timm ResNet family model (has ``layer4``), without building weights."""
        entry = timm.models.model_entrypoint(backbone)
        module = getattr(entry, "__module__", "") or ""
        return module.endswith(("resnet", "resnest", "sknet", "res2net"))

    @staticmethod
    def _create_backbone(
        backbone: str, pretrained: bool | str | Path, create_kwargs: dict[str, Any], last_stride: int | None
    ) -> nn.Module:
        def create(**extra: Any) -> nn.Module:
            try:
                return timm.create_model(backbone, **create_kwargs, **extra)
            except TypeError as exc:
                if "output_stride" in str(exc) and last_stride == 1:
                    raise ValueError(
                        f"last_stride=1 is supported for resnet-like backbones (layer4) and for timm models that "
                        f"accept output_stride; {backbone!r} does neither. Use last_stride=None to keep the "
                        f"backbone's default stride, or a resnet backbone."
                    ) from exc
                raise

        if pretrained is None or pretrained is False:
            return create(pretrained=False)
        if pretrained is True:
            return SiSNet._create_with_hub_weights(backbone, create)
        if isinstance(pretrained, (str, os.PathLike)):
            return SiSNet._create_from_file(backbone, Path(pretrained), create)
        raise TypeError(
            f"pretrained must be False, True or a path to a .pth/.pt/.safetensors file, got {type(pretrained).__name__}."
        )

    @staticmethod
    def _create_with_hub_weights(backbone: str, create) -> nn.Module:
        how_to = (
            "Supply a local weights file instead: SiSNet(..., pretrained='path/to/weights.safetensors' or '.pth') "
            f"holding a timm state dict for {backbone!r} (see sisnet.weights.resolve_pretrained, which can prepare "
            "one), or use pretrained=False for random initialisation."
        )
        from sisnet.weights import hub_cached_file, hub_offline

        offline = hub_offline()
        if offline and hub_cached_file(backbone) is None:
            # Refuse before timm tries: huggingface_hub may have been imported before HF_HUB_OFFLINE was set
            # (then it would still go online), and URL-only weights go through torch.hub, which ignores it.
            raise RuntimeError(
                f"pretrained=True needs timm's ImageNet weights for {backbone!r}, but HF_HUB_OFFLINE=1 is set and "
                f"they are not in the local Hugging Face / torch.hub cache. {how_to}"
            )
        try:
            return create(pretrained=True)
        except Exception as exc:  # noqa: BLE001 - re-raised with the fix; the original is chained
            reason = "HF_HUB_OFFLINE=1 is set and they are not in the local cache" if offline else "they could not be downloaded"
            raise RuntimeError(
                f"pretrained=True: timm's weights for {backbone!r} could not be loaded ({reason}: "
                f"{type(exc).__name__}: {str(exc)[:200]}). {how_to}"
            ) from exc

    @staticmethod
    def _create_from_file(backbone: str, path: Path, create) -> nn.Module:
        # What a weights file may be, and whether it fits the backbone, is decided in sisnet.weights.
        # (timm loads non-strictly when the classifier is dropped, so a file for another architecture
        # would otherwise load *nothing* without complaint.)
        from sisnet.weights import check_pretrained, check_weights_file

        if not Path(str(check_pretrained(path))).is_file():
            raise ValueError(
                f"pretrained={str(path)!r} is a named weight source, not a file: resolve it first with "
                f"sisnet.weights.resolve_pretrained({str(path)!r}, {backbone!r}) and pass the returned path."
            )
        check_weights_file(path, backbone)
        try:
            return create(pretrained=True, pretrained_cfg_overlay=dict(file=str(path)))
        except (RuntimeError, KeyError) as exc:  # timm: size mismatch / unreadable checkpoint
            raise ValueError(
                f"pretrained file {str(path)!r} could not be loaded into {backbone!r}: {str(exc)[:300]} ... "
                f"The file must hold a timm state dict for exactly this backbone "
                f"(e.g. torch.save(timm.create_model({backbone!r}).state_dict(), path))."
            ) from exc

    # ------------------------------------------------------------------ forward
    def forward(self, x: Tensor) -> ModelOutput:
        """One branch: images (B, 3, H, W) -> :class:`ModelOutput`."""
        if not isinstance(x, Tensor) or x.dim() != 4:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"SiSNet expects a (B, 3, H, W) image tensor, got {shape}; add a batch dimension with x[None].")
        feature_map = self.backbone.forward_features(x)  # (B, C, h, w)
        pooled = feature_map.mean(dim=(2, 3))  # GAP; layout-agnostic (works for channels_last)
        bn_feature = self.bottleneck(pooled)
        logits = self.classifier(bn_feature)
        return ModelOutput(feature_map, pooled, bn_feature, logits)

    def forward_pair(self, x_full: Tensor, x_small: Tensor) -> tuple[ModelOutput, ModelOutput]:
        """The two siamese branches: the SAME weights on the full- and small-scale views.

        Two separate forward calls (the views may differ in size, e.g. (B,3,256,128) and (B,3,128,64)),
        so in training mode each branch's BNNeck normalises with its own batch statistics and the running
        statistics are updated once per branch.
        """
        return self(x_full), self(x_small)

    @torch.no_grad()
    def extract(self, x: Tensor, x_small: Tensor | None = None, mode: str = "either") -> Tensor:
        """Retrieval features, L2-normalised, float32.

        ``mode="either"``: the BNNeck feature of ``x`` alone, (B, C) -- the paper's either-scale mode (``x``
        may be either scale). ``mode="cascaded"``: ``cat(bn(x), bn(x_small))`` then L2-normalised, (B, 2C).
        The model is put in eval mode for the call (BNNeck uses running statistics) and restored afterwards.
        """
        if mode not in EVAL_MODES:
            raise ValueError(f"mode must be 'either' or 'cascaded', got {mode!r}.")
        if mode == "cascaded" and x_small is None:
            raise ValueError("mode='cascaded' concatenates both scales' features: pass x_small (the small-scale view).")
        was_training = self.training
        self.eval()
        try:
            f_small = self(x_small).bn_feature if mode == "cascaded" else None
            return retrieval_features(self(x).bn_feature, f_small, (mode,))[mode]
        finally:
            self.train(was_training)

    def extra_repr(self) -> str:
        return f"backbone={self.backbone_name!r}, num_classes={self.num_classes}, last_stride={self.last_stride}, feature_dim={self.feature_dim}"


def build_model(config: TrainConfig, num_classes: int, pretrained: Any = None) -> SiSNet:
    """The :class:`SiSNet` of ``config`` (weights resolved via :mod:`sisnet.weights`): the one way training,
    loading a run and the measurements build the network.

    ``pretrained`` overrides ``config.pretrained`` with an already-resolved value (False, True or a path).
    The resolved weights record is attached as ``model.weights_info`` ({source, file, sha256}). With
    ``config.channels_last`` the weights are converted to the channels-last memory format
    (:func:`sisnet.engine.train_step` and evaluation feed channels-last inputs to match).
    """
    from sisnet.weights import resolve_pretrained

    if pretrained is None:
        pretrained, resolved = resolve_pretrained(config.pretrained, config.backbone)
        info = {"source": resolved.source, "file": resolved.file, "sha256": resolved.sha256}
    else:
        info = {"source": "random" if pretrained is False else "given", "file": None, "sha256": None}
    stride = {"output_stride": config.output_stride} if config.output_stride else {}
    model = SiSNet(config.backbone, num_classes, pretrained=pretrained, last_stride=config.last_stride, **stride)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.weights_info = info
    return model
