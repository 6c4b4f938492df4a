"""The connection engine: one asyncio protocol per transport connection.

It feeds the transport's bytes to a sans-I/O `Connection`, writes what the
connection has to say, runs the timers the core leaves to I/O (handshake
timeout, heartbeats, the peer's ping TTL), and hands messages and
subscriptions to the socket through its pipe. All it asks of the socket is
`EngineOwner`: public methods, so that a pattern overrides what it means to
override and nothing is chosen by looking at which methods a subclass has.

On a tcp endpoint shared by several services (RFC 37's Resource), an
accepted connection starts out owned by the listener and learns its socket
from the Resource in the peer's READY/INITIATE: the listener then hands it
to that socket with `serve`, before the handshake completes, so the socket
sees it exactly as one of its own.
"""

from __future__ import annotations

import asyncio
import logging
import socket as _socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .connection import Connection, State
from .errors import (
    AuthenticationFailed,
    HandshakeError,
    HandshakeTimeout,
    HeartbeatTimeout,
    PeerRefused,
    ProtocolError,
    ZMTPError,
)
from .events import (
    AuthenticationRequested,
    Cancel,
    HandshakeComplete,
    Join,
    Leave,
    Message,
    Messages,
    Ping,
    ServiceRequested,
    Subscribe,
)
from .monitor import EventKind, HandshakeFailure
from .zap import ERROR as ZAP_ERROR
from .zap import ZapRequest, ZapResponse

if TYPE_CHECKING:
    from .metrics import SocketMetrics
    from .options import SocketOptions
    from .pipe import Pipe
    from .socket_type import SocketType
    from .zap import ZapHandler

log = logging.getLogger(__name__)

HEADER_PEEK = 9  # a long frame header: flags and an 8-octet size
# Reads start at recv_buffer_size and double while the kernel fills them, up to this
# (or recv_buffer_size, if larger); they halve again once reads come back mostly empty.
# A backlog of small messages then costs one read (and one wakeup) per few hundred of
# them instead of one per eight, while an idle connection holds only its preset buffer.
READ_MAX = 256 * 1024
# Writes gather send_buffer_size bytes of small messages; while a sender fills that within
# one loop turn, the gather size doubles up to this (or send_buffer_size, if larger), and
# halves again once turns end with little gathered. At the 8 KiB preset a stream of 1 KiB
# messages cost a send(2) per eight of them, and the system calls, not the encoding, set
# the pace (0.6x libzmq; 32-128 KiB gave 0.9x). A lone message is never held for it.
WRITE_MAX = 64 * 1024
BIG_WRITE = 256 * 1024  # chunks at least this large are written without being joined to others


@runtime_checkable
class EngineOwner(Protocol):
    """The socket side of an engine: what one connection needs from the socket above it."""

    type: SocketType
    options: SocketOptions

    @property
    def metrics(self) -> SocketMetrics | None: ...

    @property
    def zap_handler(self) -> ZapHandler | None: ...

    def mechanism_args(self, bound: bool, peer_ip: str) -> dict[str, Any]:
        """Keyword arguments for `Connection` that select and configure the security mechanism."""
        ...

    def emit_event(
        self,
        kind: EventKind,
        endpoint: str,
        peer: str = "",
        reason: str = "",
        failure: HandshakeFailure | None = None,
        **details: Any,
    ) -> None:
        """A connection event for the socket's monitors and metrics."""
        ...

    def engine_ready(self, engine: Engine, ev: HandshakeComplete) -> None:
        """The handshake completed: set engine.pipe, or leave it None to refuse the peer."""
        ...

    def engine_failed(self, engine: Engine, exc: BaseException) -> None: ...

    def engine_closed(self, engine: Engine, was_ready: bool) -> None: ...

    def deliver(self, pipe: Pipe, messages: list[list[bytes]]) -> None:
        """Whole messages from one read, in order (always a batch: there is no per-message path)."""
        ...

    def subscription_changed(self, pipe: Pipe, topic: bytes, subscribe: bool) -> None: ...

    def group_changed(self, pipe: Pipe, group: bytes, join: bool) -> None: ...

    def writable(self) -> None:
        """The transport takes data again: senders waiting for room may retry."""
        ...


