"""A typed async client for the parts of RunPod REST v2 that sindri uses.

Pods (list, create, get, patch, delete, actions, logs), the catalog (GPUs with
availability, CPUs, data centers), network volumes, account SSH keys and pod
billing. The credential comes from ``RUNPOD_API_KEY`` and the base URL from
``SINDRI_RUNPOD_API_URL`` (default ``https://api.runpod.io``).

Retries, timeouts and rate limits come from ``core.http``: reads are retried,
POSTs never. A create that got no answer or a 5xx raises
``OutcomeUnknownError``, so the engine looks the pod up before trying again.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote

import httpx

from sindri_jupyter.core.http import (
    HttpTimeouts,
    RateLimits,
    RetryPolicy,
    Sleep,
    make_client,
)
from sindri_jupyter.errors import (
    MissingCredential,
    ProviderAPIError,
    UsageError,
)
from sindri_jupyter.providers.runpod import errors
from sindri_jupyter.providers.runpod.models import (
    CREATE_GPU_FIELDS,
    CREATE_POD_FIELDS,
    CREATE_VOLUME_FIELDS,
    POD_ACTIONS,
    UPDATE_POD_FIELDS,
    BillingRecord,
    CpuType,
    DataCenter,
    GpuType,
    LogEvent,
    NetworkVolume,
    Pod,
    parse_sse,
)

DEFAULT_BASE_URL = "https://api.runpod.io"
MAX_PAGES = 100  # 100 pages of 1000 pods: far beyond any account we serve


class RunPodClient:
    """One API key, one connection pool. Use ``async with`` or ``aclose()``."""

    def __init__(
        self,
        api_key: str | None,
        base_url: str | None = None,
        *,
        timeouts: HttpTimeouts | None = None,
        policy: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep | None = None,
    ) -> None:
        if not api_key:
            raise MissingCredential(
                "RUNPOD_API_KEY", provider=errors.PROVIDER,
                hint=f"create a key at {errors.KEYS_URL} and export RUNPOD_API_KEY=...",
            )
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.rate_limits = RateLimits()
        self._http = make_client(
            self.base_url, token=api_key, timeouts=timeouts, policy=policy,
            rate_limits=self.rate_limits, transport=transport, sleep=sleep,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **kw) -> RunPodClient:
        env = os.environ if environ is None else environ
        return cls(env.get("RUNPOD_API_KEY"),
                   env.get("SINDRI_RUNPOD_API_URL") or DEFAULT_BASE_URL, **kw)

    def __repr__(self) -> str:  # never the key
        return f"RunPodClient({self.base_url!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> RunPodClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- transport boundary -------------------------------------------------

    async def _call(self, method: str, path: str, what: str, **kw) -> httpx.Response:
        try:
            response = await self._http.request(method, path, **kw)
        except httpx.TransportError as exc:
            raise errors.from_transport(exc, what, create=False) from exc
        if response.status_code >= 400:
            raise errors.from_response(response, what)
        return response

    async def _json(self, method: str, path: str, what: str, **kw) -> Any:
        response = await self._call(method, path, what, **kw)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise ProviderAPIError(
                f"{what}: RunPod answered with something that is not JSON",
                provider=errors.PROVIDER, status=response.status_code,
                request_id=response.headers.get("x-request-id"),
                hint="check SINDRI_RUNPOD_API_URL points at the RunPod API",
            ) from exc

    # -- pods -----------------------------------------------------------------

    async def list_pods(self, *, include_cluster_pods: bool = False) -> list[Pod]:
        """Every pod; follows ``pagination`` when the server sends it."""
        params: dict[str, Any] = {
            "includeClusterPods": str(include_cluster_pods).lower(), "limit": 1000,
        }
        pods: list[Pod] = []
        for _ in range(MAX_PAGES):
            body = await self._json("GET", "/v2/pods", "list pods", params=params)
            if isinstance(body, list):  # a bare array: tolerate it
                return pods + [Pod.from_json(p) for p in body]
            body = body if isinstance(body, dict) else {}
            pods += [Pod.from_json(p) for p in body.get("pods") or []]
            page = body.get("pagination") or {}
            if not page.get("hasNextPage") or not page.get("nextCursor"):
                return pods
            params["cursor"] = page["nextCursor"]
        raise ProviderAPIError(
            f"list pods: more than {MAX_PAGES} pages", provider=errors.PROVIDER,
            status=None, hint="the server keeps paginating; please report this",
        )

    async def create_pod(self, body: dict[str, Any]) -> Pod:
        """POST /v2/pods once. No answer or a 5xx -> ``OutcomeUnknownError``."""
        errors.check_closed(body, CREATE_POD_FIELDS, "create pod")
        if isinstance(body.get("gpu"), dict):
            errors.check_closed(body["gpu"], CREATE_GPU_FIELDS, "create pod: gpu")
        what = f"create pod {body.get('name')!r}"
        try:
            response = await self._http.post("/v2/pods", json=body)
        except httpx.TransportError as exc:
            raise errors.from_transport(exc, what, create=True) from exc
        if response.status_code >= 400:
            error = errors.from_response(response, what)
            if response.status_code >= 500:
                raise errors.unknown_create_5xx(error, what) from error
            raise error
        return Pod.from_json(response.json())

    async def get_pod(self, pod_id: str) -> Pod:
        return Pod.from_json(
            await self._json("GET", f"/v2/pods/{_seg(pod_id)}", f"get pod {pod_id}")
        )

    async def update_pod(self, pod_id: str, changes: dict[str, Any]) -> Pod:
        errors.check_closed(changes, UPDATE_POD_FIELDS, "update pod")
        return Pod.from_json(await self._json(
            "PATCH", f"/v2/pods/{_seg(pod_id)}", f"update pod {pod_id}", json=changes
        ))

    async def delete_pod(self, pod_id: str) -> None:
        await self._call("DELETE", f"/v2/pods/{_seg(pod_id)}", f"delete pod {pod_id}")

    async def pod_action(self, pod_id: str, action: str) -> Pod | None:
        """start | stop | restart | terminate; terminate answers with no pod."""
        if action not in POD_ACTIONS:
            raise UsageError(
                f"unknown pod action {action!r}", hint="one of: " + ", ".join(POD_ACTIONS)
            )
        body = await self._json(
            "POST", f"/v2/pods/{_seg(pod_id)}/action", f"{action} pod {pod_id}",
            json={"action": action},
        )
        return Pod.from_json(body) if body else None

    async def iter_pod_logs(
        self, pod_id: str, *, tail: int = 100, source: str | None = None,
        since: str | None = None, last_event_id: str | None = None,
    ) -> AsyncIterator[LogEvent]:
        """Log events from the SSE stream, as they arrive."""
        params: dict[str, Any] = {"tail": tail}
        if source:
            params["source"] = source
        if since:
            params["since"] = since
        headers = {"Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        what = f"logs of pod {pod_id}"
        try:
            async with self._http.stream(
                "GET", f"/v2/pods/{_seg(pod_id)}/logs", params=params, headers=headers
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise errors.from_response(response, what)
                buffer = ""
                async for chunk in response.aiter_text():
                    buffer += chunk
                    complete, _, buffer = buffer.rpartition("\n\n")
                    for event in parse_sse(complete):
                        yield event
                for event in parse_sse(buffer):
                    yield event
        except httpx.TransportError as exc:
            raise errors.from_transport(exc, what, create=False) from exc

    async def pod_logs(self, pod_id: str, *, tail: int = 100, idle: float = 2.0,
                       **kw) -> list[LogEvent]:
        """Up to ``tail`` recent events; stops when the stream idles ``idle`` s."""
        events: list[LogEvent] = []
        stream = self.iter_pod_logs(pod_id, tail=tail, **kw).__aiter__()
        try:
            while len(events) < max(tail, 1):
                events.append(await asyncio.wait_for(stream.__anext__(), idle))
        except (StopAsyncIteration, asyncio.TimeoutError):
            pass  # the stream ended or went quiet: what we have is the answer
        finally:
            await stream.aclose()
        return events

    # -- catalog --------------------------------------------------------------

    async def gpu_types(
        self, *, availability: bool = True, count: int = 1, cloud: str = "SECURE"
    ) -> list[GpuType]:
        params: dict[str, Any] = {}
        if availability:  # `product` is required with include and refused without
            params = {"include": "AVAILABILITY", "product": "POD",
                      "count": count, "cloud": cloud}
        body = await self._json("GET", "/v2/catalog/gpus", "list GPU types",
                                params=params)
        return [GpuType.from_json(g) for g in (body or {}).get("gpus") or []]

    async def cpu_types(self, *, availability: bool = False) -> list[CpuType]:
        params = {"include": "AVAILABILITY", "product": "POD"} if availability else {}
        body = await self._json("GET", "/v2/catalog/cpus", "list CPU types",
                                params=params)
        return [CpuType.from_json(c) for c in (body or {}).get("cpus") or []]

    async def data_centers(self, *, gpu_availability: bool = False) -> list[DataCenter]:
        params = {"include": "GPU_AVAILABILITY"} if gpu_availability else {}
        body = await self._json("GET", "/v2/catalog/datacenters",
                                "list data centers", params=params)
        return [DataCenter.from_json(d) for d in (body or {}).get("dataCenters") or []]

    # -- network volumes, SSH keys, billing ------------------------------------

    async def list_network_volumes(self) -> list[NetworkVolume]:
        body = await self._json("GET", "/v2/network-volumes", "list network volumes")
        items = body if isinstance(body, list) else (body or {}).get("networkVolumes")
        return [NetworkVolume.from_json(v) for v in items or []]

    async def create_network_volume(
        self, name: str, size: int, data_center: str, type: str | None = None
    ) -> NetworkVolume:
        body: dict[str, Any] = {"name": name, "size": size, "dataCenter": data_center}
        if type:
            body["type"] = type
        errors.check_closed(body, CREATE_VOLUME_FIELDS, "create network volume")
        return NetworkVolume.from_json(await self._json(
            "POST", "/v2/network-volumes", f"create network volume {name!r}", json=body
        ))

    async def get_network_volume(self, volume_id: str) -> NetworkVolume:
        return NetworkVolume.from_json(await self._json(
            "GET", f"/v2/network-volumes/{_seg(volume_id)}",
            f"get network volume {volume_id}",
        ))

    async def delete_network_volume(self, volume_id: str) -> None:
        await self._call("DELETE", f"/v2/network-volumes/{_seg(volume_id)}",
                         f"delete network volume {volume_id}")

    async def ssh_keys(self) -> list[str]:
        body = await self._json("GET", "/v2/account/ssh-keys", "read account SSH keys")
        return [str(k) for k in (body or {}).get("keys") or []]

    async def set_ssh_keys(self, keys: list[str]) -> list[str]:
        """Replace the account's whole key set (``[]`` clears it)."""
        body = await self._json("PUT", "/v2/account/ssh-keys",
                                "replace account SSH keys", json={"keys": list(keys)})
        return [str(k) for k in (body or {}).get("keys") or []]

    async def pod_billing(
        self, *, pod_id: str | None = None, bucket_size: str = "day",
        last_n: int | None = None,
    ) -> list[BillingRecord]:
        params: dict[str, Any] = {"bucketSize": bucket_size}
        if pod_id:
            params["podId"] = pod_id
        if last_n:
            params["lastN"] = last_n
        body = await self._json("GET", "/v2/billing/pods", "read pod billing",
                                params=params)
        return [BillingRecord.from_json(r) for r in (body or {}).get("records") or []]


def _seg(value: str) -> str:
    """One URL path segment; ids with spaces (GPU ids) stay one segment."""
    return quote(str(value), safe="")
