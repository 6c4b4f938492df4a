"""Hypothesis: whatever bytes arrive, the core yields valid events or a ZMTPError, nothing else."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zmtp import command
from zmtp.connection import Connection, State
from zmtp.errors import HandshakeError, ProtocolError
from zmtp.events import (
    Cancel,
    Event,
    GreetingReceived,
    HandshakeComplete,
    Message,
    Ping,
    Pong,
    Subscribe,
    UnknownCommand,
)
from zmtp.frame import encode_message_bytes
from zmtp.greeting import Greeting

VALID_EVENTS = (GreetingReceived, HandshakeComplete, Message, Subscribe, Cancel, Ping, Pong, UnknownCommand)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

VALID_STREAM = (
    Greeting().encode()
    + command.ready([("Socket-Type", b"PUSH")])
    + encode_message_bytes([b"hello", b"x" * 300])
    + command.ping(10, b"ctx")
    + command.subscribe(b"topic")
    + encode_message_bytes([b"\x01A"])
)


def feed(conn: Connection, chunks: list[bytes]) -> list[Event]:
    events: list[Event] = []
    for chunk in chunks:
        try:
            got = conn.receive_data(chunk)
        except (ProtocolError, HandshakeError):
            assert conn.state is State.CLOSED
            return events
        for ev in got:
            assert isinstance(ev, VALID_EVENTS), ev
            if isinstance(ev, Message):
                assert ev.frames and all(isinstance(f, bytes) for f in ev.frames)
        events += got
    return events


@FUZZ
@given(st.lists(st.binary(max_size=200), max_size=8), st.sampled_from(["PULL", "PUB", "ROUTER", "SUB"]))
def test_arbitrary_bytes(chunks, socket_type):
    feed(Connection(socket_type, as_server=True, max_msg_size=4096), chunks)


@FUZZ
@given(st.binary(max_size=400), st.sampled_from(["PULL", "XPUB"]))
def test_arbitrary_bytes_after_a_valid_greeting(tail, socket_type):
    conn = Connection(socket_type, as_server=True)
    feed(
        conn,
        [Greeting().encode(), command.ready([("Socket-Type", b"PUSH" if socket_type == "PULL" else b"SUB")]), tail],
    )


@FUZZ
@given(st.data())
def test_mutated_valid_stream(data):
    raw = bytearray(VALID_STREAM)
    for _ in range(data.draw(st.integers(1, 6))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=5)))
    pieces = [bytes(raw[a:b]) for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    feed(Connection("PULL", as_server=True, max_msg_size=1 << 16), pieces)


@FUZZ
@given(st.lists(st.integers(1, 64), min_size=1, max_size=30))
def test_valid_stream_in_any_chunking_gives_the_same_events(sizes):
    whole = feed(Connection("PULL", as_server=True), [VALID_STREAM])
    chunks, pos = [], 0
    for n in sizes * 20:
        if pos >= len(VALID_STREAM):
            break
        chunks.append(VALID_STREAM[pos : pos + n])
        pos += n
    chunks.append(VALID_STREAM[pos:])
    assert feed(Connection("PULL", as_server=True), chunks) == whole
    assert [type(e) for e in whole] == [GreetingReceived, HandshakeComplete, Message, Ping, Subscribe, Message]


def _flattened(conn: Connection, chunks: list[bytes], batched: bool) -> tuple[list[object], str]:
    """Each call's events with Messages spread into one Message each, and the error it ended with."""
    from zmtp.events import Messages

    out: list[object] = []
    for chunk in chunks:
        try:
            got = conn.receive_data(chunk, batched=batched)
        except (ProtocolError, HandshakeError) as exc:
            return out, f"{type(exc).__name__}: {exc}"
        for ev in got:
            if isinstance(ev, Messages):
                out += [Message(frames) for frames in ev.messages]
            else:
                out.append(ev)
    return out, ""


_FRAME = st.one_of(st.binary(max_size=20), st.binary(min_size=250, max_size=1100), st.just(b"y" * 70000))
_PIECE = st.one_of(
    st.lists(_FRAME, min_size=1, max_size=3).map(encode_message_bytes),
    st.just(command.ping(0, b"p")),
)


@FUZZ
@given(st.lists(_PIECE, max_size=40), st.data())
def test_batched_receive_gives_the_same_events_in_any_chunking(pieces, data):
    from .helpers import handshake

    raw = bytearray(b"".join(pieces))
    if raw and data.draw(st.booleans()):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=6)))
    chunks = [bytes(raw[a:b]) for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    results = []
    for batched in (False, True):
        _, server = handshake("PUSH", "PULL", server={"max_msg_size": 1 << 16})
        results.append(_flattened(server, chunks, batched))
    assert results[0] == results[1]
