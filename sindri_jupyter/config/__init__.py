"""sindri.yaml: models, loader, and the per-provider report of how keys are used."""

from sindri_jupyter.config.loader import load, loads
from sindri_jupyter.config.models import SindriConfig, json_schema

__all__ = ["SindriConfig", "json_schema", "load", "loads"]
