"""Prometheus metrics move as traffic flows, handshakes end and peers are refused."""

from __future__ import annotations

import asyncio
import sys

import pytest

import zmtp
from zmtp import EventKind, ZapResponse

prometheus_client = pytest.importorskip("prometheus_client")


@pytest.fixture
def registry():
    return prometheus_client.CollectorRegistry()


def value(registry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def until(mon, kind):
    async with asyncio.timeout(5):
        async for ev in mon:
            if ev.kind is kind:
                return ev
    raise AssertionError(f"no {kind}")


async def test_counters_follow_messages_bytes_and_connections(registry):
    ctx = zmtp.Context(metrics=zmtp.Metrics(registry))
    rep, req = ctx.socket(zmtp.REP), ctx.socket(zmtp.REQ)
    mon = rep.monitor()
    ep = await rep.bind("tcp://127.0.0.1:0")
    await req.connect(ep)
    await until(mon, EventKind.HANDSHAKE_SUCCEEDED)
    for _ in range(10):
        await req.send(b"x" * 100)
        assert await rep.recv() == b"x" * 100
        await rep.send(b"ok")
        await req.recv()
    assert value(registry, "zmtp_messages_sent_total", socket_type="REQ") == 10
    assert value(registry, "zmtp_messages_received_total", socket_type="REP") == 10
    # Message bytes are frame bodies: the empty delimiter REQ adds counts nothing.
    assert value(registry, "zmtp_bytes_sent_total", socket_type="REQ") == 1000
    assert value(registry, "zmtp_bytes_received_total", socket_type="REQ") == 20
    assert value(registry, "zmtp_connections_active", socket_type="REP") == 1
    assert value(registry, "zmtp_handshakes_total", mechanism="NULL", outcome="succeeded") == 2
    assert value(registry, "zmtp_handshake_duration_seconds_count", mechanism="NULL") == 2
    await req.close(linger=0)
    await until(mon, EventKind.DISCONNECTED)
    assert value(registry, "zmtp_connections_active", socket_type="REP") == 0
    await ctx.term()


async def test_batches_count_every_message(registry):
    ctx = zmtp.Context(metrics=zmtp.Metrics(registry))
    pull, push = ctx.socket(zmtp.PULL), ctx.socket(zmtp.PUSH)
    ep = await pull.bind("tcp://127.0.0.1:0")
    await push.connect(ep)
    await push.send_many([[b"a", b"bc"]] * 500)
    got = 0
    while got < 500:
        got += len(await pull.recv_many())
    assert value(registry, "zmtp_messages_sent_total", socket_type="PUSH") == 500
    assert value(registry, "zmtp_messages_received_total", socket_type="PULL") == 500
    assert value(registry, "zmtp_bytes_received_total", socket_type="PULL") == 1500
    await ctx.term()


async def test_refusals_and_failed_handshakes_are_counted(registry):
    class Nobody:
        async def authenticate(self, request: zmtp.ZapRequest) -> ZapResponse:
            return ZapResponse.failure(request.request_id, "go away", 400)

    ctx = zmtp.Context(metrics=zmtp.Metrics(registry))
    ctx.set_zap_handler(Nobody())
    server = ctx.socket(zmtp.PULL, zmtp.SocketOptions(plain_server=True))
    client = ctx.socket(zmtp.PUSH, zmtp.SocketOptions(plain_username="u", plain_password="p"))
    smon = server.monitor()
    ep = await server.bind("tcp://127.0.0.1:0")
    await client.connect(ep)
    await until(smon, EventKind.HANDSHAKE_FAILED)
    await asyncio.sleep(0.05)
    assert value(registry, "zmtp_auth_failures_total", mechanism="PLAIN", status="400") >= 1
    assert value(registry, "zmtp_handshakes_total", mechanism="PLAIN", outcome="auth") >= 1
    assert value(registry, "zmtp_handshakes_total", mechanism="PLAIN", outcome="succeeded") == 0
    await ctx.term()


async def test_drops_are_counted_by_reason(registry):
    ctx = zmtp.Context(metrics=zmtp.Metrics(registry))
    router = ctx.socket(zmtp.ROUTER)
    await router.send_multipart([b"nobody", b"hello"])
    assert value(registry, "zmtp_messages_dropped_total", socket_type="ROUTER", reason="unroutable") == 1
    await ctx.term()


async def test_without_metrics_nothing_is_registered():
    ctx = zmtp.Context()
    sock = ctx.socket(zmtp.PUSH)
    assert sock._metrics is None
    await ctx.term()


def test_a_clear_error_without_prometheus_client(monkeypatch):
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    with pytest.raises(ImportError, match="pip install prometheus_client"):
        zmtp.Metrics()
