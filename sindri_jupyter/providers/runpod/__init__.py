"""RunPod GPU pods over REST API v2 (the only RunPod API still served)."""

from sindri_jupyter.providers.runpod.provider import RunPodProvider

__all__ = ["RunPodProvider"]
