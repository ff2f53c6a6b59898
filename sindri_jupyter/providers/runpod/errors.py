"""RunPod answers and transport failures, translated into ``sindri_jupyter.errors``.

This is the one boundary where httpx errors and problem+json bodies become our
exception tree. RunPod v2 errors are RFC 9457 ``{title, status, detail,
errors?}``; v1 answered ``{"error": ..}`` and is tolerated for a clear message.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable

import httpx

from sindri_jupyter.core.http import parse_retry_after
from sindri_jupyter.errors import (
    AuthError,
    CapacityError,
    OutcomeUnknownError,
    ProviderAPIError,
    RateLimitError,
    UsageError,
)
from sindri_jupyter.providers.runpod.models import RETIRED_FIELDS as _RETIRED
from sindri_jupyter.providers.runpod.models import V1_FIELDS as _V1

PROVIDER = "runpod"
KEYS_URL = "https://www.runpod.io/console/user/settings"

# Capacity has no code: only the 400's detail says so ("There are no longer any
# instances available ..."; on start: "not enough free GPUs on the host").
_CAPACITY = re.compile(
    r"no (longer )?(any )?instances? (are )?available|not enough free gpus|"
    r"zero gpus?|no capacity",
    re.IGNORECASE,
)


def is_capacity_detail(detail: str | None) -> bool:
    return bool(detail and _CAPACITY.search(detail))


def problem(response: httpx.Response) -> tuple[str, list[str]]:
    """The ``detail`` and ``errors`` of an error answer, whatever its shape."""
    try:
        body = json.loads(response.content or b"null")
    except ValueError:
        text = response.text.strip()
        return (text[:200] or response.reason_phrase), []
    if not isinstance(body, dict):
        return response.reason_phrase, []
    detail = body.get("detail") or body.get("error") or body.get("message")
    errors = [str(e) for e in body.get("errors") or [] if isinstance(e, str)]
    return str(detail or body.get("title") or response.reason_phrase), errors


def from_response(response: httpx.Response, what: str) -> ProviderAPIError:
    """The typed error for an answer with status >= 400."""
    status = response.status_code
    detail, errors = problem(response)
    kw = {
        "provider": PROVIDER,
        "status": status,
        "request_id": response.headers.get("x-request-id"),
        "detail": detail,
    }
    message = f"{what} failed: {detail}"
    if errors:
        message += " [" + "; ".join(errors) + "]"
    if status in (401, 403):
        return AuthError(message, hint=_auth_hint(status), **kw)
    if status == 400 and is_capacity_detail(detail):
        return CapacityError(message, hint=_capacity_hint(what), **kw)
    if status == 429:
        return RateLimitError(message, hint=_rate_hint(response), **kw)
    return ProviderAPIError(message, hint=_HINTS.get(status, _default_hint(status)),
                            **kw)


def _auth_hint(status: int) -> str:
    if status == 401:
        return (
            "RunPod did not accept the key in RUNPOD_API_KEY (missing, mistyped or "
            f"revoked). Create a key at {KEYS_URL} and export RUNPOD_API_KEY=..."
        )
    return (
        "the key is valid but lacks a scope for this call: give it read/write "
        "access to Pods (plus Network Volumes, Catalog and Billing for those "
        f"commands), or create a key with 'All' access at {KEYS_URL}"
    )


def _capacity_hint(what: str) -> str:
    if what.startswith("start"):
        return (
            "a stopped pod can only start on its old host, whose GPUs are taken "
            "now: try again later, or destroy it and deploy a fresh pod"
        )
    return "try another cloud type, data center or GPU (see `sindri gpus`)"


def _rate_hint(response: httpx.Response) -> str:
    wait = parse_retry_after(response.headers.get("retry-after"))
    when = f"in {wait:.0f} s" if wait is not None else "in a minute"
    return f"RunPod's rate limit for this key is used up; try again {when}"


def _default_hint(status: int) -> str:
    if status >= 500:
        return "RunPod had a transient failure; try again, quoting the request id"
    return "check the values named in the message; see docs/providers/runpod.md"


_HINTS = {
    402: "the RunPod balance is too low: add credit in the console, then retry",
    404: "the resource does not exist (any more) or this key cannot see it",
    409: "the pod's current status does not allow this (see its actions), or the "
    "pod belongs to a cluster",
    410: "this is a retired RunPod API (v1 or GraphQL): update sindri-jupyter",
    422: "RunPod refused the request body; this is a sindri-jupyter bug if the "
    "field is not one you set: please report it with the request id",
}


def from_transport(exc: httpx.TransportError, what: str, *, create: bool):
    """A failure without an answer. For a create the outcome is then unknown."""
    sent = not isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
    reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if create and sent:
        return OutcomeUnknownError(
            f"{what}: the request was sent but no answer came back ({reason})",
            provider=PROVIDER,
            hint="a pod may exist: it will be looked up by its marker before any "
            "new create; `sindri status` shows it",
        )
    return ProviderAPIError(
        f"{what}: no answer from RunPod ({reason})",
        provider=PROVIDER, status=None,
        hint="check the network or SINDRI_RUNPOD_API_URL, then retry",
    )


def unknown_create_5xx(error: ProviderAPIError, what: str) -> OutcomeUnknownError:
    """A 5xx to a create: RunPod has been seen to create the pod anyway."""
    rid = f", request id {error.request_id}" if error.request_id else ""
    return OutcomeUnknownError(
        f"{what}: RunPod answered HTTP {error.status}{rid}; the pod may exist anyway",
        provider=PROVIDER,
        hint="it will be looked up by its marker before any new create",
    )


def check_closed(body: dict, allowed: Iterable[str], what: str) -> None:
    """Refuse fields the v2 spec does not know: the real API answers 422."""
    allowed = set(allowed)
    for key in body:
        if key in allowed:
            continue
        if key in _RETIRED:
            hint = _RETIRED[key]
        elif key in _V1:
            hint = f"that is a REST v1 field; v2 uses {_V1[key]}"
        else:
            near = difflib.get_close_matches(key, sorted(allowed), n=3)
            hint = "known fields: " + ", ".join(near or sorted(allowed))
        raise UsageError(f"{what}: {key!r} is not a RunPod REST v2 field", hint=hint)

