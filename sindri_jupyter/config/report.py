"""How each key of a config is used by the chosen provider.

Nothing is dropped silently: every key the user set is honoured, mapped to what
the provider offers, or reported as not applicable with the reason.
"""

from __future__ import annotations

from pydantic import BaseModel

from sindri_jupyter.config.models import SindriConfig
from sindri_jupyter.core.types import Note


def set_keys(model: BaseModel, prefix: str) -> list[str]:
    """Dotted names of the keys the user actually wrote, leaves only."""
    keys: list[str] = []
    for name in sorted(model.model_fields_set):
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            keys.extend(set_keys(value, f"{prefix}{name}."))
        else:
            keys.append(f"{prefix}{name}")
    return keys


def section_notes(config: SindriConfig) -> list[Note]:
    """Not-applicable keys of the active section, and sections left unused."""
    notes: list[Note] = []
    active = config.provider
    section = getattr(config.providers, active, None)
    if section is not None:
        for key in sorted(section.model_fields_set & set(section.NOT_APPLICABLE)):
            notes.append(Note(f"providers.{active}.{key}", "not applicable",
                              section.NOT_APPLICABLE[key]))
    sections = config.providers.model_fields_set | set(config.providers.model_extra or {})
    for other in sorted(sections):
        if other != active:
            notes.append(Note(f"providers.{other}", "not used",
                              f"deployment.provider is {active}"))
    return notes
