"""The raw peer: the harness itself as a scripted, byte-level ZMTP peer.

It sends exact bytes and expects exact bytes (with `??` for octets that may
legitimately vary), and can also complete a handshake through its own codec
(rawcodec, which shares nothing with impl/) and then exchange whole
messages, for malformed input that only makes sense after a handshake.
"""

from __future__ import annotations

import asyncio
import fcntl
import re
import struct
import termios
import time
from typing import Any

from . import rawcodec
from .rawcodec import COMMAND, LONG, Codec, CodecError, MechanismFactory
from .trace import Transcript, show


class RawFailure(Exception):
    def __init__(self, message: str, expected: str | None = None, seen: bytes | None = None) -> None:
        self.expected = expected
        self.seen = seen
        super().__init__(message)


def parse_hex(text: str) -> bytes:
    try:
        return bytes.fromhex(re.sub(r"\s+", "", text))
    except ValueError:
        raise ValueError(f"{text!r} is not hex octets") from None


def build(piece: Any, frame_bytes, last_sent: bytes | None = None) -> bytes:  # type: ignore[no-untyped-def]
    """Bytes for one `send_raw` piece (see the scenario schema); `last_sent` is what `resend` repeats."""
    if isinstance(piece, list):
        return b"".join(build(p, frame_bytes, last_sent) for p in piece)
    if isinstance(piece, str):
        return parse_hex(piece)
    if "resend" in piece:
        if last_sent is None:
            raise ValueError("resend: this role has sent no message yet")
        return last_sent
    if "text" in piece:
        return piece["text"].encode()
    if "greeting" in piece:
        g = piece["greeting"]
        raw = rawcodec.greeting(g.get("major", 3), g.get("minor", 1), g.get("mechanism", "NULL"), g.get("as_server", 0))
        return raw[: g.get("upto", 64)]
    if "ready" in piece:
        return rawcodec.ready([(k, v.encode()) for k, v in piece["ready"].items()])
    if "command" in piece:
        return rawcodec.command(piece["command"], parse_hex(piece.get("data", "")))
    if "message" in piece:
        return rawcodec.message(frame_bytes(piece["message"]))
    raise ValueError(f"unknown raw piece {piece!r}")


def matches(pattern: str, data: bytes) -> bool:
    octets = pattern.split()
    if len(octets) == 1 and len(pattern) > 2:  # no spaces: pairs of hex digits
        octets = [pattern[i : i + 2] for i in range(0, len(pattern), 2)]
    if len(octets) != len(data):
        return False
    return all(o == "??" or int(o, 16) == b for o, b in zip(octets, data, strict=True))


def pattern_length(pattern: str) -> int:
    octets = pattern.split()
    return len(octets) if len(octets) > 1 or len(pattern) <= 2 else len(pattern) // 2


