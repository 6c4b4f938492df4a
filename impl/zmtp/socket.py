"""The asyncio socket: endpoints, pipes, and the public send/recv API.

Patterns (REQ, ROUTER, PUB, ...) subclass `Socket` and decide where a
message goes and where the next one comes from; this module gives them the
two classic strategies, load balancing and fair queueing, and the rest of the
machinery: bind, connect with reconnect and backoff, linger on close.

A Socket is the `EngineOwner` its engines talk to (engine.py), through
public methods only. Patterns override public hooks: `deliver` (always a
batch), `pipe_attached`/`pipe_detached`, `pipe_usable`/`pipe_unusable`,
`filter_in`, `check_recv`, `take`/`take_many` and `send_now`/`send_waiting`.
No fast path is chosen by looking at which hooks a subclass overrides; hooks
that only make sense together are checked to be overridden together when the
pattern class is defined.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from . import keylog
from .endpoint import Endpoint
from .engine import Engine
from .errors import NotSupported, SecurityMismatch, SocketClosed
from .events import HandshakeComplete
from .keys import parse_key
from .listener import ListenerRegistry, bind_service
from .mechanisms.base import ZapSettings
from .mechanisms.curve import CookieKeys, CurveMechanism
from .mechanisms.plain import PlainMechanism
from .metadata import Metadata
from .monitor import EventKind, HandshakeFailure, Monitor, SocketEvent
from .options import SocketOptions
from .pipe import Pipe
from .socket_type import SocketType
from .subscriptions import Subscriptions

if TYPE_CHECKING:
    from .context import Context
    from .metrics import SocketMetrics
    from .zap import ZapHandler


@dataclass(frozen=True)
class ReceivedMessage:
    frames: list[bytes]
    properties: Metadata
    group: bytes | None = None  # DISH: the group the RADIO sent it to
    routing_id: int | None = None  # SERVER: the peer it came from (for send(..., routing_id=))


log = logging.getLogger(__name__)

# The CURVE servers of this process share cookie keys, rotated by the monotonic clock.
COOKIE_KEYS = CookieKeys(time.monotonic)


class Wakeup:
    """asyncio.Event's set, clear and wait, for a socket's readers or writers, with the loop
    looked up once: Event.wait asks for the running loop on every call, which on Python
    3.11 is a getpid() system call and a Python-level check each time a reader waits."""

    __slots__ = ("_loop", "_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        if not self._set:
            self._set = True
            for fut in self._waiters:
                if not fut.done():
                    fut.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> None:
        if self._set:
            return
        loop = self._loop
        if loop is None or loop.is_closed():
            loop = self._loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._waiters.append(fut)
        try:
            await fut
        finally:
            self._waiters.remove(fut)


def _defined_below(cls: type, one: str, other: str) -> bool:
    """Is `one` defined in a class of cls's MRO that comes before the one defining `other`?"""
    for klass in cls.__mro__:
        if other in vars(klass):
            return False
        if one in vars(klass):
            return True
    return False