# Called with an engine whose peer asked for a resource ("" for none): the listener either
# hands the engine to the socket serving it (Engine.serve) now, or holds it (Engine.hold).
ServiceRouter = Callable[["Engine", str], None]


class Engine(asyncio.BufferedProtocol):
    def __init__(
        self,
        socket: EngineOwner,
        *,
        as_server: bool,
        endpoint: str,
        pipe: Pipe | None = None,
        resource: str = "",
        router: ServiceRouter | None = None,
    ) -> None:
        self.socket = socket
        self.resource = resource  # a client's: the Resource its READY/INITIATE asks for
        self._router = router
        self.options = socket.options
        self.as_server = as_server
        self.endpoint = endpoint
        self.pipe = pipe
        self.transport: asyncio.Transport | None = None
        self.conn: Connection | None = None
        self.peer = endpoint
        self.ready = False  # handshake complete
        self.paused = False  # transport asked us to stop writing
        self.reading_paused = False
        self.error: BaseException | None = None
        self.fatal = False  # do not reconnect (protocol error, ERROR received)
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._loop = asyncio.get_running_loop()
        self._read_min = self.options.recv_buffer_size
        self._read_max = max(READ_MAX, self._read_min)
        self._view = memoryview(bytearray(self._read_min))
        self._direct = False
        # After a large frame, the next read takes only a frame header, so that a large
        # body behind it is read straight into its own buffer instead of being copied
        # out of the read buffer (see get_buffer).
        self._peek = False
        self._wchunks: list[bytes] = []
        self._encode: Callable[[list[bytes]], list[bytes]] | None = None  # set when the handshake completes
        self._wsize = 0
        self._write_min = self.options.send_buffer_size
        self._write_max = max(WRITE_MAX, self._write_min)
        self._wlimit = self._write_min  # gathered bytes that are written without waiting for the turn's end
        self._streamed = False  # the gather size was reached in this loop turn
        self._flush_handle: asyncio.Handle | None = None
        self._timers: list[asyncio.TimerHandle] = []
        self._hs_timer: asyncio.TimerHandle | None = None
        self._last_recv = 0.0
        self._heartbeat = False
        self._failure_reported = False
        self._metrics = socket.metrics
        self._started = 0.0

    # -- asyncio protocol --------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport, though not necessarily an asyncio.Transport subclass: uvloop's
        # (and other loops') implement the interface without inheriting from it.
        self.transport = transport  # type: ignore[assignment]
        self._started = self._loop.time()
        if self._metrics is not None:
            self._metrics.connections.inc()
        opts = self.options
        peername = transport.get_extra_info("peername")
        if isinstance(peername, tuple):
            self.peer = f"{peername[0]}:{peername[1]}"
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (_socket.AF_INET, _socket.AF_INET6):
            self._set_tcp_options(sock)
        # Let the transport hold a few buffers of small messages before it pushes back.
        transport.set_write_buffer_limits(high=max(64 * 1024, opts.send_buffer_size * 8))
        try:
            peer_ip = peername[0] if isinstance(peername, tuple) else ""
            self.conn = Connection(
                self.socket.type,
                identity=opts.routing_id,
                metadata=opts.metadata,
                max_msg_size=opts.max_msg_size,
                allow_legacy=opts.allow_legacy,
                bugs=opts.bugs,
                peer=self.peer,
                resource=self.resource,
                serve_by_resource=self._router is not None,
                **self.socket.mechanism_args(self.as_server, peer_ip),
            )
        except ZMTPError as exc:
            self._fail(exc)
            return
        self.socket.emit_event(EventKind.ACCEPTED if self.as_server else EventKind.CONNECTED, self.endpoint, self.peer)
        transport.write(self.conn.data_to_send())
        if opts.handshake_timeout > 0:
            self._hs_timer = self._loop.call_later(opts.handshake_timeout, self._handshake_expired)
        log.info("connection %s %s (%s)", "accepted from" if self.as_server else "made to", self.peer, self.endpoint)

    def _set_tcp_options(self, sock: _socket.socket) -> None:
        opts = self.options
        try:
            sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1 if opts.tcp_nodelay else 0)
            if opts.tcp_keepalive:
                sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_KEEPALIVE, 1)
                if opts.tcp_keepalive_idle is not None and hasattr(_socket, "TCP_KEEPIDLE"):
                    sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_KEEPIDLE, max(1, int(opts.tcp_keepalive_idle)))
                if opts.tcp_keepalive_interval is not None and hasattr(_socket, "TCP_KEEPINTVL"):
                    sock.setsockopt(
                        _socket.IPPROTO_TCP, _socket.TCP_KEEPINTVL, max(1, int(opts.tcp_keepalive_interval))
                    )
        except OSError as exc:  # an option the platform lacks must not cost the connection
            log.warning("could not set TCP options on %s: %s", self.peer, exc)

    def get_buffer(self, sizehint: int) -> memoryview:
        # A large frame under way is read straight into its own buffer.
        direct = self.conn.receive_buffer() if self.conn is not None else None
        self._direct = direct is not None
        if direct is not None:
            return direct
        return self._view[:HEADER_PEEK] if self._peek else self._view

    def _adapt_read_size(self, nbytes: int) -> None:
        size = len(self._view)
        if nbytes == size:
            if size < self._read_max:
                # The data is copied out of the view before the next read: no need to keep it.
                self._view = memoryview(bytearray(min(size * 2, self._read_max)))
        elif nbytes < size >> 2 and size > self._read_min:
            self._view = memoryview(bytearray(max(size >> 1, self._read_min)))

    def buffer_updated(self, nbytes: int) -> None:
        conn = self.conn
        if conn is None or conn.state is State.CLOSED:
            return
        if self._heartbeat:
            self._last_recv = self._loop.time()
        try:
            if self._direct:
                events = conn.receive_into(nbytes, batched=True)
                self._peek = True
            else:
                peeked = self._peek
                events = conn.receive_data(self._view[:nbytes], batched=True)
                if peeked:  # keep peeking while large frames follow one another
                    self._peek = conn.receive_buffer() is not None
                else:
                    self._adapt_read_size(nbytes)
        except (ProtocolError, HandshakeError) as exc:
            self._fail(exc)
            return
        out = conn.take_output()
        if out and self.transport is not None:
            self._write_now(out)
        self._dispatch(events)

    def _dispatch(self, events: list) -> None:  # type: ignore[type-arg]
        """Hand the connection's events to the socket."""
        pipe = self.pipe
        batch: list[list[bytes]] = []  # consecutive messages go to the socket in one call
        for ev in events:
            if type(ev) is Messages:
                if batch:
                    batch += ev.messages
                else:
                    batch = ev.messages
                continue
            if type(ev) is Message:  # (the DISH's traffic, and the greeting's leftovers, are not batched)
                batch.append(ev.frames)
                continue
            if batch:
                if self._metrics is not None:
                    self._metrics.received(batch)
                self.socket.deliver(pipe, batch)  # type: ignore[arg-type]
                batch = []
            if type(ev) is HandshakeComplete:
                self._handshake_complete(ev)
                pipe = self.pipe
                if pipe is None:
                    return
            elif type(ev) is Subscribe:
                self.socket.subscription_changed(pipe, ev.topic, True)  # type: ignore[arg-type]
            elif type(ev) is Cancel:
                self.socket.subscription_changed(pipe, ev.topic, False)  # type: ignore[arg-type]
            elif type(ev) is Join:
                self.socket.group_changed(pipe, ev.group, True)  # type: ignore[arg-type]
            elif type(ev) is Leave:
                self.socket.group_changed(pipe, ev.group, False)  # type: ignore[arg-type]
            elif type(ev) is Ping:
                if ev.ttl and not self.options.bugs.ignore_ping_ttl:
                    self._arm_liveness(ev.ttl / 10.0, "the peer's PING TTL")
            elif type(ev) is AuthenticationRequested:
                self._loop.create_task(self._authenticate(ev.request))
            elif type(ev) is ServiceRequested:
                assert self._router is not None
                self._router(self, ev.resource)
                return  # serve() dispatches whatever follows
            if self.transport is None or self.transport.is_closing():
                return
        if batch and pipe is not None:
            if self._metrics is not None:
                self._metrics.received(batch)
            self.socket.deliver(pipe, batch)

    async def _authenticate(self, request: ZapRequest) -> None:
        """Ask the context's ZAP handler, then resume the handshake with its answer."""
        handler = self.socket.zap_handler
        try:
            if handler is None:
                raise RuntimeError("no ZAP handler is installed")
            response = await asyncio.wait_for(handler.authenticate(request), self.options.zap_timeout)
            if not isinstance(response, ZapResponse):
                raise TypeError(f"authenticate returned {type(response).__name__}, not a ZapResponse")
        except Exception as exc:  # a broken handler is an internal error (500), never a crash
            log.warning(
                "ZAP handler failed for %s (%s): %s",
                request.address or self.peer,
                request.mechanism,
                exc or type(exc).__name__,
            )
            response = ZapResponse.failure(request.request_id, "handler error", ZAP_ERROR)
        who = f" user={request.username!r}" if request.username is not None else ""
        level = logging.INFO if response.ok else logging.WARNING
        if not response.ok and self._metrics is not None:
            self._metrics.auth_failure(request.mechanism, response.status_code)
        log.log(
            level,
            "authentication %s: domain=%r address=%s mechanism=%s%s status=%d",
            "accepted" if response.ok else "refused",
            request.domain,
            request.address or self.peer,
            request.mechanism,
            who,
            response.status_code,
        )
        if self.conn is None or self.transport is None or self.transport.is_closing():
            return
        try:
            events = self.conn.authenticate(response)
        except (ProtocolError, HandshakeError) as exc:
            self._fail(exc)
            return
        out = self.conn.take_output()
        if out:
            self._write_now(out)
        self._dispatch(events)

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        if self._hs_timer is not None:
            self._hs_timer.cancel()
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self.conn is not None:
            self.conn.close()
        if exc is not None and self.error is None:
            self.error = exc
        was_ready = self.ready
        self.ready = False
        if self.transport is not None and self._metrics is not None:
            self._metrics.connections.dec()
        self.transport = None
        if was_ready:
            log.info("disconnected from %s (%s)%s", self.peer, self.endpoint, f": {self.error}" if self.error else "")
            self.socket.emit_event(EventKind.DISCONNECTED, self.endpoint, self.peer, str(self.error or "closed"))
        elif not self._failure_reported and self.conn is not None:
            self.socket.emit_event(
                EventKind.HANDSHAKE_FAILED,
                self.endpoint,
                self.peer,
                str(self.error or "the connection closed before the handshake completed"),
                HandshakeFailure.CLOSED,
                mechanism=self._mechanism_name(),
            )
        self.socket.engine_closed(self, was_ready)
        if not self.closed.done():
            self.closed.set_result(None)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.pipe is not None:
            self.pipe.flush_pending()
            self.socket.writable()

    # -- reading flow control ---------------------------------------------

    def pause_reading(self) -> None:
        if not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.reading_paused and self.transport is not None:
            self.reading_paused = False
            self.transport.resume_reading()

    # -- writing -------------------------------------------------------------

    def write_message(self, frames: list[bytes], now: bool = False) -> None:
        """Queue one message; `now` writes it (and anything gathered) at once, for a
        sender that waits for an answer next, where gathering would only add a loop turn."""
        assert self._encode is not None, "write_message before the handshake completed"
        chunks = self._encode(frames)
        size = len(frames[0]) if len(frames) == 1 else sum(map(len, frames))
        if now and not self._wchunks and size < BIG_WRITE and self.transport is not None:
            # Nothing gathered to go first: straight out, as flush would write it.
            if self._metrics is not None:
                self._metrics.sent(1, size)
            self.transport.write(chunks[0] if len(chunks) == 1 else b"".join(chunks))
            return
        self._wchunks.extend(chunks)
        self._wsize += size
        if self._metrics is not None:
            self._metrics.sent(1, size)
        if now:
            self.flush()
        elif self._wsize >= self._wlimit:
            self._gathered_enough()
        elif self._flush_handle is None:
            # Gather the small messages of this loop iteration into one write.
            self._flush_handle = self._loop.call_soon(self._turn_ended)

    def write_messages(self, messages: list[list[bytes]]) -> None:
        assert self.conn is not None
        chunks, sent = self.conn.encode_messages(messages)
        if self._wchunks:
            self._wchunks.extend(chunks)
        else:
            self._wchunks = chunks  # ours alone: no copy into the empty list
        if self._metrics is not None:
            self._metrics.sent(len(messages), sent)
        size = self._wsize = self._wsize + sent
        if size >= self._wlimit:
            self._gathered_enough()
        elif self._flush_handle is None:
            self._flush_handle = self._loop.call_soon(self._turn_ended)

    def _gathered_enough(self) -> None:
        # The sender filled the gather size without yielding: it is streaming, so gather more next time.
        if self._wlimit < self._write_max:
            self._wlimit = min(self._wlimit * 2, self._write_max)
        self._streamed = True
        self.flush()

    def _turn_ended(self) -> None:
        self._flush_handle = None
        # What a streaming turn leaves over says nothing; a turn that gathered little on its own does.
        if self._streamed:
            self._streamed = False
        elif self._wsize < self._wlimit >> 2 and self._wlimit > self._write_min:
            self._wlimit = max(self._wlimit >> 1, self._write_min)
        self.flush()

    def flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self._wchunks and self.transport is not None:
            chunks = self._wchunks
            self._wchunks = []
            size, self._wsize = self._wsize, 0
            if len(chunks) == 1:
                # One chunk (a CURVE box is header and all in one): writelines would join it into a copy.
                self.transport.write(chunks[0])
                return
            if size < BIG_WRITE:
                self.transport.writelines(chunks)
                return
            # asyncio's writelines joins everything into one new bytes (3.11): for large
            # frame bodies that is a copy of each. Write them as they are, the small
            # chunks between them joined.
            small: list[bytes] = []
            for chunk in chunks:
                if len(chunk) < BIG_WRITE:
                    small.append(chunk)
                    continue
                if small:
                    self.transport.write(b"".join(small))
                    small = []
                self.transport.write(chunk)
            if small:
                self.transport.write(b"".join(small))

    def _write_now(self, chunks: list[bytes]) -> None:
        self.flush()
        assert self.transport is not None
        self.transport.writelines(chunks)

    def send_subscription(self, topic: bytes, subscribe: bool) -> None:
        assert self.conn is not None
        self.flush()
        if subscribe:
            self.conn.send_subscribe(topic)
        else:
            self.conn.send_cancel(topic)
        self._write_now(self.conn.take_output())

    def send_group(self, group: bytes, join: bool) -> None:
        """A JOIN or LEAVE (DISH), after whatever messages are already queued."""
        assert self.conn is not None
        self.flush()
        if join:
            self.conn.send_join(group)
        else:
            self.conn.send_leave(group)
        self._write_now(self.conn.take_output())

    @property
    def pending_bytes(self) -> int:
        t = self.transport
        return self._wsize + (t.get_write_buffer_size() if t is not None else 0)

    # -- lifecycle ---------------------------------------------------------

    def hold(self, resource: str) -> None:
        """No socket serves `resource` yet: wait for one, however long (RFC 37: a resource
        "may become available at an arbitrary time"). The peer has done its part of the
        handshake, so the handshake timeout no longer applies."""
        if self._hs_timer is not None:
            self._hs_timer.cancel()
            self._hs_timer = None
        log.info("%s asks for resource %r, not served here yet: holding the connection", self.peer, resource)

    def serve(self, owner: EngineOwner, endpoint: str) -> None:
        """Become `owner`'s connection (on its `endpoint`) and finish the handshake as its own."""
        conn = self.conn
        if conn is None or self.transport is None or self.transport.is_closing():
            return
        if self._metrics is not None:
            self._metrics.connections.dec()
        self.socket = owner
        self.options = owner.options
        self.endpoint = endpoint
        self._metrics = owner.metrics
        if self._metrics is not None:
            self._metrics.connections.inc()
        owner.emit_event(EventKind.ACCEPTED, endpoint, self.peer)
        opts = owner.options
        try:
            events = conn.serve_as(
                owner.type, identity=opts.routing_id, metadata=opts.metadata, max_msg_size=opts.max_msg_size
            )
        except (ProtocolError, HandshakeError) as exc:
            self._fail(exc)
            return
        out = conn.take_output()
        if out:
            self._write_now(out)
        self._dispatch(events)

    def _handshake_complete(self, ev: HandshakeComplete) -> None:
        if self._hs_timer is not None:
            self._hs_timer.cancel()
            self._hs_timer = None
        assert self.conn is not None
        self._encode = self.conn.message_encoder()
        self.ready = True
        self.socket.emit_event(
            EventKind.HANDSHAKE_SUCCEEDED,
            self.endpoint,
            self.peer,
            mechanism=self._mechanism_name(),
            version=f"{ev.version[0]}.{ev.version[1]}",
            peer_socket_type=ev.peer_socket_type or "",
            duration=self._loop.time() - self._started,
        )
        log.info(
            "handshake with %s complete: ZMTP %d.%d, peer %s",
            self.peer,
            ev.version[0],
            ev.version[1],
            ev.peer_socket_type or "?",
        )
        self.socket.engine_ready(self, ev)
        if self.pipe is None:
            self.close()
            return
        opts = self.options
        if opts.heartbeat_ivl > 0 and self.conn is not None and self.conn.speaks_commands:
            self._heartbeat = True
            self._last_recv = self._loop.time()
            self._timers.append(self._loop.call_later(opts.heartbeat_ivl, self._send_ping))

    def _send_ping(self) -> None:
        if self.transport is None or self.conn is None:
            return
        opts = self.options
        self.flush()
        self.conn.send_ping(min(0xFFFF, round(opts.heartbeat_ttl * 10)))
        self._write_now(self.conn.take_output())
        timeout = opts.effective_heartbeat_timeout
        if timeout > 0:
            self._arm_liveness(timeout, "heartbeat timeout")
        self._timers = [t for t in self._timers if not t.cancelled()]
        self._timers.append(self._loop.call_later(opts.heartbeat_ivl, self._send_ping))

    def _arm_liveness(self, timeout: float, why: str) -> None:
        self._heartbeat = True  # from now on every read stamps _last_recv
        since = self._loop.time()

        def check() -> None:
            if self.transport is not None and self._last_recv <= since:
                self._fail(HeartbeatTimeout(f"no traffic for {timeout:g}s ({why})", peer=self.peer), fatal=False)

        self._timers.append(self._loop.call_later(timeout, check))

    def _handshake_expired(self) -> None:
        self._hs_timer = None
        if not self.ready and self.transport is not None:
            state = self.conn.state.value if self.conn is not None else "greeting"
            self._fail(
                HandshakeTimeout(
                    f"handshake not complete after {self.options.handshake_timeout:g}s (stuck in {state})",
                    peer=self.peer,
                ),
                fatal=False,
            )

    def _mechanism_name(self) -> str:
        if self.conn is not None:
            return self.conn.mechanism.name
        return self.options.mechanism

    def _fail(self, exc: BaseException, *, fatal: bool = True) -> None:
        self.error = exc
        self.fatal = fatal
        if isinstance(exc, PeerRefused):
            log.warning("%s refused the handshake: %s", self.peer, exc.reason)
        else:
            log.warning("closing connection with %s (%s): %s", self.peer, self.endpoint, exc)
        if not self.ready and not self._failure_reported:
            self._failure_reported = True
            if isinstance(exc, (PeerRefused, AuthenticationFailed)):
                failure = HandshakeFailure.AUTH
            elif isinstance(exc, HandshakeTimeout):
                failure = HandshakeFailure.TIMEOUT
            else:
                failure = HandshakeFailure.PROTOCOL
            self.socket.emit_event(
                EventKind.HANDSHAKE_FAILED,
                self.endpoint,
                self.peer,
                str(exc),
                failure,
                mechanism=self._mechanism_name(),
            )
        self.socket.engine_failed(self, exc)
        if self.transport is not None:
            if self.conn is not None:
                out = self.conn.take_output()
                if out:
                    self.transport.writelines(out)  # an ERROR command goes out before we close
            self.transport.close()

    def close(self) -> None:
        if self.transport is not None:
            self.flush()
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
