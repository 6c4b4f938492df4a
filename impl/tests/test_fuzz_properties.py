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
