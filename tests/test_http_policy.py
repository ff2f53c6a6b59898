"""The shared HTTP policy: what is retried, how long it waits, what it logs.

The inner transport is httpx's MockTransport fed with plain request -> response
functions; one test uses a real closed port on loopback. Sleeping is faked, so
every wait is observed and none is spent.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from email.utils import formatdate

import httpx
import pytest

from sindri_jupyter.core.http import (
    HttpTimeouts,
    RateLimits,
    RetryPolicy,
    RetryTransport,
    make_client,
    mask_authorization,
    parse_retry_after,
)


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def scripted(*answers):
    """A handler answering in turn; an exception instance is raised instead."""
    calls: list[httpx.Request] = []
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handler, calls


def run(method, handler, *, deadline=90.0, policy=None, url="http://api.test/x"):
    clock = FakeTime()
    transport = RetryTransport(
        httpx.MockTransport(handler), policy=policy, deadline=deadline,
        sleep=clock.sleep, clock=clock.clock, rng=random.Random(7),
    )

    async def go():
        async with httpx.AsyncClient(transport=transport) as client:
            return await client.request(method, url)

    return asyncio.run(go()), clock, transport


def test_get_is_retried_after_503_until_it_succeeds():
    handler, calls = scripted(httpx.Response(503), httpx.Response(503),
                              httpx.Response(200, json={"ok": True}))

    response, clock, _ = run("GET", handler)

    assert response.status_code == 200
    assert len(calls) == 3
    assert len(clock.sleeps) == 2


def test_post_is_never_retried_on_5xx():
    handler, calls = scripted(httpx.Response(500), httpx.Response(201))

    response, clock, _ = run("POST", handler)

    assert response.status_code == 500
    assert len(calls) == 1
    assert clock.sleeps == []


def test_post_is_never_retried_on_connect_error():
    handler, calls = scripted(httpx.ConnectError("refused"), httpx.Response(201))

    with pytest.raises(httpx.ConnectError):
        run("POST", handler)

    assert len(calls) == 1


def test_get_is_retried_on_connect_error():
    handler, calls = scripted(httpx.ConnectError("refused"), httpx.Response(200))

    response, _, _ = run("GET", handler)

    assert response.status_code == 200
    assert len(calls) == 2


@pytest.mark.parametrize("method", ["PUT", "DELETE", "HEAD", "OPTIONS"])
def test_other_idempotent_methods_are_retried(method):
    handler, calls = scripted(httpx.Response(502), httpx.Response(204))

    response, _, _ = run(method, handler)

    assert response.status_code == 204
    assert len(calls) == 2


def test_client_errors_other_than_429_are_not_retried():
    handler, calls = scripted(httpx.Response(404), httpx.Response(200))

    response, _, _ = run("GET", handler)

    assert response.status_code == 404
    assert len(calls) == 1


def test_retry_after_seconds_is_honoured_on_429():
    handler, _ = scripted(httpx.Response(429, headers={"Retry-After": "7"}),
                          httpx.Response(200))

    response, clock, _ = run("GET", handler)

    assert response.status_code == 200
    assert clock.sleeps == [7.0]


def test_retry_after_http_date_is_converted_to_seconds():
    now = 1_780_000_000.0
    date = formatdate(now + 30, usegmt=True)

    assert parse_retry_after(date, now_wall=now) == pytest.approx(30.0)
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after("soon") is None


def test_several_exhausted_windows_wait_for_the_longest_reset():
    limited = httpx.Response(429, headers={
        "Retry-After": "1",
        "RateLimit": '"minute";r=0;t=5, "hour";r=0;t=40, "day";r=900;t=80000',
        "RateLimit-Policy": '"minute";q=60;w=60, "hour";q=3000;w=3600',
    })
    handler, _ = scripted(limited, httpx.Response(200))

    _, clock, transport = run("GET", handler)

    assert clock.sleeps == [40.0]
    hour = transport.rate_limits.windows()["hour"]
    assert (hour.quota, hour.length) == (3000, 3600.0)


def test_ratelimit_headers_are_kept_per_window():
    limits = RateLimits()

    limits.update(httpx.Headers({
        "RateLimit": '"minute";r=176;t=1, "hour";r=7193;t=2701',
        "RateLimit-Policy": '"minute";q=200;w=60, "hour";q=8000;w=3600',
    }), now=100.0)
    limits.update(httpx.Headers({"RateLimit": '"minute";r=175;t=1'}), now=101.0)

    windows = limits.windows()
    assert windows["minute"].remaining == 175
    assert windows["minute"].quota == 200  # the policy seen earlier is kept
    assert windows["hour"].remaining == 7193
    assert limits.exhausted_wait(now=101.0) == 0.0


def test_northflank_style_x_ratelimit_headers_are_read():
    limits = RateLimits()

    limits.update(httpx.Headers({"x-ratelimit-limit": "1000",
                                 "x-ratelimit-remaining": "0",
                                 "x-ratelimit-reset": "1800"}), now=0.0)

    window = limits.windows()["x-ratelimit"]
    assert (window.quota, window.remaining) == (1000, 0)
    assert limits.exhausted_wait(now=600.0) == pytest.approx(1200.0)


def test_a_wait_past_the_deadline_gives_up_with_the_last_answer():
    handler, calls = scripted(httpx.Response(429, headers={"Retry-After": "3600"}),
                              httpx.Response(200))

    response, clock, _ = run("GET", handler, deadline=60.0)

    assert response.status_code == 429
    assert len(calls) == 1
    assert clock.sleeps == []


def test_attempts_are_capped_and_backoff_uses_capped_full_jitter():
    policy = RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=3.0)
    handler, calls = scripted(httpx.Response(500))

    response, clock, _ = run("GET", handler, policy=policy)

    assert response.status_code == 500
    assert len(calls) == 4
    ceilings = [1.0, 2.0, 3.0]
    assert all(0.0 <= s <= c for s, c in zip(clock.sleeps, ceilings, strict=True))
    draws = [policy.backoff(10, random.Random(i)) for i in range(200)]
    assert max(draws) <= 3.0 and min(draws) < 1.0  # capped, and jittered to 0


def test_one_debug_line_per_request_with_the_token_masked(caplog):
    handler, _ = scripted(httpx.Response(200, headers={"x-request-id": "rid-1"}))
    transport = RetryTransport(httpx.MockTransport(handler))

    async def go():
        async with make_client("http://api.test", token="sk-SECRET-123",
                               transport=httpx.MockTransport(handler)) as client:
            await client.get("/v2/pods")
        async with httpx.AsyncClient(transport=transport) as plain:
            await plain.get("http://api.test/other")

    with caplog.at_level(logging.DEBUG, logger="sindri_jupyter.core.http"):
        asyncio.run(go())

    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert "sk-SECRET-123" not in caplog.text
    assert "auth Bearer ***" in lines[0] and "rid-1" in lines[0]
    assert mask_authorization("Bearer abc") == "Bearer ***"


def test_make_client_applies_the_declared_timeouts():
    timeouts = HttpTimeouts(connect=1.5, read=2.5)

    client = make_client("http://api.test", timeouts=timeouts)

    assert client.timeout.connect == 1.5
    assert client.timeout.read == 2.5
    assert client.timeout.pool == HttpTimeouts().pool
    asyncio.run(client.aclose())


def test_connect_refused_on_a_real_closed_port_is_retried_then_raised():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    clock = FakeTime()
    transport = RetryTransport(policy=RetryPolicy(max_attempts=3), sleep=clock.sleep,
                               clock=clock.clock)

    async def go():
        async with httpx.AsyncClient(transport=transport) as client:
            await client.get(f"http://127.0.0.1:{port}/")

    with pytest.raises(httpx.ConnectError):
        asyncio.run(go())

    assert len(clock.sleeps) == 2
