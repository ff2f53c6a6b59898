"""Northflank's name grammar, checked and normalised before anything is sent.

Northflank derives a resource's id from its name (lower case, whitespace runs
become '-'), so two names can collide on one id ("ML Training" and
"ml-training"). We always send names that already are their own id, which
makes the id predictable and the collision checkable before the create.

Grammar (reference section 1.3): project, service and volume names match
``^[a-zA-Z]((-|\\s)?[a-zA-Z0-9]+((-|\\s)[a-zA-Z0-9]+)*)?$``; projects are 3-39
characters, services 3-54; tags match ``^[a-zA-Z0-9]+(-[a-zA-Z0-9]+)*$``, 3-100.
"""

from __future__ import annotations

import hashlib
import re

NAME_RE = re.compile(r"^[a-zA-Z]((-|\s)?[a-zA-Z0-9]+((-|\s)[a-zA-Z0-9]+)*)?$")
PROJECT_MAX = 39
SERVICE_MAX = 54
TAG_MAX = 100
OWNER_TAG = "sindri"  # on every service this tool creates


def derive_id(name: str) -> str:
    """The id Northflank derives from a name."""
    return re.sub(r"\s+", "-", name.strip()).lower()


def is_valid(name: str, max_len: int) -> bool:
    return bool(NAME_RE.match(name)) and 3 <= len(name) <= max_len


def normalise(name: str, max_len: int) -> str:
    """The nearest valid name that is its own id.

    Runs of anything but letters and digits become one '-'; a name not starting
    with a letter gets an ``env-`` prefix; a too short name gets ``-env``; a too
    long one is cut and given a short hash of the original, so two long names
    that share a prefix still differ.
    """
    text = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    if not text or not text[0].isalpha():
        text = f"env-{text}".rstrip("-")
    if len(text) < 3:
        text = f"{text}-env"
    if len(text) > max_len:
        digest = hashlib.sha256(name.encode()).hexdigest()[:6]
        text = f"{text[:max_len - 7].rstrip('-')}-{digest}"
    return text


def marker_tag(marker: str) -> str:
    """The tag that ties a service to one environment (``Handle.marker``)."""
    slug = re.sub(r"[^a-z0-9]+", "-", marker.lower()).strip("-") or "none"
    return f"sindri-m-{slug}"[:TAG_MAX].rstrip("-")


def identity_name(project_id: str, service_id: str) -> str:
    """The team SSH identity of one service; unique per project and service."""
    return normalise(f"sindri-{project_id}-{service_id}", TAG_MAX)


def describe(env_name: str, marker: str) -> str:
    """The service description; ``parse_description`` reads it back."""
    return f"sindri-jupyter environment {env_name} (marker {marker})"[:200]


_DESCRIPTION_RE = re.compile(r"^sindri-jupyter environment (\S+) \(marker (\S+)\)$")


def parse_description(text: str | None) -> tuple[str, str] | None:
    """(environment name, marker) from a description we wrote, else None."""
    found = _DESCRIPTION_RE.match(text or "")
    return (found.group(1), found.group(2)) if found else None
