"""timm's own weights on the Hugging Face hub: whether the hub may be used, is reachable, and what is cached.

Never waits on the network longer than :data:`HUB_PROBE_TIMEOUT_SECONDS`; the one place that probes timm's caches.
"""
from __future__ import annotations

import os
import socket
import threading

__all__ = ["hub_offline", "hub_cached_file", "hub_reachable", "HUB_PROBE_TIMEOUT_SECONDS"]

HUB_PROBE_TIMEOUT_SECONDS = 3.0


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` forbids the Hugging Face hub."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def hub_cached_file(backbone: str) -> str | None:
    """Path of timm's weights for ``backbone`` in the local Hugging Face or torch.hub cache, or None.

    Never touches the network. The one place that probes timm's caches (the model and ``resolve_pretrained``
    both ask here).
    """
    try:
        import timm
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - both are dependencies
        return None
    try:
        cfg = timm.models.get_pretrained_cfg(backbone)
    except Exception:  # noqa: BLE001 - unknown tag: nothing cached under it
        return None
    if cfg is None:
        return None
    hub_id = getattr(cfg, "hf_hub_id", None)
    if hub_id:
        names = [cfg.hf_hub_filename] if getattr(cfg, "hf_hub_filename", None) else []
        names += ["model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin"]
        for fname in names:
            hit = try_to_load_from_cache(hub_id, fname)
            if isinstance(hit, str) and os.path.isfile(hit):
                return hit
    url = getattr(cfg, "url", None)
    if url:
        from timm.models._hub import check_cached_file

        hit = check_cached_file(url)
        if hit and os.path.isfile(hit):
            return str(hit)
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