class Socket:
    type: SocketType
    can_send = True
    can_recv = True

    def __init__(self, context: Context | None = None, options: SocketOptions | None = None) -> None:
        self.context = context
        self.options = options or SocketOptions()
        self._pipes: list[Pipe] = []  # every pipe, live or waiting for its connection
        self._active: deque[Pipe] = deque()  # pipes holding unread messages, in fair-queue order
        self._lb_index = 0
        self._fair_queue = not self.options.bugs.no_fair_queue  # read once: take() is the hot path
        self._readable = Wakeup()
        self._writable = Wakeup()
        self._unbinders: dict[str, Callable[[], None]] = {}  # by bound endpoint
        self._listeners: ListenerRegistry = {}  # without a context, this socket's own
        self._connecters: dict[str, asyncio.Task[None]] = {}
        self._engines: set[Engine] = set()
        self._recv_rest: deque[bytes] = deque()
        self._send_held: list[bytes] = []  # frames sent with more=True, held until the final frame
        self._closed = False
        self._last_pipe: Pipe | None = None  # where the last message came from
        self.last_endpoint = ""
        self._monitors: list[Monitor] = []
        metrics = context.metrics if context is not None else None
        self._metrics = metrics.for_socket(self.type.value) if metrics is not None else None

    def __repr__(self) -> str:
        return f"<zmtp.Socket {self.type.value} pipes={len(self._pipes)}{' closed' if self._closed else ''}>"

    @property
    def closed(self) -> bool:
        return self._closed

    # -- monitoring ----------------------------------------------------------

    def monitor(self) -> Monitor:
        """Start watching this socket's connection events (see `zmtp.monitor`)."""
        mon = Monitor(self._monitors.remove)
        if self._closed:
            mon._end()
        else:
            self._monitors.append(mon)
        return mon

    @property
    def metrics(self) -> SocketMetrics | None:
        return self._metrics

    @property
    def zap_handler(self) -> ZapHandler | None:
        return self.context.zap_handler if self.context is not None else None

    def emit_event(
        self,
        kind: EventKind,
        endpoint: str,
        peer: str = "",
        reason: str = "",
        failure: HandshakeFailure | None = None,
        **details: Any,
    ) -> None:
        m = self._metrics
        if m is not None:
            if kind is EventKind.HANDSHAKE_SUCCEEDED:
                m.handshake(details.get("mechanism", ""), "succeeded", details.get("duration"))
            elif kind is EventKind.HANDSHAKE_FAILED:
                m.handshake(details.get("mechanism", ""), failure.value if failure else "protocol")
        if self._monitors:
            ev = SocketEvent(kind, endpoint, peer, reason, failure, details)
            for mon in self._monitors:
                mon._push(ev)

    def _dropped(self, reason: str) -> None:
        if self._metrics is not None:
            self._metrics.dropped(reason)

    def mechanism_args(self, bound: bool, peer_ip: str) -> dict[str, Any]:
        """Connection arguments for the mechanism these options select.

        NULL makes the binding side the server (RFC 37); PLAIN takes its role
        from plain_server. A server gets ZAP settings when the context has a handler.
        """
        opts = self.options
        handler = self.context.zap_handler if self.context is not None else None
        mech = opts.mechanism
        as_server = {"NULL": bound, "PLAIN": opts.plain_server, "CURVE": opts.curve_server}[mech]
        zap = ZapSettings(opts.zap_domain, peer_ip, opts.routing_id) if handler is not None and as_server else None
        args: dict[str, Any] = {"as_server": as_server, "zap": zap, "zap_domain": opts.zap_domain}
        if mech == "PLAIN":

            def enc(v: str | bytes | None) -> bytes:
                return v.encode() if isinstance(v, str) else (v or b"")

            args["mechanism"] = partial(
                PlainMechanism, username=enc(opts.plain_username), password=enc(opts.plain_password)
            )
        if mech == "CURVE":
            args["mechanism"] = partial(
                CurveMechanism,
                secret_key=parse_key(opts.curve_secretkey or b"", "curve_secretkey"),
                server_key=None if opts.curve_serverkey is None else parse_key(opts.curve_serverkey, "curve_serverkey"),
                cookie_keys=COOKIE_KEYS,
                keylog=keylog.from_environment(),
            )
        return args

    # -- endpoints ---------------------------------------------------------

    async def bind(self, endpoint: str) -> str:
        """Listen on `endpoint`; returns the endpoint actually bound (port 0 resolved).

        `tcp://host:port/resource` serves RFC 37's Resource: sockets of one
        context may bind one host:port with different resources (see listener.py).
        """
        self._check_open()
        ep = Endpoint.parse(endpoint)
        try:
            if ep.transport == "tcp":
                registry = self.context.listeners if self.context is not None else self._listeners
                bound, unbind = await bind_service(registry, self, ep)
            else:
                bound = str(ep)
                path = ep.path
                if path.startswith("@"):
                    path = "\0" + path[1:]  # Linux abstract namespace, as libzmq spells it
                elif os.path.exists(path):
                    os.unlink(path)  # libzmq replaces a stale socket file too
                loop = asyncio.get_running_loop()
                server = await loop.create_unix_server(partial(Engine, self, as_server=True, endpoint=bound), path)
                unbind = server.close
        except (OSError, SecurityMismatch) as exc:
            self.emit_event(EventKind.BIND_FAILED, str(ep), reason=str(exc))
            raise
        self._unbinders[bound] = unbind
        self.last_endpoint = bound
        log.info("%s bound to %s", self.type.value, bound)
        self.emit_event(EventKind.LISTENING, bound)
        return bound

    async def unbind(self, endpoint: str) -> None:
        unbind = self._unbinders.pop(endpoint, None)
        if unbind is None:
            raise ValueError(f"{endpoint!r} is not bound on this socket (bound: {', '.join(self._unbinders) or 'none'})")
        unbind()

    async def connect(self, endpoint: str) -> None:
        """Connect to `endpoint` in the background; reconnects when the connection drops.

        Like libzmq, this returns at once: messages sent before the peer is up
        wait in the pipe (unless `immediate` is set).
        """
        self._check_open()
        ep = Endpoint.parse(endpoint)
        key = str(ep)
        if key in self._connecters:
            raise ValueError(f"already connected to {key}")
        pipe = Pipe(self, key, persistent=True)
        self._pipes.append(pipe)
        if not self.options.immediate:
            self.pipe_usable(pipe)
        self._connecters[key] = asyncio.get_running_loop().create_task(self._connect_loop(ep, pipe))

    async def disconnect(self, endpoint: str) -> None:
        task = self._connecters.pop(endpoint, None)
        if task is None:
            raise ValueError(f"not connected to {endpoint!r}")
        task.cancel()
        for pipe in [p for p in self._pipes if p.persistent and p.endpoint == endpoint]:
            if pipe.engine is not None:
                pipe.engine.close()
            self._remove_pipe(pipe)

    async def _connect_loop(self, ep: Endpoint, pipe: Pipe) -> None:
        loop = asyncio.get_running_loop()
        opts = self.options
        delay = opts.reconnect_ivl
        while not self._closed:
            try:
                if ep.transport == "tcp":
                    coro = loop.create_connection(
                        lambda: Engine(self, as_server=False, endpoint=str(ep), pipe=pipe, resource=ep.resource),
                        ep.host,
                        ep.port,
                    )
                else:
                    path = "\0" + ep.path[1:] if ep.path.startswith("@") else ep.path
                    coro = loop.create_unix_connection(
                        lambda: Engine(self, as_server=False, endpoint=str(ep), pipe=pipe), path
                    )
                _, engine = await asyncio.wait_for(coro, opts.connect_timeout or None)
            except (TimeoutError, OSError) as exc:
                log.debug("connect to %s failed: %s", ep, exc or "timed out")
            else:
                await engine.closed
                if engine.fatal:
                    log.warning("not reconnecting to %s after %s", ep, engine.error)
                    return
                if engine.error is None or isinstance(engine.error, ConnectionError):
                    delay = opts.reconnect_ivl  # a connection that worked resets the backoff
            if opts.reconnect_ivl <= 0 or self._closed:
                return
            self.emit_event(EventKind.CONNECT_RETRIED, str(ep), interval=delay)
            await asyncio.sleep(delay)
            if opts.reconnect_ivl_max > opts.reconnect_ivl:
                delay = min(delay * 2, opts.reconnect_ivl_max)

    # -- engine callbacks (EngineOwner) ---------------------------------------

    def engine_ready(self, engine: Engine, ev: HandshakeComplete) -> None:
        """A handshake completed: give the engine a pipe, or refuse it (engine.pipe = None)."""
        pipe = engine.pipe
        if pipe is None:
            pipe = Pipe(self, engine.endpoint, persistent=False)
        pipe.engine = engine
        pipe.routing_id = ev.peer_identity
        pipe.metadata = dict(ev.metadata.items())
        # What libzmq's zmq_msg_gets offers with each message: the peer's
        # READY properties, its address, and what ZAP said about it.
        props = dict(pipe.metadata)
        props["Peer-Address"] = engine.peer.rsplit(":", 1)[0].encode() if ":" in engine.peer else engine.peer.encode()
        if ev.user_id:
            props["User-Id"] = ev.user_id.encode()
        props.update(ev.zap_metadata)
        pipe.properties = Metadata(props)
        pipe.peer_address = engine.peer
        pipe.subscriptions = Subscriptions()
        if ev.version == (1, 0):
            # A ZMTP 1.0 subscriber filters on its own side and sends no subscriptions (RFC 13): a
            # publisher treats it as subscribed to everything (libzmq lost this once, #2254).
            pipe.subscriptions.add(b"")
        if not self.pipe_attached(pipe):
            pipe.engine = None
            engine.pipe = None
            if not pipe.persistent:
                return
            engine.fatal = True
            return
        engine.pipe = pipe
        self._engines.add(engine)
        pipe.live = True
        if pipe not in self._pipes:
            self._pipes.append(pipe)
        self.pipe_usable(pipe)
        pipe.flush_pending()
        self.writable()

    def engine_failed(self, engine: Engine, exc: BaseException) -> None:
        """Hook for patterns and metrics; the engine closes itself."""

    def engine_closed(self, engine: Engine, was_ready: bool) -> None:
        self._engines.discard(engine)
        pipe = engine.pipe
        if pipe is None or pipe.engine is not engine:
            return
        pipe.engine = None
        pipe.live = False
        # "If this peer disconnects, the socket SHALL destroy its double queue and SHALL discard
        # any messages it contains" (RFC 28-31, 47-49): the incoming half too, so what the peer
        # sent and the application has not read is never delivered (libzmq still delivers it).
        # A pipe made by connect stays for the next connection, empty.
        pipe.inbound.clear()
        self.pipe_detached(pipe)
        if not pipe.persistent:
            self._remove_pipe(pipe)
        elif self.options.immediate:
            self.pipe_unusable(pipe)

    def _remove_pipe(self, pipe: Pipe) -> None:
        if pipe in self._pipes:
            self._pipes.remove(pipe)
        self.pipe_unusable(pipe)
        # Its unread messages were discarded (engine_closed): the fair-queue ring skips it.

    def deliver(self, pipe: Pipe, messages: list[list[bytes]]) -> None:
        """Whole messages that arrived on `pipe`, in order. Default: fair-queue them for recv,
        all at once. Patterns that judge each message override this and loop themselves."""
        pipe.push_inbound_many(messages)
        self._now_readable(pipe)

    def _now_readable(self, pipe: Pipe) -> None:
        """`pipe` holds unread messages: put it in the fair-queue ring (once) and wake readers."""
        if not pipe.in_active:
            pipe.in_active = True
            self._active.append(pipe)
        self._readable.set()

    def deliver_discarding(self, pipe: Pipe, messages: list[list[bytes]]) -> None:
        """`deliver` for the types whose RFC makes a full queue discard what arrives (SUB and
        XSUB, RFC 29) instead of pushing back: the connection is read on and the surplus
        dropped, so the publisher's queue for this peer never fills because of it."""
        inbound = pipe.inbound
        if pipe.rcvhwm:
            room = max(pipe.rcvhwm - len(inbound), 0)
            if room < len(messages):
                for _ in range(len(messages) - room):
                    self._dropped("hwm")
                messages = messages[:room]
        if not messages:
            return
        inbound.extend(messages)
        self._now_readable(pipe)

    def subscription_changed(self, pipe: Pipe, topic: bytes, subscribe: bool) -> None:
        """A SUBSCRIBE or CANCEL (either form) arrived; only publishers care."""

    def group_changed(self, pipe: Pipe, group: bytes, join: bool) -> None:
        """A JOIN or LEAVE arrived; only RADIO cares."""

    def writable(self) -> None:
        self._writable.set()

    # -- pattern hooks (PatternHooks) ----------------------------------------

    def pipe_attached(self, pipe: Pipe) -> bool:
        """A peer completed its handshake on `pipe`. Return False to refuse it."""
        return True

    def pipe_detached(self, pipe: Pipe) -> None:
        """The peer on `pipe` disconnected."""

    def pipe_usable(self, pipe: Pipe) -> None:
        """`pipe` may now be chosen for sending (load balancing)."""

    def pipe_unusable(self, pipe: Pipe) -> None:
        """`pipe` must no longer be chosen for sending."""

    # What the application reads of a message from the fair queue (None drops it), for
    # patterns that look at each message: they define filter_in(pipe, frames). None (the
    # default) reads messages as queued, which lets take_many move a backlog in bulk.
    filter_in: Callable[[Pipe, list[bytes]], list[bytes] | None] | None = None

    def check_recv(self) -> None:
        """Raise InvalidState if the pattern's state allows no receive now."""

    def take(self) -> list[bytes] | None:
        """The next message the application may read now, or None (never waits).
        Default: fair queueing (RFC 28), through `filter_in` if the pattern has one."""
        active = self._active
        filter_in = self.filter_in
        while active:
            pipe = active.popleft()
            inbound = pipe.inbound
            if not inbound:
                pipe.in_active = False
                continue
            frames = inbound.popleft()
            if inbound:
                if self._fair_queue:
                    active.append(pipe)
                else:
                    active.appendleft(pipe)
            else:
                pipe.in_active = False
            engine = pipe.engine
            if engine is not None and engine.reading_paused and len(inbound) < pipe.resume_at:
                engine.resume_reading()
            if filter_in is not None:
                frames = filter_in(pipe, frames)
                if frames is None:
                    continue
            self._last_pipe = pipe
            return frames
        return None

    def take_many(self, limit: int) -> list[list[bytes]]:
        """Up to `limit` messages readable now, as `take` would give them one by one.

        One peer with a backlog (the throughput case) is taken in bulk; with
        several, they are taken in turn, one message each.
        """
        out: list[list[bytes]] = []
        active = self._active
        while len(out) < limit and active:
            if len(active) == 1:
                pipe = active[0]
                taken = pipe.pop_inbound_many(min(limit - len(out), len(pipe.inbound)))
                if not pipe.inbound:
                    active.popleft()
                    pipe.in_active = False
                filter_in = self.filter_in
                if filter_in is None:
                    out += taken
                    if taken:
                        self._last_pipe = pipe
                    continue
                for frames in taken:
                    kept = filter_in(pipe, frames)
                    if kept is not None:
                        out.append(kept)
                        self._last_pipe = pipe
                continue
            frames = self.take()
            if frames is None:
                break
            out.append(frames)
        return out

    def send_now(self, frames: list[bytes]) -> bool:
        """Send without waiting if the pattern can; False means "use send_waiting"."""
        raise NotSupported(f"{self.type.value} sockets cannot send")

    async def send_waiting(self, frames: list[bytes]) -> None:
        """Send, waiting for room where the pattern says to wait."""
        raise NotSupported(f"{self.type.value} sockets cannot send")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Hooks that come in pairs are overridden together: a pattern with a queue of its
        # own must say how to take many messages from it, and one that can wait to send
        # must say how to send without waiting; inheriting the other half would bypass
        # its queue or silently send every message the slow way.
        for one, other in (("take", "take_many"), ("send_waiting", "send_now")):
            if _defined_below(cls, one, other):
                raise TypeError(f"{cls.__name__} overrides {one} but not {other}: override both")

    # -- strategies ----------------------------------------------------------

    async def _wait(self, event: Wakeup) -> None:
        self._check_open()
        event.clear()
        await event.wait()
        self._check_open()

    def _lb_try(self, frames: list[bytes], pipes: list[Pipe], now: bool = False) -> Pipe | None:
        """Load balancing (RFC 28): the next pipe in turn that can take the message."""
        n = len(pipes)
        start = 0 if self.options.bugs.no_round_robin else self._lb_index
        for i in range(n):
            idx = (start + i) % n
            pipe = pipes[idx]
            if pipe.send(frames, now):
                self._lb_index = idx + 1
                return pipe
        return None

    async def _lb_send(self, frames: list[bytes], pipes: list[Pipe], now: bool = False) -> Pipe:
        while True:
            pipe = self._lb_try(frames, pipes, now)
            if pipe is not None:
                return pipe
            await self._wait(self._writable)

    # -- public API ----------------------------------------------------------

    def _refuse_held(self) -> None:
        """send_many sends whole messages; frames held by send(more=True) belong to none of them."""
        if self._send_held:
            raise ValueError(
                f"{len(self._send_held)} frame(s) sent with more=True wait for their final frame: finish that"
                " message with send or send_multipart before send_many"
            )

    def _whole_batch(self, messages: Iterable[Iterable[bytes]]) -> list[list[bytes]]:
        """A send_many batch as lists of frames, checked before any of it goes out."""
        self._check_open()
        self._refuse_held()
        batch = [m if isinstance(m, list) else list(m) for m in messages]
        for msg in batch:
            if not msg:
                raise ValueError("a message has at least one frame")
        return batch

    def _check_open(self) -> None:
        if self._closed:
            raise SocketClosed(f"{self.type.value} socket is closed")

    async def send_multipart(self, frames: Iterable[bytes]) -> None:
        """Send one message of one or more frames, atomically."""
        if self._closed:
            self._check_open()
        if not self.can_send:
            raise NotSupported(f"{self.type.value} sockets cannot send")
        msg = list(frames)  # our own list: the caller may reuse theirs
        for i, f in enumerate(msg):
            if type(f) is not bytes:
                msg[i] = bytes(f)
        if not msg:
            raise ValueError("a message has at least one frame")
        if self._send_held:
            msg, self._send_held = [*self._send_held, *msg], []
        # Most sends complete at once; only wait (a coroutine deeper) when they cannot.
        if not self.send_now(msg):
            await self.send_waiting(msg)

    async def send(self, data: bytes, more: bool = False) -> None:
        """Send a frame. With `more`, the frame is held, after any held before it, and nothing goes
        out until a send without `more` (or a send_multipart) adds the final frame: RFC 37 has a
        peer queue all frames of a message in memory until the final frame is sent."""
        if more:
            self._check_open()
            if not self.can_send:
                raise NotSupported(f"{self.type.value} sockets cannot send")
            self._send_held.append(bytes(data))
            return
        await self.send_multipart([data])

    async def send_many(self, messages: Iterable[Iterable[bytes]]) -> int:
        """Send many messages in one call; returns how many were sent.

        Per-call overhead dominates small messages in Python; this keeps the
        pattern logic per message but pays the API cost once.
        """
        self._check_open()
        if not self.can_send:
            raise NotSupported(f"{self.type.value} sockets cannot send")
        self._refuse_held()
        n = 0
        send_waiting, send_now = self.send_waiting, self.send_now
        for frames in messages:
            msg = frames if isinstance(frames, list) else list(frames)
            if not send_now(msg):
                await send_waiting(msg)
            n += 1
        return n

    async def recv_multipart(self) -> list[bytes]:
        """The next whole message."""
        if self._closed:
            self._check_open()
        if not self.can_recv:
            raise NotSupported(f"{self.type.value} sockets cannot receive")
        if self._recv_rest:
            rest = list(self._recv_rest)
            self._recv_rest.clear()
            return rest
        self.check_recv()
        # A message already queued is returned without suspending (no loop turn).
        frames = self.take()
        while frames is None:
            await self._wait(self._readable)
            frames = self.take()
        return frames

    async def recv(self) -> bytes:
        """The next frame; the rest of a multipart message follows on later calls."""
        if self._recv_rest:
            return self._recv_rest.popleft()
        frames = await self.recv_multipart()
        self._recv_rest.extend(frames[1:])
        return frames[0]

    async def recv_many(self, max_messages: int = 1024) -> list[list[bytes]]:
        """Wait for at least one message, then return up to `max_messages` that are ready."""
        out = [await self.recv_multipart()]
        if max_messages > 1:
            out += self.take_many(max_messages - 1)
        return out

    async def recv_message(self) -> ReceivedMessage:
        """The next message with the properties of the peer it came from
        (Socket-Type, Identity, Peer-Address, and User-Id and metadata from ZAP)."""
        frames = await self.recv_multipart()
        pipe = self._last_pipe
        return ReceivedMessage(frames, pipe.properties if pipe is not None else Metadata())

    def subscribe(self, topic: bytes | str = b"") -> None:
        raise NotSupported(f"{self.type.value} sockets have no subscriptions")

    def unsubscribe(self, topic: bytes | str = b"") -> None:
        raise NotSupported(f"{self.type.value} sockets have no subscriptions")

    @property
    def peers(self) -> list[Pipe]:
        return [p for p in self._pipes if p.live]

    async def close(self, linger: float | None = ...) -> None:  # type: ignore[assignment]
        """Close the socket; queued messages get up to `linger` seconds to leave."""
        if self._closed:
            return
        if linger is ...:
            linger = self.options.linger
        for unbind in self._unbinders.values():
            unbind()
        if linger is None or linger > 0:
            # Connecters keep running meanwhile: queued messages may still
            # be waiting for their peer to come up.
            await self._linger(linger)
        for task in self._connecters.values():
            task.cancel()
        self._closed = True
        for engine in list(self._engines):
            engine.close()
        for pipe in self._pipes:
            if pipe.engine is not None:
                pipe.engine.close()
        self._readable.set()
        self._writable.set()
        for task in self._connecters.values():
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        self._connecters.clear()
        self._unbinders.clear()
        if self.context is not None:
            self.context._forget(self)
        if self._monitors:
            # Let the engines report their disconnections before the socket's own CLOSED.
            pending = [e.closed for e in self._engines if not e.closed.done()]
            if pending:
                await asyncio.wait(pending, timeout=0.5)
            self.emit_event(EventKind.CLOSED, self.last_endpoint)
            for mon in list(self._monitors):
                mon.close()

    async def _linger(self, linger: float | None) -> None:
        loop = asyncio.get_running_loop()
        deadline = None if linger is None else loop.time() + linger

        def busy() -> bool:
            return any(p.pending or (p.engine is not None and p.engine.pending_bytes) for p in self._pipes)

        for engine in list(self._engines):
            engine.flush()
        while busy():
            if deadline is not None and loop.time() >= deadline:
                break
            await asyncio.sleep(0.005)
