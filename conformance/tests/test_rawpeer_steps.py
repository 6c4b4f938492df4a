"""The raw peer's steps added for the interop-bug corpus: expect_response, resend, subscribe, handshake properties.

Each runs the raw peer against a second raw peer (or a scripted socket) on loopback, so no implementation is
involved, and each has a case that must fail.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from codec_pairs import raw_pair

from zmtp_conformance.rawpeer import RawFailure, RawPeer, build
from zmtp_conformance.trace import Transcript

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _connected(script: Script) -> tuple[RawPeer, asyncio.Server]:
    """A raw client connected to a loopback server that runs `script` on its side."""
    server = await asyncio.start_server(script, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    peer = RawPeer("probe", Transcript())
    await peer.connect(f"tcp://127.0.0.1:{port}")
    return peer, server


async def _pair(client_type: str, server_type: str, **client_kw) -> tuple[RawPeer, RawPeer, asyncio.Server]:
    """Two raw peers with a completed NULL handshake: (client, server, listening socket)."""
    client, server_peer, listener = await raw_pair()
    server_minor = client_kw.pop("server_minor", None)
    await asyncio.gather(
        client.handshake(client_type, as_server=False, **client_kw),
        server_peer.handshake(server_type, as_server=True, minor=server_minor),
    )
    return client, server_peer, listener


def _run(coro: Awaitable[None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 10))


@pytest.mark.parametrize("answer", ["bytes", "close"])
def test_expect_response_passes_when_the_peer_answers_or_closes(answer):
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(1)
        if answer == "bytes":
            writer.write(b"\x03")
            await writer.drain()
            await asyncio.sleep(1)
        writer.close()

    async def main() -> None:
        peer, server = await _connected(script)
        await peer.write(b"\x00")
        await peer.expect_response(2)
        peer.close()
        server.close()

    _run(main())


def test_expect_response_fails_on_a_stall():
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(2)
        writer.close()

    async def main() -> None:
        peer, server = await _connected(script)
        with pytest.raises(RawFailure, match="neither sent anything nor closed"):
            await peer.expect_response(0.2)
        peer.close()
        server.close()

    _run(main())


def test_expect_silence_passes_while_the_peer_waits():
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)  # waits for an octet the probe never sends
        writer.close()

    async def main() -> None:
        peer, server = await _connected(script)
        await peer.expect_silence(0.2)
        peer.close()
        server.close()

    _run(main())


@pytest.mark.parametrize(
    ("behaviour", "refusal"),
    [
        ("speaks", r"sent \d+ octets within 2s where it had to wait"),
        ("closes", "closed the connection within 2s"),
        ("spoke before", "octets.* where it had to wait"),
    ],
)
def test_expect_silence_fails_when_the_peer_speaks_or_leaves(behaviour, refusal):
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if behaviour == "speaks":
            writer.write(b"\x04\x03READY")
            await writer.drain()
            await asyncio.sleep(3)
        elif behaviour == "spoke before":
            writer.write(b"\x01\x02\x03\x04\x05")
            await writer.drain()
            await asyncio.sleep(3)
        writer.close()

    async def main() -> None:
        peer, server = await _connected(script)
        if behaviour == "closes":  # allowed where the peer may end the connection, still without an octet
            await peer.expect_silence(2, may_close=True)
            peer.close()
            peer, server = await _connected(script)
        if behaviour == "spoke before":  # two octets read by an earlier step, three left in the buffer
            await peer.read_exactly(2, 2)
        with pytest.raises(RawFailure, match=refusal):
            await peer.expect_silence(2)
        peer.close()
        server.close()

    _run(main())


def test_resend_repeats_the_octets_of_the_last_send():
    async def main() -> None:
        client, server, listener = await _pair("PUSH", "PULL")
        await client.send_message([b"one", b"two"])
        assert client.last_sent == b"\x01\x03one\x00\x03two"
        assert build({"resend": True}, lambda frames: [], client.last_sent) == client.last_sent
        await client.write(build({"resend": True}, lambda frames: [], client.last_sent))
        assert await server.recv_message(2) == [b"one", b"two"]
        assert await server.recv_message(2) == [b"one", b"two"]
        client.close()
        server.close()
        listener.close()

    _run(main())


def test_resend_before_any_send_is_refused():
    with pytest.raises(ValueError, match="no message yet"):
        build({"resend": True}, lambda frames: [], None)


@pytest.mark.parametrize(
    ("minor", "octets"),
    [(1, b"\x04\x0b\x09SUBSCRIBEA"), (0, b"\x00\x02\x01A")],
)
def test_subscribe_takes_the_form_the_peers_version_wants(minor, octets):
    async def main() -> None:
        client, server, listener = await _pair("SUB", "PUB", server_minor=minor)
        await client.subscribe(b"A")
        assert await server.read_exactly(len(octets), 2) == octets
        client.close()
        server.close()
        listener.close()

    _run(main())


def test_subscribe_needs_a_handshake():
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(0.5)
        writer.close()

    async def main() -> None:
        peer, server = await _connected(script)
        with pytest.raises(RawFailure, match="handshake before it can subscribe"):
            await peer.subscribe(b"A")
        peer.close()
        server.close()

    _run(main())


def test_handshake_properties_reach_the_peer_after_socket_type_and_identity():
    async def main() -> None:
        client, server, listener = await _pair(
            "DEALER", "ROUTER", identity=b"me", properties=[("X-Corpus", b"x" * 600)]
        )
        assert server.conn is not None and server.conn.mech.peer is not None
        assert server.conn.mech.peer == {"socket-type": b"DEALER", "identity": b"me", "x-corpus": b"x" * 600}
        client.close()
        server.close()
        listener.close()

    _run(main())


def test_disconnect_is_seen_by_the_peer_even_with_bytes_left_unread():
    async def main() -> None:
        client, server_peer, listener = await _pair("DEALER", "ROUTER")
        await server_peer.send_message([b"never-read"])
        await asyncio.sleep(0.05)
        await client.disconnect()
        await server_peer.expect_close(2)
        assert "disconnect" in client.t.text()
        listener.close()

    _run(main())


def test_expect_close_reports_only_what_arrives_during_the_step():
    """A greeting sent whole and read with its signature is not 'sent before closing' (corpus/11 holds a
    peer to 'nothing beyond its greeting', and a whole greeting must judge as one sent in pieces)."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"\xff" + bytes(8) + b"\x7f" + b"\x03\x00NULL")
        await writer.drain()
        await asyncio.sleep(0.3)
        writer.write(b"late")
        await writer.drain()
        writer.close()

    async def main() -> None:
        peer, server = await _connected(script)
        await peer.read_exactly(10, 2)  # the signature; the rest of the greeting stays buffered
        assert await peer.expect_close(2) == b"late"
        peer.close()
        server.close()

    _run(main())


def test_expect_response_is_not_satisfied_by_a_message_already_received():
    async def main() -> None:
        client, server_peer, listener = await _pair("DEALER", "ROUTER")
        await server_peer.send_message([b"taken"])
        assert await client.recv_message(2) == [b"taken"]
        with pytest.raises(RawFailure, match="neither sent anything nor closed"):
            await client.expect_response(0.3)
        server_peer.close()
        listener.close()

    _run(main())


def test_expect_close_does_not_report_messages_already_received():
    async def main() -> None:
        client, server_peer, listener = await _pair("DEALER", "ROUTER")
        await server_peer.send_message([b"taken"])
        assert await client.recv_message(2) == [b"taken"]
        server_peer.close()
        assert await client.expect_close(2) == b""
        listener.close()

    _run(main())


def test_disconnect_twice_is_refused():
    async def main() -> None:
        client, server_peer, listener = await _pair("DEALER", "ROUTER")
        await client.disconnect()
        with pytest.raises(RawFailure, match="already closed"):
            await client.disconnect()
        server_peer.close()
        listener.close()

    _run(main())
