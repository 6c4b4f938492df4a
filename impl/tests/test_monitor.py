"""Socket events (zmtp.monitor): the sequences for good and failed handshakes."""

from __future__ import annotations

import asyncio

import pytest

import zmtp
from zmtp import EventKind, HandshakeFailure
from zmtp.zap import ZapResponse

T = 5.0


async def until(mon: zmtp.Monitor, kind: EventKind) -> list[zmtp.SocketEvent]:
    """Events up to and including the first of `kind`."""
    seen = []
    while True:
        ev = await mon.next(T)
        assert ev is not None, f"monitor ended before {kind.value}; saw {[e.kind.value for e in seen]}"
        seen.append(ev)
        if ev.kind is kind:
            return seen


def kinds(events: list[zmtp.SocketEvent]) -> list[str]:
    return [e.kind.value for e in events]


async def test_good_handshake_both_sides(ctx):
    server = ctx.socket(zmtp.REP)
    client = ctx.socket(zmtp.REQ)
    smon, cmon = server.monitor(), client.monitor()
    ep = await server.bind("tcp://127.0.0.1:0")
    await client.connect(ep)
    s_events = await until(smon, EventKind.HANDSHAKE_SUCCEEDED)
    c_events = await until(cmon, EventKind.HANDSHAKE_SUCCEEDED)
    assert kinds(s_events) == ["listening", "accepted", "handshake_succeeded"]
    assert kinds(c_events) == ["connected", "handshake_succeeded"]
    done = c_events[-1]
    assert done.endpoint == ep
    duration = done.details.pop("duration")
    assert done.details == {"mechanism": "NULL", "version": "3.1", "peer_socket_type": "REP"}
    assert 0 < duration < 5  # seconds from connection to READY
    assert done.to_dict()["event"] == "handshake_succeeded"

    await client.close(linger=0)
    s_more = await until(smon, EventKind.DISCONNECTED)
    assert s_more[-1].peer.startswith("127.0.0.1:")
    assert kinds(await until(cmon, EventKind.CLOSED)) == ["disconnected", "closed"]
    assert await cmon.next(T) is None  # the iterator ends with the socket
    await server.close(linger=0)
    assert kinds([e async for e in smon]) == ["closed"]  # the client was already gone


async def test_socket_type_mismatch_is_a_protocol_failure(ctx):
    server = ctx.socket(zmtp.REP)
    client = ctx.socket(zmtp.PUB)
    smon = server.monitor()
    ep = await server.bind("tcp://127.0.0.1:0")
    await client.connect(ep)
    failed = (await until(smon, EventKind.HANDSHAKE_FAILED))[-1]
    assert failed.failure is HandshakeFailure.PROTOCOL
    assert "PUB" in failed.reason and "REP" in failed.reason
    smon.close()
    await client.close(linger=0)
    await server.close(linger=0)


async def test_zap_refusal_is_an_auth_failure_on_both_sides(ctx):
    class Nobody:
        async def authenticate(self, request: zmtp.ZapRequest) -> ZapResponse:
            return ZapResponse.failure(request.request_id, "go away", 400)

    ctx.set_zap_handler(Nobody())
    server = ctx.socket(zmtp.PULL, zmtp.SocketOptions(plain_server=True))
    client = ctx.socket(zmtp.PUSH, zmtp.SocketOptions(plain_username="u", plain_password="p"))
    smon, cmon = server.monitor(), client.monitor()
    ep = await server.bind("tcp://127.0.0.1:0")
    await client.connect(ep)
    s_failed = (await until(smon, EventKind.HANDSHAKE_FAILED))[-1]
    c_failed = (await until(cmon, EventKind.HANDSHAKE_FAILED))[-1]
    assert (s_failed.failure, c_failed.failure) == (HandshakeFailure.AUTH, HandshakeFailure.AUTH)
    assert "go away" in s_failed.reason and "400" in c_failed.reason  # libzmq's ERROR carries the status code
    await client.close(linger=0)
    await server.close(linger=0)


async def test_handshake_timeout_and_silent_peer(ctx):
    server = ctx.socket(zmtp.PULL, zmtp.SocketOptions(handshake_timeout=0.2))
    smon = server.monitor()
    ep = await server.bind("tcp://127.0.0.1:0")
    host, port = ep.removeprefix("tcp://").rsplit(":", 1)
    _, writer = await asyncio.open_connection(host, int(port))  # connects, never greets
    failed = (await until(smon, EventKind.HANDSHAKE_FAILED))[-1]
    assert failed.failure is HandshakeFailure.TIMEOUT
    writer.close()

    _, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"\xff\x00\x00\x00")  # part of a signature, then gone
    await writer.drain()
    writer.close()
    failed = (await until(smon, EventKind.HANDSHAKE_FAILED))[-1]
    assert failed.failure is HandshakeFailure.CLOSED
    await server.close(linger=0)


async def test_connect_retried_until_a_peer_binds(ctx):
    probe = ctx.socket(zmtp.PULL)
    ep = await probe.bind("tcp://127.0.0.1:0")
    await probe.close(linger=0)  # a free port, nobody listening
    client = ctx.socket(zmtp.PUSH, zmtp.SocketOptions(reconnect_ivl=0.05))
    cmon = client.monitor()
    await client.connect(ep)
    retried = (await until(cmon, EventKind.CONNECT_RETRIED))[-1]
    assert retried.details["interval"] == pytest.approx(0.05)
    server = ctx.socket(zmtp.PULL)
    await server.bind(ep)
    await until(cmon, EventKind.HANDSHAKE_SUCCEEDED)
    await client.close(linger=0)
    await server.close(linger=0)


async def test_bind_failure_is_reported_and_raised(ctx):
    a = ctx.socket(zmtp.PULL)
    ep = await a.bind("tcp://127.0.0.1:0")
    b = ctx.socket(zmtp.PULL)
    mon = b.monitor()
    with pytest.raises(OSError):
        await b.bind(ep)  # port in use
    assert kinds(mon.drain()) == ["bind_failed"]
    await a.close(linger=0)
    await b.close(linger=0)


async def test_slow_reader_loses_oldest_events_not_memory():
    mon = zmtp.Monitor(lambda m: None, maxlen=3)
    for i in range(5):
        mon._push(zmtp.SocketEvent(EventKind.CONNECT_RETRIED, f"tcp://127.0.0.1:{i}"))
    assert mon.dropped == 2
    assert [e.endpoint[-1] for e in mon.drain()] == ["2", "3", "4"]
    with pytest.raises(TimeoutError):
        await mon.next(0.01)
