"""The engine <-> socket contract (EngineOwner), the pattern hooks that come in pairs,
and the engine's I/O choices that make the default options the fast path."""

from __future__ import annotations

import asyncio

import pytest

import zmtp
from zmtp.engine import READ_MAX, WRITE_MAX, Engine, EngineOwner
from zmtp.mechanisms.curve import CookieKeys
from zmtp.patterns import SOCKET_CLASSES, Pull
from zmtp.socket import Socket


def test_every_socket_type_is_an_engine_owner():
    for cls in SOCKET_CLASSES.values():
        assert isinstance(cls(None, zmtp.SocketOptions()), EngineOwner), cls.__name__


def test_a_pattern_with_its_own_queue_must_say_how_to_take_many():
    with pytest.raises(TypeError, match="overrides take but not take_many"):

        class OwnQueue(Pull):
            def take(self) -> list[bytes] | None:
                return None


def test_a_pattern_that_waits_to_send_must_say_how_to_send_without_waiting():
    with pytest.raises(TypeError, match="overrides send_waiting but not send_now"):

        class SlowSender(Socket):
            async def send_waiting(self, frames: list[bytes]) -> None:
                return None


def test_overriding_both_halves_is_accepted():
    class Both(Pull):
        def take(self) -> list[bytes] | None:
            return None

        def take_many(self, limit: int) -> list[list[bytes]]:
            return []

    assert Both(None).take_many(3) == []


def test_cookie_keys_rotate_by_the_clock_they_are_given():
    now = [100.0]
    keys = CookieKeys(lambda: now[0], lifetime=60.0)
    first = keys.current()
    now[0] = 159.0
    assert keys.current() is first
    now[0] = 161.0
    second = keys.current()
    assert second is not first
    assert keys._previous is first  # still opens cookies of handshakes in flight
    unclocked = CookieKeys()
    key = unclocked.current()
    assert unclocked.current() is key  # no clock: only rotate() changes it
    unclocked.rotate()
    assert unclocked.current() is not key


async def test_a_queued_message_is_received_without_suspending(ctx):
    pull = ctx.socket(zmtp.PULL, zmtp.SocketOptions(linger=0))
    ep = await pull.bind("tcp://127.0.0.1:0")
    push = ctx.socket(zmtp.PUSH, zmtp.SocketOptions(linger=0))
    await push.connect(ep)
    await push.send_many([[b"a"], [b"b"]])
    assert await pull.recv_multipart() == [b"a"]  # waits for the connection
    coro = pull.recv_multipart()
    with pytest.raises(StopIteration) as done:
        coro.send(None)  # one step: the message was already queued
    assert done.value.value == [b"b"]


async def test_read_size_grows_while_reads_fill_it_and_shrinks_when_they_do_not():
    sock = Pull(None, zmtp.SocketOptions(recv_buffer_size=8192))
    engine = Engine(sock, as_server=True, endpoint="tcp://127.0.0.1:1")
    sizes = []
    for _ in range(10):
        engine._adapt_read_size(len(engine._view))  # the kernel filled the buffer
        sizes.append(len(engine._view))
    assert sizes[0] == 16384 and sizes[-1] == READ_MAX
    for _ in range(10):
        engine._adapt_read_size(100)  # idle: short reads
    assert len(engine._view) == 8192  # back to the preset, never below
    big = Engine(Pull(None, zmtp.SocketOptions(recv_buffer_size=2 * READ_MAX)), as_server=True, endpoint="x")
    big._adapt_read_size(len(big._view))
    assert len(big._view) == 2 * READ_MAX  # a preset above the bound is kept as it is


async def test_write_gather_grows_while_a_sender_streams_and_shrinks_when_it_does_not(ctx):
    pull = ctx.socket(zmtp.PULL, zmtp.SocketOptions(linger=0))
    ep = await pull.bind("tcp://127.0.0.1:0")
    push = ctx.socket(zmtp.PUSH, zmtp.SocketOptions(linger=0))  # the 8 KiB preset
    await push.connect(ep)
    await push.send(b"hello")
    assert await asyncio.wait_for(pull.recv_multipart(), 5) == [b"hello"]
    (engine,) = push._engines
    assert engine._wlimit == 8192
    for _ in range(200):  # one loop turn: the sender never yields
        await push.send(b"x" * 1024)
    assert engine._wlimit == WRITE_MAX
    for _ in range(200):
        await asyncio.wait_for(pull.recv_multipart(), 5)
    for _ in range(8):  # quiet turns, one small message each
        await push.send(b"ping")
        assert await asyncio.wait_for(pull.recv_multipart(), 5) == [b"ping"]
    assert engine._wlimit == 8192  # back to the preset, never below
    big = ctx.socket(zmtp.PUSH, zmtp.SocketOptions(linger=0, send_buffer_size=2 * WRITE_MAX))
    await big.connect(ep)
    await big.send(b"x" * (2 * WRITE_MAX))
    assert len((await asyncio.wait_for(pull.recv_multipart(), 5))[0]) == 2 * WRITE_MAX
    (engine,) = big._engines
    assert engine._wlimit == 2 * WRITE_MAX  # a preset above the bound is kept as it is


