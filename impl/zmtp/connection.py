"""The sans-I/O ZMTP connection: bytes in, events and bytes out.

One `Connection` is one end of one transport connection. It owns the
greeting, the security handshake (through a `Mechanism`), framing, and the
commands of the traffic phase. It never touches a socket, a clock or a loop:

    conn = Connection(SocketType.DEALER, as_server=False)
    transport.write(conn.data_to_send())           # the staged greeting
    for event in conn.receive_data(chunk): ...     # GreetingReceived, HandshakeComplete, Message, ...
    conn.send_message([b"hello"]); transport.writelines(conn.take_output())

A protocol violation raises `ProtocolError` (or `HandshakeError`) from
`receive_data`; anything the connection still had to say (an ERROR command)
is left in its output, and the caller flushes it and closes. Timers
(handshake timeout, heartbeats) belong to the I/O layer, which reads the
`Ping` events to learn a peer's TTL.

RFC 37's Resource: a client names the service it asks for (`resource`); a
server on an endpoint shared by several services (`serve_by_resource`)
stops before its READY with a `ServiceRequested` event, and goes on once
the I/O layer says which socket serves that resource (`serve_as`).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator

from . import command
from .bugs import NO_BUGS, ProtocolBugs
from .errors import HandshakeError, InvalidState, PeerRefused, ProtocolError
from .events import (
    AuthenticationRequested,
    Cancel,
    Event,
    GreetingReceived,
    HandshakeComplete,
    Join,
    Leave,
    Message,
    Messages,
    Ping,
    Pong,
    ServiceRequested,
    Subscribe,
    UnknownCommand,
)
from .frame import COMMAND, LONG, MORE, FrameDecoder, encode_message, encode_messages
from .greeting import GREETING_SIZE, SIGNATURE_SIZE, Greeting, encode_signature
from .legacy import V1FrameDecoder, encode_message_v1
from .mechanisms.base import FRAME_FLAGS, Mechanism, ZapSettings
from .mechanisms.null import NullMechanism
from .metadata import Metadata
from .socket_type import SENDS_IDENTITY, THREAD_SAFE, ZMTP20_TYPE_NUMBERS, ZMTP20_TYPES_BY_NUMBER, SocketType
from .zap import ZapResponse

MechanismFactory = Callable[..., Mechanism]

GREETING_CLAUSE = "23/ZMTP#version-negotiation"
LEGACY_CLAUSE = "37/ZMTP#backwards-interoperability"
TYPE_CLAUSE = "37/ZMTP#the-socket-type-property"


def _append_boxes(
    encrypt: Callable[[int, bytes], bytes], frames: list[bytes] | tuple[bytes, ...], append: Callable[[bytes], None]
) -> None:
    """Each frame of one message in its own MESSAGE box, MORE inside all but the last."""
    last = len(frames) - 1
    if not last:
        append(encrypt(0, frames[0]))
        return
    for i, f in enumerate(frames):
        append(encrypt(1 if i < last else 0, f))


def _box_encoder(encrypt: Callable[[int, bytes], bytes]) -> Callable[[list[bytes]], list[bytes]]:
    """`_append_boxes` for one message at a time, a one-frame message in a single step."""

    def boxes(frames: list[bytes]) -> list[bytes]:
        if len(frames) == 1:
            return [encrypt(0, frames[0])]
        out: list[bytes] = []
        _append_boxes(encrypt, frames, out.append)
        return out

    return boxes


class State(enum.Enum):
    GREETING = "greeting"
    HANDSHAKE = "handshake"
    LEGACY_IDENTITY = "legacy-identity"  # ZMTP 1.0/2.0: waiting for the peer's identity frame
    TRAFFIC = "traffic"
    CLOSED = "closed"


class SocketTypeMismatch(HandshakeError):
    wire_reason = "Invalid-socket-type"


class Connection:
    def __init__(
        self,
        socket_type: SocketType | str,
        *,
        as_server: bool,
        mechanism: MechanismFactory = NullMechanism,
        identity: bytes = b"",
        metadata: dict[str, bytes] | None = None,
        max_msg_size: int | None = None,
        allow_legacy: bool = True,
        zap_domain: str = "",
        zap: ZapSettings | None = None,
        bugs: ProtocolBugs = NO_BUGS,
        peer: str | None = None,
        resource: str = "",
        serve_by_resource: bool = False,
    ) -> None:
        self.socket_type = SocketType.parse(socket_type)
        self.resource = resource
        self.serve_by_resource = serve_by_resource and as_server
        self.as_server = as_server
        self.identity = identity
        self.bugs = bugs
        self.peer = peer
        self.allow_legacy = allow_legacy
        self.zap_domain = zap_domain
        self.max_msg_size = max_msg_size
        self.state = State.GREETING
        self.version: tuple[int, int] | None = None  # version in use on the wire
        self.peer_greeting: Greeting | None = None
        self.peer_metadata: Metadata | None = None
        self.peer_socket_type: str | None = None
        self.peer_identity = b""
        self.mechanism = mechanism(
            as_server=as_server,
            local_metadata=self._local_metadata(metadata or {}),
            check_peer=self._check_peer,
            bugs=bugs,
            zap=zap if as_server else None,
            hold_for_service=self.serve_by_resource,
        )
        self._out: list[bytes] = []
        self._greeting_in = bytearray()
        self._greeting_sent = 0  # octets of our greeting already queued
        self._decoder: FrameDecoder | V1FrameDecoder = FrameDecoder(max_msg_size)
        self._partial: list[bytes] = []
        self._batched = False  # the current receive_data call wants Messages events
        self._is_publisher = self.socket_type in (SocketType.PUB, SocketType.XPUB)
        self._is_dish = self.socket_type is SocketType.DISH
        # ProtocolBugs knobs that change message framing take the slow encoder.
        self._buggy_framing = bugs.long_flag_on_short_frames or bugs.reserved_flag_bits or bugs.more_flag_on_last_frame
        self._greeting = Greeting(
            minor=1 if bugs.greeting_minor is None else bugs.greeting_minor,
            mechanism=self.mechanism.name,
            as_server=bool(bugs.greeting_as_server)
            if bugs.greeting_as_server is not None
            else (as_server and self.mechanism.name != "NULL"),
            padding=encode_signature(len(identity))[1:9],
        )
        self._greeting_bytes = self._encode_greeting()
        self._queue_greeting(GREETING_SIZE if bugs.greeting_all_at_once else SIGNATURE_SIZE)

    # -- set-up ----------------------------------------------------------

    def _local_metadata(self, extra: dict[str, bytes]) -> list[tuple[str, bytes]]:
        props: list[tuple[str, bytes]] = []
        if not self.bugs.ready_omit_socket_type:
            st = self.bugs.ready_socket_type or self.socket_type.value
            props.append(("Socket-Type", st.encode("ascii")))
        if self.socket_type in SENDS_IDENTITY:
            props.append(("Identity", self.identity))
        if self.resource:
            props.append(("Resource", self.resource.encode("ascii")))
        for name, value in extra.items():
            if not name.lower().startswith("x-"):
                raise ValueError(f"application metadata name {name!r} must start with 'X-' (RFC 37)")
            props.append((name, value))
        if self.bugs.metadata_names_lowercase:
            props = [(name.lower(), value) for name, value in props]
        return props

    def _encode_greeting(self) -> bytes:
        raw = bytearray(self._greeting.encode())
        if self.bugs.greeting_as_server is not None:
            raw[32] = self.bugs.greeting_as_server
        if self.bugs.greeting_nonzero_filler:
            raw[33:64] = b"\xaa" * 31
        return bytes(raw)

    def _queue_greeting(self, upto: int) -> None:
        if upto > self._greeting_sent:
            self._out.append(self._greeting_bytes[self._greeting_sent : upto])
            self._greeting_sent = upto

    # -- output ----------------------------------------------------------

    def data_to_send(self) -> bytes:
        """Everything queued for the peer, as one bytes object."""
        out = b"".join(self._out)
        self._out.clear()
        return out

    def take_output(self) -> list[bytes]:
        """Everything queued for the peer, as chunks for `writelines` (no copying)."""
        out = self._out
        self._out = []
        return out

    def encode_message(self, frames: list[bytes] | tuple[bytes, ...]) -> list[bytes]:
        """The chunks of one message for the wire, without queuing them."""
        if self.state is not State.TRAFFIC:
            raise InvalidState(f"cannot send a message in state {self.state.value}", peer=self.peer)
        if not frames:
            raise ValueError("a message has at least one frame")
        if self.version == (1, 0):
            return encode_message_v1(frames)
        if self.mechanism.encrypts:
            boxes: list[bytes] = []
            _append_boxes(self.mechanism.encrypt, frames, boxes.append)  # type: ignore[attr-defined]
            return boxes
        if self._buggy_framing:
            return self._encode_message_buggy(frames)
        return encode_message(frames)

    def message_encoder(self) -> Callable[[list[bytes]], list[bytes]]:
        """What `encode_message` does for the rest of the traffic phase, without its per-call
        checks: the plain framer when nothing (legacy framing, a mechanism that encrypts,
        a ProtocolBugs knob) changes the bytes. Callers pass messages of at least one frame."""
        self._require_traffic()
        if self.version == (1, 0) or self._buggy_framing:
            return self.encode_message
        if self.mechanism.encrypts:
            return _box_encoder(self.mechanism.encrypt)  # type: ignore[attr-defined]
        return encode_message

    def encode_messages(self, messages: list[list[bytes]]) -> tuple[list[bytes], int]:
        """The chunks of many messages (the same bytes as encoding them one by one), and the
        total size of their bodies."""
        if self.mechanism.encrypts and self.state is State.TRAFFIC and self.version != (1, 0):
            # Under CURVE each frame is its own box: one call per frame, nothing else per message.
            encrypt = self.mechanism.encrypt  # type: ignore[attr-defined]
            boxes: list[bytes] = []
            append = boxes.append
            total = 0
            for frames in messages:
                if not frames:
                    raise ValueError("a message has at least one frame")
                _append_boxes(encrypt, frames, append)
                total += sum(map(len, frames))
            return boxes, total
        if self.state is not State.TRAFFIC or self.version == (1, 0) or self.mechanism.encrypts or self._buggy_framing:
            chunks: list[bytes] = []
            total = 0
            for frames in messages:
                chunks.extend(self.encode_message(frames))
                total += sum(map(len, frames))
            return chunks, total
        return encode_messages(messages)  # which refuses an empty message itself

    def _encode_message_buggy(self, frames: list[bytes] | tuple[bytes, ...]) -> list[bytes]:
        chunks: list[bytes] = []
        for i, body in enumerate(frames):
            flags = MORE if i < len(frames) - 1 or self.bugs.more_flag_on_last_frame else 0
            if self.bugs.reserved_flag_bits:
                flags |= 0x80
            if self.bugs.long_flag_on_short_frames or len(body) > 255:
                chunks.append(bytes((flags | LONG,)) + len(body).to_bytes(8, "big"))
            else:
                chunks.append(bytes((flags, len(body))))
            chunks.append(body)
        return chunks

    def send_message(self, frames: list[bytes] | tuple[bytes, ...]) -> None:
        self._out.extend(self.encode_message(frames))

    def _send_command(self, frame: bytes) -> None:
        if self.mechanism.encrypts and self.state is State.TRAFFIC:
            # Under CURVE every command travels inside a MESSAGE box, flagged 02 (libzmq >= 4.2).
            body = frame[9:] if frame[0] & LONG else frame[2:]
            frame = self.mechanism.encrypt(0x02, body)  # type: ignore[attr-defined]
        if self.bugs.more_flag_on_commands:
            frame = bytes((frame[0] | MORE,)) + frame[1:]
        self._out.append(frame)

    @property
    def speaks_commands(self) -> bool:
        """ZMTP 3.x peers take commands; 1.0 and 2.0 have no command frames."""
        return self.version is not None and self.version[0] >= 3

    def send_subscribe(self, topic: bytes) -> None:
        self._send_subscription(topic, subscribe=True)

    def send_cancel(self, topic: bytes) -> None:
        self._send_subscription(topic, subscribe=False)

    def _send_subscription(self, topic: bytes, *, subscribe: bool) -> None:
        # RFC 37 sends commands; a 3.0 (or older) peer only knows the 01/00 frame form.
        if self.version is not None and self.version >= (3, 1) and not self.bugs.legacy_subscriptions_always:
            self._require_traffic()
            self._send_command(command.subscribe(topic) if subscribe else command.cancel(topic))
        else:
            self.send_message([(b"\x01" if subscribe else b"\x00") + topic])

    def send_join(self, group: bytes) -> None:
        self._send_group_command(command.join(group))

    def send_leave(self, group: bytes) -> None:
        self._send_group_command(command.leave(group))

    def _send_group_command(self, frame: bytes) -> None:
        # RFC 37 gives JOIN and LEAVE no other form: a 3.0 peer gets the command too
        # (and a legacy peer never gets this far: thread-safe types do not downgrade).
        self._require_traffic()
        self._send_command(frame)

    def send_ping(self, ttl_deciseconds: int = 0, context: bytes = b"") -> None:
        self._require_traffic()
        if not self.speaks_commands:
            raise InvalidState(f"ZMTP {self.version} has no PING command", peer=self.peer)
        self._send_command(command.ping(ttl_deciseconds, context))

    def _require_traffic(self) -> None:
        if self.state is not State.TRAFFIC:
            raise InvalidState(f"not in the traffic phase (state {self.state.value})", peer=self.peer)

    def close(self) -> None:
        self.state = State.CLOSED

    # -- input -----------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview, *, batched: bool = False) -> list[Event]:
        """Feed bytes from the peer; returns the events they complete.

        With `batched`, messages that follow one another come as one `Messages`
        event rather than a `Message` each (the order of all events is kept).
        Raises ProtocolError / HandshakeError on a violation; the connection
        is then CLOSED, and its output may still hold an ERROR to flush.
        """
        if self.state is State.CLOSED:
            raise InvalidState("connection is closed", peer=self.peer)
        self._batched = batched
        events: list[Event] = []
        try:
            if self.state is State.GREETING:
                self._greeting_in += data
                if not self._receive_greeting(events):
                    return events
            elif self.state is State.TRAFFIC and self._plain_path():
                self._receive_plain_traffic(events, data)
                return events
            else:
                self._decoder.feed(data)
            self._receive_frames(events)
        except (ProtocolError, HandshakeError) as exc:
            self._closed_by(exc)
            raise
        return events

    def _closed_by(self, exc: ProtocolError | HandshakeError) -> None:
        """A violation ends the connection; the error names the peer once it is known."""
        self.state = State.CLOSED
        if isinstance(exc, ProtocolError) and exc.peer is None and self.peer:
            exc.peer = self.peer

    def receive_buffer(self) -> memoryview | None:
        """A buffer the next bytes from the peer may be read into directly, or None.

        Offered while a large frame body is under way, so an I/O layer can
        read it in place; after writing n bytes there, call `receive_into(n)`.
        """
        if self.state is State.CLOSED or not isinstance(self._decoder, FrameDecoder):
            return None
        return self._decoder.big_buffer()

    def receive_into(self, nbytes: int, *, batched: bool = False) -> list[Event]:
        """Like `receive_data`, for bytes written into `receive_buffer()`."""
        assert isinstance(self._decoder, FrameDecoder)
        self._batched = batched
        self._decoder.big_filled(nbytes)
        events: list[Event] = []
        try:
            self._receive_frames(events)
        except (ProtocolError, HandshakeError):
            self.state = State.CLOSED
            raise
        return events

    def _receive_greeting(self, events: list[Event]) -> bool:
        """Advance the staged greeting; True once framing starts."""
        g = self._greeting_in
        if not g:
            return False
        if g[0] != 0xFF:
            return self._downgrade_v1(events)
        if len(g) < SIGNATURE_SIZE:
            return False
        if not g[9] & 0x01:
            return self._downgrade_v1(events)
        self._queue_greeting(SIGNATURE_SIZE + 1)  # our major version
        if len(g) < SIGNATURE_SIZE + 1:
            return False
        revision = g[10]
        if revision < 3:
            return self._downgrade_v2(events)
        self._queue_greeting(GREETING_SIZE)
        if len(g) < GREETING_SIZE:
            return False
        greeting = Greeting.decode(bytes(g[:GREETING_SIZE]))
        rest = bytes(g[GREETING_SIZE:])
        self._greeting_in = bytearray()
        self.peer_greeting = greeting
        if greeting.mechanism != self.mechanism.name:
            raise HandshakeError(
                f"mechanism mismatch: we use {self.mechanism.name}, the peer greeted with {greeting.mechanism}",
                peer=self.peer,
            )
        # Both sides speak the lower of the two versions (only ours can be 3.0
        # when a ProtocolBugs knob makes us play a 3.0 peer).
        lower = greeting.version == (3, 0) or self._greeting.minor == 0
        self.version = (3, 0) if lower else (3, 1)
        events.append(GreetingReceived(greeting.version, greeting.mechanism, greeting.as_server))
        self.state = State.HANDSHAKE
        self.mechanism.start()
        self._flush_mechanism()
        self._decoder.feed(rest)
        return True

    def _refuse_legacy(self, version: str) -> None:
        why = None
        if self.socket_type in THREAD_SAFE:
            why = f"{self.socket_type.value} exists only in ZMTP 3.1 ({version} has no such socket type)"
        elif not self.allow_legacy:
            why = "legacy peers are not allowed on this socket"
        elif self.mechanism.name != "NULL":
            why = f"a {version} peer can only use NULL security, we require {self.mechanism.name}"
        elif self.zap_domain:
            why = f"a {version} peer cannot be authenticated and a ZAP domain is set"
        elif self.serve_by_resource:
            why = f"this endpoint is shared by services chosen by Resource, which a {version} peer cannot name"
        if why:
            raise ProtocolError(f"refused {version} peer: {why}", clause=LEGACY_CLAUSE, peer=self.peer)

    def _downgrade_v1(self, events: list[Event]) -> bool:
        self._refuse_legacy("ZMTP 1.0")
        # Our 10 octets already read, to the peer, as an identity header with
        # flags 0x7F: the identity body is all that is left to send.
        self.version = (1, 0)
        self._out.append(self.identity)
        self._greeting_sent = GREETING_SIZE
        self._decoder = V1FrameDecoder(self.max_msg_size, bytes(self._greeting_in))
        self._greeting_in = bytearray()
        events.append(GreetingReceived((1, 0), "NULL"))
        self.state = State.LEGACY_IDENTITY
        return True

    def _downgrade_v2(self, events: list[Event]) -> bool:
        # The version octet already shows a pre-3.0 peer: refuse it now (RFC 23: "immediately"),
        # not after waiting for a socket-type octet it may never send.
        self._refuse_legacy("ZMTP 2.0")
        g = self._greeting_in
        if len(g) < SIGNATURE_SIZE + 2:
            return False
        number = g[11]
        peer_type = ZMTP20_TYPES_BY_NUMBER.get(number)
        if peer_type is None:
            raise ProtocolError(f"ZMTP 2.0 greeting names unknown socket type {number}", clause="15/ZMTP#greeting")
        self.version = (2, 0)
        self.peer_socket_type = peer_type.value
        # After the major octet we already sent, RFC 15 continues with our type and identity.
        self._out.append(bytes((ZMTP20_TYPE_NUMBERS[self.socket_type],)))
        self._out.extend(encode_message([self.identity]))
        self._greeting_sent = GREETING_SIZE
        rest = bytes(g[12:])
        self._greeting_in = bytearray()
        events.append(GreetingReceived((2, 0), "NULL"))
        if not self.bugs.skip_socket_type_check and not self.socket_type.can_talk_to(peer_type.value):
            raise SocketTypeMismatch(
                f"socket type mismatch: {self.socket_type.value} cannot talk to {peer_type.value}", peer=self.peer
            )
        self.state = State.LEGACY_IDENTITY
        self._decoder.feed(rest)
        return True

    def _check_peer(self, metadata: Metadata) -> None:
        peer_type = metadata.get("Socket-Type")
        identity = metadata.get("Identity", b"")
        if len(identity) > 255:
            raise ProtocolError(
                f"Identity is {len(identity)} octets; at most 255 are allowed", clause="37/ZMTP#the-identity-property"
            )
        if peer_type is not None:
            name = peer_type.decode("ascii", "replace")
            if not self.bugs.skip_socket_type_check and not self.socket_type.can_talk_to(name):
                raise SocketTypeMismatch(
                    f"socket type mismatch: {self.socket_type.value} cannot talk to {name!r} [{TYPE_CLAUSE}]",
                    peer=self.peer,
                )
            self.peer_socket_type = name

    def _flush_mechanism(self) -> None:
        out = self.mechanism.outgoing
        if out:
            for frame in out:
                self._send_command(frame)
            out.clear()

    def _receive_frames(self, events: list[Event]) -> None:
        decoder = self._decoder
        next_frame = decoder.next_frame
        while True:
            if self.state is State.TRAFFIC:
                self._receive_traffic(events)
                return
            if self.mechanism.pending_zap is not None or self.mechanism.pending_service is not None:
                return  # nothing more is read until the ZAP answer, or the service, is in
            frame = next_frame()
            if frame is None:
                return
            flags, body = frame
            if self.state is State.LEGACY_IDENTITY:
                self._complete(events, identity=body, metadata=Metadata())
                continue
            # Handshake: only commands are allowed until the mechanism is done.
            if not flags & COMMAND:
                raise ProtocolError(
                    f"message frame of {len(body)} octets during the {self.mechanism.name} handshake",
                    clause="23/ZMTP#authentication-and-confidentiality",
                )
            if flags & MORE:
                raise ProtocolError("command frame has the MORE flag set", clause="23/ZMTP#framing")
            name, data = command.parse_command(body)
            try:
                self.mechanism.receive_command(name, data)
            finally:
                self._flush_mechanism()
            if self.mechanism.pending_zap is not None:
                events.append(AuthenticationRequested(self.mechanism.pending_zap))
                return
            if self._service_requested(events):
                return
            self._maybe_complete(events)

    def _service_requested(self, events: list[Event]) -> bool:
        """Report that the handshake waits for the service the peer asked for, if it does."""
        pending = self.mechanism.pending_service
        if pending is None:
            return False
        # Any value is a request to accept (RFC 37); one off the grammar simply matches no service.
        events.append(ServiceRequested(pending.get("Resource", b"").decode("ascii", "replace")))
        return True

    def serve_as(
        self,
        socket_type: SocketType | str,
        *,
        identity: bytes = b"",
        metadata: dict[str, bytes] | None = None,
        max_msg_size: int | None = None,
    ) -> list[Event]:
        """Speak for the socket that serves the resource of the last ServiceRequested: its type
        is checked against the peer's and goes, with `identity` and `metadata`, into our READY.
        Returns the events this unblocks; a refused peer raises, as from `receive_data`."""
        if self.mechanism.pending_service is None:
            raise InvalidState("no service is pending on this connection", peer=self.peer)
        self.socket_type = SocketType.parse(socket_type)
        self.identity = identity
        self.max_msg_size = max_msg_size
        if isinstance(self._decoder, FrameDecoder):
            self._decoder.max_size = max_msg_size
        self._is_publisher = self.socket_type in (SocketType.PUB, SocketType.XPUB)
        self._is_dish = self.socket_type is SocketType.DISH
        self.mechanism.local_metadata = self._local_metadata(metadata or {})
        events: list[Event] = []
        try:
            try:
                self.mechanism.service_found()
            finally:
                self._flush_mechanism()
            self._maybe_complete(events)
            self._receive_frames(events)
        except (ProtocolError, HandshakeError) as exc:
            self._closed_by(exc)
            raise
        return events

    def _maybe_complete(self, events: list[Event]) -> None:
        if self.mechanism.complete and self.state is State.HANDSHAKE:
            md = self.mechanism.peer_metadata or Metadata()
            self._complete(events, identity=md.get("Identity", b""), metadata=md)

    def authenticate(self, response: ZapResponse) -> list[Event]:
        """The ZAP answer to the last AuthenticationRequested; returns the events it unblocks.

        A refusal raises AuthenticationFailed, with an ERROR command (for 400
        and 500) left in the output to flush before closing.
        """
        request = self.mechanism.pending_zap
        if request is None:
            raise InvalidState("no authentication is pending on this connection", peer=self.peer)
        self.mechanism.pending_zap = None
        events: list[Event] = []
        try:
            try:
                self.mechanism.zap_result(response)
            finally:
                self._flush_mechanism()
            if not self._service_requested(events):
                self._maybe_complete(events)
                self._receive_frames(events)
        except (ProtocolError, HandshakeError):
            self.state = State.CLOSED
            raise
        return events

    def _complete(self, events: list[Event], *, identity: bytes, metadata: Metadata) -> None:
        self.peer_identity = identity
        self.peer_metadata = metadata
        self.state = State.TRAFFIC
        assert self.version is not None
        events.append(
            HandshakeComplete(
                self.version,
                self.peer_socket_type,
                identity,
                metadata,
                self.mechanism.user_id,
                dict(self.mechanism.zap_metadata),
            )
        )

    def _receive_traffic(self, events: list[Event]) -> None:
        partial = self._partial
        append = events.append
        if self._is_dish:
            self._receive_dish_traffic(events)
            return
        if self._plain_path():
            self._receive_plain_traffic(events)
            return
        legacy = not self.speaks_commands
        publisher = self._is_publisher
        encrypted = self.mechanism.encrypts
        batched = self._batched
        batch: list[list[bytes]] | None = None  # the Messages event being filled, if batched
        for flags, body in self._opened_frames() if encrypted else self._decoder.read_frames():
            if flags & COMMAND:
                if legacy:
                    raise ProtocolError(
                        f"ZMTP {self.version} frame sets flag bit 2, reserved before ZMTP 3.0",
                        clause="15/ZMTP#framing",
                    )
                # libzmq may slip a PING between the frames of a multipart
                # message, so a command does not end the message in progress.
                self._receive_command(flags, body, events)
                batch = None
            elif flags & MORE:
                partial.append(body)
            elif partial:
                partial.append(body)
                if batched:
                    if batch is None:
                        batch = []
                        append(Messages(batch))
                    batch.append(partial[:])
                else:
                    append(Message(partial[:]))
                partial.clear()
            elif publisher and body and body[0] <= 1:
                # 3.0-style subscription frame (RFC 23 / RFC 29).
                append(Subscribe(body[1:], True) if body[0] == 1 else Cancel(body[1:], True))
                batch = None
            elif batched:
                if batch is None:
                    batch = []
                    append(Messages(batch))
                batch.append([body])
            else:
                append(Message([body]))

    def _plain_path(self) -> bool:
        """Does traffic take `_receive_plain_traffic`: batched, in clear, data or commands?"""
        return (
            self._batched
            and not self._is_dish
            and not self._is_publisher
            and not self.mechanism.encrypts
            and type(self._decoder) is FrameDecoder
        )

    def _receive_plain_traffic(self, events: list[Event], data: bytes | bytearray | memoryview | None = None) -> None:
        """`_receive_traffic` for the common case, batched and in clear, where a frame is
        either data or a command: the decoder cuts runs of data frames straight into
        messages, and only what it stops at (a command, a frame it leaves to next_frame,
        or an error for next_frame to raise) is looked at here, one frame at a time.

        As in `_receive_traffic`, every frame is cut before any command is acted on, so
        a framing error raises before the commands in front of it are answered.
        """
        decoder = self._decoder
        assert isinstance(decoder, FrameDecoder)
        partial = self._partial
        items: list[list[list[bytes]] | tuple[int, bytes]] = []  # runs of messages, and commands
        run = decoder.read_messages(partial) if data is None else decoder.feed_messages(data, partial)
        while (frame := decoder.next_frame()) is not None:
            flags, body = frame
            if flags & COMMAND:
                if run:
                    items.append(run)
                    run = []
                items.append(frame)
            else:
                partial.append(body)
                if not flags & MORE:
                    run.append(partial[:])
                    partial.clear()
            run += decoder.read_messages(partial)
        if run:
            items.append(run)
        for item in items:
            if type(item) is list:
                last = events[-1] if events else None
                if type(last) is Messages:
                    last.messages += item
                else:
                    events.append(Messages(item))
                continue
            flags, body = item  # type: ignore[misc]
            if not self.speaks_commands:
                raise ProtocolError(
                    f"ZMTP {self.version} frame sets flag bit 2, reserved before ZMTP 3.0", clause="15/ZMTP#framing"
                )
            # libzmq may slip a PING between the frames of a multipart
            # message, so a command does not end the message in progress.
            self._receive_command(flags, body, events)

    def _receive_dish_traffic(self, events: list[Event]) -> None:
        """Traffic to a DISH: every message is RFC 37's radio-dish-message.

            radio-dish-message = group-part body-part
            group-part = %x01 short-size group

        Anything else is a protocol error, and the RADIO is disconnected (as
        libzmq's dish session does): a message without its group cannot be
        delivered, and RFC 48 allows no multipart data.
        """
        partial = self._partial
        encrypted = self.mechanism.encrypts
        for flags, body in self._opened_frames() if encrypted else self._decoder.read_frames():
            if flags & COMMAND:
                self._receive_command(flags, body, events)
            elif not partial:
                # Under CURVE the LONG flag of the plaintext frame is not known; only the size counts.
                if not flags & MORE or (flags & LONG and not encrypted):
                    raise ProtocolError(
                        f"message to a DISH starts with a frame of flags {flags:02x}, not a group part"
                        " (flags 01, short size)",
                        clause=command.GROUP_CLAUSE,
                    )
                problem = command.group_problem(body)
                if problem is not None:
                    raise ProtocolError(f"group part: {problem}", clause=command.GROUP_CLAUSE)
                partial.append(body)
            elif flags & MORE:
                raise ProtocolError(
                    "message to a DISH has more than a group part and a body part", clause=command.GROUP_CLAUSE
                )
            else:
                events.append(Message([partial[0], body]))
                partial.clear()

    def _opened_frames(self) -> Iterator[tuple[int, bytes]]:
        """The frames read so far, each opened only when asked for: every frame of a window
        is cut first, so a framing error raises before any box is opened, and a command is
        acted on before the box after it is opened."""
        decoder = self._decoder
        assert isinstance(decoder, FrameDecoder)  # encryption needs ZMTP 3
        decrypt = self._decrypt
        open_window = self.mechanism.open_window  # type: ignore[attr-defined]
        for data, spans in decoder.read_spans():
            yield from open_window(data, spans, decrypt)

    def _decrypt(self, flags: int, body: bytes) -> tuple[int, bytes]:
        """A MESSAGE command's frame, with its inner flags mapped to frame flags."""
        # libzmq sends MESSAGE in a plain data frame (flags 00), not as the command
        # RFC 25 describes; so do we (CurveMechanism.encrypt), and we accept both.
        # The MORE flag that counts is the one inside the box.
        if body[:8] == b"\x07MESSAGE":  # the common case, without the general command parser
            if flags & COMMAND and flags & MORE:
                raise ProtocolError("command frame has the MORE flag set", clause="23/ZMTP#framing")
            inner, frame = self.mechanism.open_message(body)  # type: ignore[attr-defined]
            return FRAME_FLAGS[inner], frame
        if not flags & COMMAND:
            raise ProtocolError(
                f"cleartext message frame of {len(body)} octets after the {self.mechanism.name} handshake",
                clause="23/ZMTP#wire-analysis",
            )
        if flags & MORE:
            raise ProtocolError("command frame has the MORE flag set", clause="23/ZMTP#framing")
        name, data = command.parse_command(body)
        inner, frame = self.mechanism.decrypt(name, data)  # type: ignore[attr-defined]
        return FRAME_FLAGS[inner], frame

    def _receive_command(self, flags: int, body: bytes, events: list[Event]) -> None:
        if flags & MORE:
            raise ProtocolError("command frame has the MORE flag set", clause="23/ZMTP#framing")
        name, data = command.parse_command(body)
        if name == command.PING:
            ttl, context = command.parse_ping(data)
            if not self.bugs.ignore_ping:
                echo = context[::-1] if self.bugs.pong_context_reversed else context
                self._send_command(command.pong(b"" if self.bugs.empty_pong else echo))
            events.append(Ping(ttl, context))
        elif name == command.PONG:
            events.append(Pong(bytes(data)))
        elif name == command.SUBSCRIBE:
            events.append(Subscribe(bytes(data)))
        elif name == command.CANCEL:
            events.append(Cancel(bytes(data)))
        elif name == command.JOIN:
            events.append(Join(command.parse_group(name, data)))
        elif name == command.LEAVE:
            events.append(Leave(command.parse_group(name, data)))
        elif name == command.ERROR:
            raise PeerRefused(command.parse_error(data), peer=self.peer)
        elif name in (command.READY, b"HELLO", b"WELCOME", b"INITIATE"):
            raise ProtocolError(
                f"{name.decode()} command after the handshake completed",
                clause="23/ZMTP#authentication-and-confidentiality",
            )
        else:
            events.append(UnknownCommand(name, bytes(data)))