class RawPeer:
    def __init__(self, name: str, transcript: Transcript) -> None:
        self.name = name
        self.t = transcript
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.buf = bytearray()
        self.conn: Codec | None = None
        self.last_sent: bytes | None = None  # the octets of the last `send`, for `resend` (a replayed nonce)
        self.accepted: asyncio.Event | None = None  # set when a raw server role gets its connection
        self.again = asyncio.Event()  # a raw server role: set when the client connects once more
        self.later_connections = 0  # a raw server role: connections after its first (each closed at once)

    async def connect(self, endpoint: str, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            if endpoint.startswith("tcp://"):
                host, port = endpoint[6:].rsplit(":", 1)
                self.reader, self.writer = await asyncio.open_connection(host.strip("[]"), int(port))
            else:
                self.reader, self.writer = await asyncio.open_unix_connection(endpoint[6:])
        self.t.add(self.name, "connect", endpoint)

    def connected_again(self) -> None:
        """A raw server role was connected to once more (a reconnecting client); the runner closes it."""
        self.later_connections += 1
        self.again.set()
        self.t.add(self.name, "accepted again", f"connection {self.later_connections + 1}, closed at once")

    async def expect_no_connection(self, duration: float) -> None:
        """A raw server role: no connection after the first, until `duration` has passed (a client refused
        with ERROR must not reconnect with the same credentials, RFC 26)."""
        if self.accepted is None:
            raise RawFailure("expect_no_connection is for a raw server role", expected="a raw server role")
        if not self.later_connections:
            try:
                await asyncio.wait_for(self.again.wait(), duration)
            except TimeoutError:
                self.t.add(self.name, "no connection", f"for {duration:g}s, as expected")
                return
        raise RawFailure(
            f"the client connected again ({self.later_connections} more connection"
            f"{'s' if self.later_connections > 1 else ''} within {duration:g}s)",
            expected="no new connection",
            seen=f"{self.later_connections} more".encode(),
        )

    def attach(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.t.add(self.name, "accepted", "")
        if self.accepted is not None:
            self.accepted.set()

    async def write(self, data: bytes) -> None:
        assert self.writer is not None
        self.t.add(self.name, "send_raw", show(data))
        self.writer.write(data)
        await self.writer.drain()

    async def _read_more(self, deadline: float) -> bytes:
        assert self.reader is not None
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        data = await asyncio.wait_for(self.reader.read(65536), left)
        if not data:
            raise ConnectionResetError("closed by peer")
        # After a handshake the bytes go both to the core (for messages) and
        # to the raw buffer, so expect_raw still sees exactly what arrived.
        self.buf += data
        if self.conn is not None:
            self._feed(data)
        return data

    def _feed(self, data: bytes) -> None:
        assert self.conn is not None
        try:
            self.conn.receive(data)
        except CodecError as exc:
            raise RawFailure(f"the peer broke the protocol: {exc}", seen=data) from None

    async def read_exactly(self, n: int, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        try:
            while len(self.buf) < n:
                await self._read_more(deadline)
        except (TimeoutError, ConnectionError) as exc:
            got = bytes(self.buf)
            raise RawFailure(
                f"expected {n} octets, got {len(got)} before {'the timeout' if isinstance(exc, TimeoutError) else 'the peer closed'}",
                seen=got,
            ) from None
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    async def expect(self, spec: Any) -> None:
        if isinstance(spec, str):
            spec = {"pattern": spec}
        timeout = spec.get("timeout", 2.0)
        if "pattern" in spec:
            data = await self.read_exactly(pattern_length(spec["pattern"]), timeout)
            self.t.add(self.name, "expect_raw", show(data))
            if not matches(spec["pattern"], data):
                raise RawFailure("octets differ from the expected pattern", expected=spec["pattern"], seen=data)
        if spec.get("greeting"):
            data = await self.read_exactly(64, timeout)
            self.t.add(self.name, "expect_raw", f"greeting {show(data)}")
            try:
                rawcodec.parse_greeting(data)
            except CodecError as exc:
                raise RawFailure(
                    f"not a valid ZMTP 3.x greeting: {exc}", expected="a 64-octet greeting", seen=data
                ) from None
        if "ready" in spec:
            await self.expect_ready(spec["ready"], timeout)
        if "command" in spec:
            head, body = await self.read_frame(timeout)
            self.t.add(self.name, "expect_raw", show(head + body))
            if not head[0] & COMMAND or body[1 : 1 + body[0]] != spec["command"].encode():
                raise RawFailure(f"expected a {spec['command']} command", expected=spec["command"], seen=head + body)
            if spec["command"] == "ERROR":  # its grammar too: a reason of 0-255 printable octets, sized
                try:
                    reason = rawcodec.parse_error(body)
                except CodecError as exc:
                    raise RawFailure(
                        f"a malformed ERROR: {exc}", expected="ERROR with a size-specified reason", seen=head + body
                    ) from None
                self.t.add(self.name, "ERROR", repr(reason.decode("ascii")))

    async def read_frame(self, timeout: float) -> tuple[bytes, bytes]:
        """One whole frame: (its header, its body)."""
        head = await self.read_exactly(2, timeout)
        if head[0] & LONG:
            head += await self.read_exactly(7, timeout)
            size = int.from_bytes(head[1:9], "big")
        else:
            size = head[1]
        return head, await self.read_exactly(size, timeout)

    async def expect_ready(self, wanted: dict[str, str], timeout: float) -> None:
        """A READY carrying these properties, compared by meaning: names without regard to case, any
        order, other properties allowed (RFC 37 makes Identity optional and lets peers add their own)."""
        head, body = await self.read_frame(timeout)
        self.t.add(self.name, "expect_raw", show(head + body))
        want = ", ".join(f"{k}={v}" for k, v in wanted.items())
        if not head[0] & COMMAND or body[1 : 1 + body[0]] != b"READY":
            raise RawFailure("expected a READY command", expected=f"READY with {want}", seen=head + body)
        try:
            props = rawcodec.parse_properties(body[1 + body[0] :])
        except CodecError as exc:
            raise RawFailure(
                f"READY with malformed metadata: {exc}", expected=f"READY with {want}", seen=head + body
            ) from None
        for name, value in wanted.items():
            got = props.get(name.lower())
            if got != value.encode():
                have = ", ".join(f"{k}={v!r}" for k, v in props.items())
                raise RawFailure(
                    f"READY without {name}={value}" + (f" (it has {name}={got!r})" if got is not None else ""),
                    expected=f"READY with {want}",
                    seen=f"READY with {have}".encode(),
                )

    async def handshake(
        self,
        socket_type: str,
        *,
        as_server: bool,
        minor: int | None = None,
        identity: bytes = b"",
        mechanism: MechanismFactory | None = None,
        properties: list[tuple[str, bytes]] | None = None,
        lowercase_names: bool = False,
        corrupt: str | None = None,
        distinct_from: RawPeer | None = None,
        replay_initiate_of: RawPeer | None = None,
        stop_after: str | None = None,
        refuse: bytes | None = None,
        timeout: float = 5.0,
    ) -> None:
        """Greeting and security handshake through the raw peer's own codec.

        `mechanism` makes the client side of PLAIN or CURVE (credentials.client_mechanism); None is NULL.
        `properties` are sent after Socket-Type and Identity in READY (INITIATE under PLAIN and CURVE).
        `corrupt` spoils one command of this side's handshake (rawcodec's `corruptions`); the step then
        ends once that command is sent, for the next step to see the peer refuse it.
        `distinct_from`: another raw role whose handshake is done; the values each handshake must make
        fresh (rawcodec Mechanism.fresh) must all differ from that one's.
        `replay_initiate_of`: another raw CURVE client whose handshake is done; this one sends that one's
        INITIATE verbatim after its own HELLO and WELCOME, and the step ends there.
        `stop_after`: a command name; the step ends once this side has sent it, and the bytes the peer
        sends next are left for raw steps (expect_raw, expect_close): what a server answers an INITIATE.
        `refuse` (a raw CURVE server): answer a valid INITIATE with ERROR of this reason, and end the step.
        """
        try:
            self.conn = Codec(
                socket_type,
                as_server=as_server,
                minor=minor,
                identity=identity,
                mechanism=mechanism,
                properties=properties,
                lowercase_names=lowercase_names,
                corrupt=corrupt,
                stop_after=stop_after,
                refuse=refuse,
            )
        except CodecError as exc:
            raise RawFailure(f"cannot play this handshake: {exc}") from None
        if replay_initiate_of is not None:
            earlier = replay_initiate_of.conn.mech if replay_initiate_of.conn is not None else None
            if not isinstance(self.conn.mech, rawcodec.Curve) or not isinstance(earlier, rawcodec.Curve):
                raise RawFailure("replay_initiate_of is for two raw CURVE clients")
            if not earlier.sent_initiate:
                raise RawFailure(f"{replay_initiate_of.name} has sent no INITIATE to replay", expected="an INITIATE")
            self.conn.mech.replay_initiate = earlier.sent_initiate
        pending = bytes(self.buf)
        self.buf.clear()
        await self.flush()
        if pending:
            self._feed(pending)
            await self.flush()
        deadline = time.monotonic() + timeout
        try:
            while not self.conn.ready and not self.conn.mech.corrupted and not self.conn.stopped:
                await self._read_more(deadline)
                await self.flush()
        except (TimeoutError, ConnectionError) as exc:
            raise RawFailure(f"handshake as {socket_type} did not complete: {exc or 'timed out'}") from None
        self.buf.clear()  # the handshake's own bytes are not for expect_raw
        if self.conn.stopped:
            self.t.add(self.name, "handshake", f"as {socket_type}, stopped after sending {stop_after}")
            return
        if self.conn.mech.corrupted:
            what = (
                f"{replay_initiate_of.name}'s INITIATE again"
                if replay_initiate_of
                else f"ERROR {refuse!r}"
                if refuse is not None
                else f"a spoilt command ({corrupt})"
            )
            self.t.add(self.name, "handshake", f"as {socket_type}, sent {what}")
            return
        self.t.add(
            self.name, "handshake", f"as {socket_type}, ZMTP {self.conn.version}, peer {self.conn.peer_socket_type}"
        )
        if distinct_from is not None:
            self.check_distinct(distinct_from)

    def check_distinct(self, other: RawPeer) -> None:
        """The fresh values of this connection's handshake all differ from `other`'s (RFC 26 asks for a new
        transient key pair, WELCOME nonce, cookie and vouch nonce each time)."""
        assert self.conn is not None
        mine = self.conn.mech.fresh
        theirs = other.conn.mech.fresh if other.conn is not None else {}
        common = sorted(set(mine) & set(theirs))
        if not common:
            raise RawFailure(
                f"{other.name} has no handshake values to compare with: it must complete the same kind of "
                "handshake first",
                expected=", ".join(sorted(mine)) or "handshake values",
            )
        same = [k for k in common if mine[k] == theirs[k]]
        if same:
            raise RawFailure(
                f"this connection's {', '.join(same)} equal{'s' if len(same) == 1 else ''} {other.name}'s",
                expected=f"{', '.join(common)} fresh for each connection",
                seen=mine[same[0]],
            )
        self.t.add(self.name, "distinct", f"{', '.join(common)} differ from {other.name}'s")

    async def flush(self) -> None:
        assert self.conn is not None and self.writer is not None
        data = self.conn.data_to_send()
        if data:
            self.writer.write(data)
            await self.writer.drain()

    async def send_message(self, frames: list[bytes], rfc_form: bool = False) -> None:
        """`rfc_form`: under CURVE, each MESSAGE in a command frame, as RFC 25/26 have it."""
        if self.conn is None:
            if rfc_form:
                raise RawFailure("a MESSAGE in a command frame needs a CURVE handshake first")
            self.last_sent = rawcodec.message(frames)
            await self.write(self.last_sent)
            return
        await self.flush()  # PONGs still queued are not part of this message
        try:
            self.conn.send_message(frames, rfc_form=rfc_form)
        except CodecError as exc:
            raise RawFailure(str(exc)) from None
        self.last_sent = bytes(self.conn.outgoing)
        self.t.add(self.name, "send", show(frames) + (" (MESSAGE in a command frame)" if rfc_form else ""))
        await self.flush()

    def _unsent(self) -> int:
        """Octets written that the peer has not taken yet: asyncio's buffer, and the kernel's send
        queue (SIOCOUTQ: for tcp what the peer has not acknowledged, for a unix socket what it has
        not read)."""
        assert self.writer is not None
        transport = self.writer.transport
        queued = transport.get_write_buffer_size()
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.fileno() >= 0:
            raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, struct.pack("i", 0))
            queued += struct.unpack("i", raw)[0]
        return queued

    async def flood(self, messages: list[list[bytes]], drained: float) -> tuple[int, int]:
        """Write every message at once, without waiting for the peer, then wait up to `drained`
        seconds for it to take them all. Returns (octets written, octets it left untaken)."""
        if self.conn is None or self.writer is None:
            raise RawFailure("a raw role must complete a handshake before it can flood its peer")
        await self.flush()
        for frames in messages:
            self.conn.send_message(frames)
        data = self.conn.data_to_send()
        self.t.add(self.name, "send", f"{len(messages)} numbered messages in {len(data)} octets, at once")
        self.writer.write(data)  # no drain(): a peer that pushes back must not stop this step
        deadline = time.monotonic() + drained
        while (left := self._unsent()) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if self.writer.transport.is_closing():
            # A closed connection takes nothing more and leaves nothing queued: not a discard.
            raise RawFailure("the peer closed the connection while it was being flooded")
        return len(data), left

    async def subscribe(self, topic: bytes) -> None:
        """SUBSCRIBE in the form the peer's greeting asks for (a command to 3.1, a 01 message to 3.0),
        inside the CURVE box when the handshake was CURVE."""
        if self.conn is None:
            raise RawFailure("a raw role must complete a handshake before it can subscribe")
        self.conn.send_subscribe(topic)
        self.t.add(self.name, "subscribe", show(topic))
        await self.flush()

    async def recv_message(self, timeout: float) -> list[bytes]:
        if self.conn is None:
            raise RawFailure("a raw role must complete a handshake before it can expect messages")
        deadline = time.monotonic() + timeout
        while not self.conn.messages:
            await self._read_more(deadline)
            await self.flush()  # PONGs
        message = self.conn.messages.pop(0)
        if not self.conn.messages:
            # Every octet read so far is a message taken, or a command the codec handled: none is
            # left unread for expect_close, expect_silence or expect_response to report.
            self.buf.clear()
        return message

    async def expect_close(self, timeout: float) -> bytes:
        """Wait for the peer to close; returns what it sent meanwhile."""
        deadline = time.monotonic() + timeout
        # Only what arrives during this step: octets an earlier step read along with what it wanted
        # (the rest of a greeting sent in one piece, read with its signature) came before the point
        # the scenario asks about, and scenarios written against peers that send their greeting in
        # pieces and against those that send it whole must judge both alike.
        seen = bytearray()
        try:
            while True:
                seen += await self._read_more(deadline)
        except ConnectionError:
            self.t.add(self.name, "closed by peer", show(bytes(seen)) if seen else "")
            return bytes(seen)
        except TimeoutError:
            raise RawFailure(
                f"the peer kept the connection open for {timeout:g}s", expected="close", seen=bytes(seen)
            ) from None
        except Exception as exc:  # a protocol error in what the peer sent before closing
            raise RawFailure(f"peer sent bytes our decoder refused before closing: {exc}", seen=bytes(seen)) from None

    async def expect_response(self, timeout: float) -> None:
        """The peer sends something more or closes within `timeout`; a peer that does neither has stalled."""
        if self.buf:
            return
        try:
            await self._read_more(time.monotonic() + timeout)
        except ConnectionError:
            self.t.add(self.name, "closed by peer", "")
        except TimeoutError:
            raise RawFailure(
                f"the peer neither sent anything nor closed within {timeout:g}s", expected="octets or a close"
            ) from None

    async def expect_silence(self, duration: float, may_close: bool = False) -> None:
        """The peer sends no octet for `duration` and keeps the connection open: a side that must wait
        for this one (a NULL server waits for the client's READY) has not spoken first. With `may_close`
        it may close instead, still without an octet (a server that sent ERROR leaves the close to the
        client, RFC 37, or closes itself)."""
        if self.buf:
            raise RawFailure(
                f"the peer had sent {len(self.buf)} octets more where it had to wait",
                expected="no octets",
                seen=bytes(self.buf),
            )
        try:
            data = await self._read_more(time.monotonic() + duration)
        except TimeoutError:
            self.t.add(self.name, "silence", f"nothing for {duration:g}s, as expected")
            return
        except ConnectionError:
            if may_close:
                self.t.add(self.name, "closed by peer", "without sending anything more, as allowed")
                return
            raise RawFailure(
                f"the peer closed the connection within {duration:g}s", expected="silence on an open connection"
            ) from None
        raise RawFailure(
            f"the peer sent {len(data)} octets within {duration:g}s where it had to wait",
            expected="no octets",
            seen=data,
        )

    async def expect_open(self, duration: float) -> None:
        deadline = time.monotonic() + duration
        try:
            while True:
                await self._read_more(deadline)
        except TimeoutError:
            return
        except ConnectionError:
            raise RawFailure(f"the peer closed the connection within {duration:g}s", expected="open") from None

    async def disconnect(self) -> None:
        """Leave abruptly, as a peer that dies or gives up does: bytes it has not read make it a reset."""
        if self.writer is None or self.writer.is_closing():
            raise RawFailure("the connection is already closed", expected="an open connection")
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except ConnectionError:
            pass  # the reset we caused ourselves
        self.t.add(self.name, "disconnect", "")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
