"""timm's own weights on the Hugging Face hub: whether the hub may be used, is reachable, what is cached, and the download.

Never waits on the network longer than :data:`HUB_PROBE_TIMEOUT_SECONDS` to decide; the one place that probes
timm's caches and the one place that downloads timm's weights (:func:`hub_download`, which fills the same
caches timm's own loader reads, so ``timm.create_model(..., pretrained=True)`` then loads that very file).
"""
from __future__ import annotations

import os
import socket
import threading
from urllib.parse import urlparse

__all__ = ["hub_offline", "hub_cached_file", "hub_reachable", "hub_download", "hub_weights_name",
           "HUB_PROBE_TIMEOUT_SECONDS"]

HUB_PROBE_TIMEOUT_SECONDS = 3.0


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` forbids the Hugging Face hub."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _pretrained_cfg(backbone: str):
    """timm's pretrained config of ``backbone`` (tagged or not; untagged = timm's default tag), or None."""
    import timm

    try:
        return timm.models.get_pretrained_cfg(backbone)
    except Exception:  # noqa: BLE001 - unknown name or tag
        return None


def hub_weights_name(backbone: str) -> str:
    """The tagged name of the weights timm loads for ``backbone``: ``"resnet50"`` -> ``"resnet50.a1_in1k"``.

    timm's untagged name means its default tag, which is not always the one a paper used (Bag of Tricks
    started from torchvision's ResNet-50, timm's ``resnet50.tv_in1k``); the run history records this name.
    """
    cfg = _pretrained_cfg(backbone)
    arch = backbone.partition(".")[0]
    tag = getattr(cfg, "tag", None) if cfg is not None else None
    return f"{arch}.{tag}" if tag else backbone


def hub_cached_file(backbone: str) -> str | None:
    """Path of timm's weights for ``backbone`` in the cache timm's loader reads, or None.

    That is the Hugging Face cache for weights with an ``hf_hub_id`` (timm reads the torch.hub cache for those
    only with ``TIMM_USE_OLD_CACHE=1``), else the torch.hub cache of the weights' URL (checked against the hash
    prefix in its file name, as timm does). Never touches the network. The one place that probes timm's caches
    (the model and ``resolve_pretrained`` both ask here).
    """
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - a dependency
        return None
    cfg = _pretrained_cfg(backbone)
    if cfg is None:
        return None
    hub_id = getattr(cfg, "hf_hub_id", None)
    if hub_id:
        repo_id, _, revision = hub_id.partition("@")
        names = ["model.safetensors", getattr(cfg, "hf_hub_filename", None) or "pytorch_model.bin"]
        for fname in names:
            hit = try_to_load_from_cache(repo_id, fname, revision=revision or None)
            if isinstance(hit, str) and os.path.isfile(hit):
                return hit
    url = getattr(cfg, "url", None)
    from timm.models import _builder
    from timm.models._hub import check_cached_file, get_cache_dir

    if url and (not hub_id or getattr(_builder, "_USE_OLD_CACHE", False)) and check_cached_file(url):
        return os.path.join(get_cache_dir(), os.path.basename(urlparse(url).path))
    return None


def hub_reachable(host: str = "huggingface.co", timeout_seconds: float = HUB_PROBE_TIMEOUT_SECONDS) -> bool:
    """A TCP connect to the hub, bounded in time (DNS included, hence the thread)."""
    ok: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, 443), timeout=timeout_seconds):
                ok.append(True)
        except OSError:
            pass

    th = threading.Thread(target=probe, daemon=True)
    th.start()
    th.join(timeout_seconds)
    return bool(ok)


def hub_download(backbone: str) -> str:
    """Download timm's weights for ``backbone`` into the cache timm's loader reads; return the local file.

    Hugging Face weights (``hf_hub_id``) go through ``huggingface_hub.hf_hub_download`` with the file names
    timm's own loader asks for (``model.safetensors`` first, then the config's file or ``pytorch_model.bin``);
    URL-only weights through timm's ``download_cached_file`` (the torch.hub cache). The caller decides
    whether the hub may be used (:func:`hub_offline`, :func:`hub_reachable`); errors propagate.
    """
    import huggingface_hub
    from huggingface_hub.errors import EntryNotFoundError

    cfg = _pretrained_cfg(backbone)
    if cfg is None or not (getattr(cfg, "hf_hub_id", None) or getattr(cfg, "url", None)):
        raise FileNotFoundError(f"timm names no downloadable weights for {backbone!r}.")
    hub_id = getattr(cfg, "hf_hub_id", None)
    if hub_id:
        repo_id, _, revision = hub_id.partition("@")
        names = ["model.safetensors"]
        names += [n for n in (getattr(cfg, "hf_hub_filename", None), "pytorch_model.bin") if n and n not in names]
        last: Exception | None = None
        for fname in names:
            try:
                return huggingface_hub.hf_hub_download(repo_id=repo_id, filename=fname, revision=revision or None)
            except EntryNotFoundError as exc:  # try timm's next file name
                last = exc
        raise FileNotFoundError(f"{hub_id} holds none of {names} on the Hugging Face hub") from last
    from timm.models._hub import download_cached_file

    return str(download_cached_file(cfg.url, check_hash=True, progress=False))