async def test_req_and_rep_write_at_once_instead_of_at_the_end_of_the_loop_turn(ctx):
    rep = ctx.socket(zmtp.REP, zmtp.SocketOptions(linger=0))
    ep = await rep.bind("tcp://127.0.0.1:0")
    req = ctx.socket(zmtp.REQ, zmtp.SocketOptions(linger=0))
    await req.connect(ep)
    await req.send(b"warm-up")
    await rep.recv_multipart()
    await rep.send(b"ok")
    assert await req.recv_multipart() == [b"ok"]
    await req.send(b"ping")
    (req_engine,) = req._engines
    assert req_engine._flush_handle is None and not req_engine._wchunks  # already written
    assert await asyncio.wait_for(rep.recv_multipart(), 5) == [b"ping"]
    await rep.send(b"pong")
    (rep_engine,) = rep._engines
    assert rep_engine._flush_handle is None and not rep_engine._wchunks
    assert await asyncio.wait_for(req.recv_multipart(), 5) == [b"pong"]
    # Other patterns still gather a loop turn's messages into one write.
    pull = ctx.socket(zmtp.PULL, zmtp.SocketOptions(linger=0))
    ep2 = await pull.bind("tcp://127.0.0.1:0")
    push = ctx.socket(zmtp.PUSH, zmtp.SocketOptions(linger=0))
    await push.connect(ep2)
    await push.send(b"first")
    assert await asyncio.wait_for(pull.recv_multipart(), 5) == [b"first"]
    await push.send(b"second")
    (push_engine,) = push._engines
    assert push_engine._flush_handle is not None and push_engine._wchunks
    assert await asyncio.wait_for(pull.recv_multipart(), 5) == [b"second"]


SANS_IO = [
    "connection.py",
    "frame.py",
    "command.py",
    "greeting.py",
    "metadata.py",
    "legacy.py",
    "mechanisms/base.py",
    "mechanisms/null.py",
    "mechanisms/plain.py",
    "mechanisms/curve.py",
]


def _io_uses(source: str) -> list[str]:
    import ast

    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [f"import {n}" for n in names if n.split(".")[0] in ("time", "asyncio", "socket", "selectors")]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if (node.value.id, node.attr) in {("os", "open"), ("os", "environ"), ("os", "getenv"), ("time", "time")}:
                found.append(f"{node.value.id}.{node.attr}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "open":
            found.append("open()")
    return found


def test_the_sans_io_core_reads_no_clock_and_opens_no_file():
    from pathlib import Path

    root = Path(zmtp.__file__).parent
    offenders = {name: uses for name in SANS_IO if (uses := _io_uses((root / name).read_text()))}
    assert offenders == {}


def test_the_io_check_can_fail():
    assert _io_uses("import time\nx = time.monotonic()") == ["import time"]
    assert sorted(_io_uses("import os\nos.environ.get('X')\nopen('f')")) == ["open()", "os.environ"]


def test_batched_receive_groups_runs_of_messages_and_keeps_every_event_in_order():
    from zmtp.events import Message, Messages, Ping

    from .helpers import handshake

    def stream():
        client, server = handshake("DEALER", "ROUTER")
        client.send_message([b"a"])
        client.send_message([b"b", b"c"])
        client.send_ping(0, b"x")
        client.send_message([b"d"])
        return server, client.data_to_send()

    server, data = stream()
    events = server.receive_data(data, batched=True)
    assert [type(e) for e in events] == [Messages, Ping, Messages]
    assert events[0].messages == [[b"a"], [b"b", b"c"]] and events[2].messages == [[b"d"]]
    server, data = stream()
    plain = server.receive_data(data)  # the default: one Message each
    assert [type(e) for e in plain] == [Message, Message, Ping, Message]
