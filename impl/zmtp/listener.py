"""The tcp listener: one listening socket per host:port, shared by the services bound there.

RFC 37's Resource lets several services of one process share a port:
`tcp://host:port/resource`. The RFC's own strategy is followed: the first
bind to a host:port creates the listener, which keeps that binder's
security settings; every connection is handled by the listener; after the
security handshake, the Resource the peer asked for picks the service, and
the connection is handed off to that socket.

A bind without a resource is the default service: it takes the peers that
name no resource and those whose resource nobody serves. A listener whose
only service is a default one hands every connection to it from the start,
so a plain bind behaves exactly as if resources did not exist.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .endpoint import Endpoint
from .engine import Engine
from .errors import SecurityMismatch, SocketClosed
from .keys import parse_key
from .monitor import EventKind, HandshakeFailure

if TYPE_CHECKING:
    from .events import HandshakeComplete
    from .metrics import SocketMetrics
    from .options import SocketOptions
    from .pipe import Pipe
    from .socket import Socket
    from .zap import ZapHandler

log = logging.getLogger(__name__)

# Listeners by (host, port): a context's, so that its sockets can share ports.
ListenerRegistry = dict[tuple[str, int], "Listener"]

# Shown by name only: their values are secrets.
_SECRET = frozenset({"plain_password", "curve_secretkey"})


def security_settings(options: SocketOptions) -> dict[str, object]:
    """What of `options` a listener's connections are secured with, in comparable form."""

    def raw(value: str | bytes | None) -> bytes | None:
        return value.encode() if isinstance(value, str) else value

    def key(value: str | bytes | None) -> bytes | None:
        return None if value is None else parse_key(value)

    return {
        "mechanism": options.mechanism,
        "plain_server": options.plain_server,
        "plain_username": raw(options.plain_username),
        "plain_password": raw(options.plain_password),
        "curve_server": options.curve_server,
        "curve_secretkey": key(options.curve_secretkey),
        "curve_serverkey": key(options.curve_serverkey),
        "zap_domain": options.zap_domain,
    }


async def bind_service(registry: ListenerRegistry, socket: Socket, ep: Endpoint) -> tuple[str, Callable[[], None]]:
    """Make `socket` serve `ep.resource` on ep's host:port, opening the listener if this is the
    first bind there. Returns the bound endpoint (port 0 resolved) and what unbinds it.

    Raises OSError (EADDRINUSE) if the resource is already served there, and
    SecurityMismatch if `socket`'s security differs from the listener's.
    """
    listener = registry.get((ep.host, ep.port)) if ep.port else None
    if listener is None:
        listener = await Listener.open(registry, ep.host, ep.port, socket)
    try:
        name = listener.add(socket, ep.resource)
    except BaseException:
        if listener.idle:
            listener.close()
        raise
    return name, lambda: listener.remove(ep.resource, socket)


class Listener:
    """One listening tcp socket and the services behind it, by resource ("" is the default).

    Until a connection is handed off, the listener is its `EngineOwner`:
    it lends the connection its security and reports its failures to its
    owner, the longest-bound service still there.
    """

    def __init__(self, registry: ListenerRegistry, host: str, first: Socket) -> None:
        self._registry = registry
        self.host = host
        self.port = 0
        self.name = ""  # tcp://host:port, once listening
        # The first binder's type and options shape a connection until it is handed off:
        # nothing of them but the (shared) security reaches the wire in that time.
        self.type = first.type
        self.options = first.options
        self._security = security_settings(first.options)
        self._services: dict[str, Socket] = {}
        self._server: asyncio.AbstractServer | None = None
        self._lobby: set[Engine] = set()  # accepted, not yet handed off
        self._held: dict[Engine, str] = {}  # of those, the ones whose resource nobody serves yet

    @classmethod
    async def open(cls, registry: ListenerRegistry, host: str, port: int, first: Socket) -> Listener:
        self = cls(registry, host, first)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._accept, host, port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        self.name = str(Endpoint("tcp", host=host, port=self.port))
        registry[(host, self.port)] = self
        return self

    @property
    def idle(self) -> bool:
        return not self._services

    def endpoint_of(self, resource: str) -> str:
        return str(Endpoint("tcp", host=self.host, port=self.port, resource=resource))

    # -- services ------------------------------------------------------------

    def add(self, socket: Socket, resource: str) -> str:
        """Serve `resource` with `socket`; returns its endpoint. Held connections it serves go to it."""
        name = self.endpoint_of(resource)
        if resource in self._services:
            what = f"resource {resource!r}" if resource else "the default service (no resource)"
            raise OSError(errno.EADDRINUSE, f"cannot bind {name}: {what} is already bound there")
        theirs = security_settings(socket.options)
        differences = [
            what if what in _SECRET else f"{what} {theirs[what]!r} (the listener has {ours!r})"
            for what, ours in self._security.items()
            if theirs[what] != ours
        ]
        if differences:
            raise SecurityMismatch(name, "its security settings differ (" + ", ".join(differences) + ")")
        self._services[resource] = socket
        for engine, wanted in list(self._held.items()):
            if wanted == resource or not resource:  # a held peer's resource is served by no one else
                self._hand_off(engine, socket, resource)
        return name

    def remove(self, resource: str, socket: Socket) -> None:
        """Stop serving `resource` (if `socket` still does); the last service closes the listener."""
        if self._services.get(resource) is socket:
            del self._services[resource]
        if not self._services:
            self.close()

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._registry.get((self.host, self.port)) is self:
            del self._registry[(self.host, self.port)]
        for engine in list(self._lobby):
            engine.close()

    # -- connections -----------------------------------------------------------

    def _accept(self) -> Engine:
        services = self._services
        default = services.get("")
        if default is not None and len(services) == 1:
            return Engine(default, as_server=True, endpoint=self.name)
        engine = Engine(self, as_server=True, endpoint=self.name, router=self._route)
        self._lobby.add(engine)
        return engine

    def _route(self, engine: Engine, resource: str) -> None:
        if resource in self._services:
            self._hand_off(engine, self._services[resource], resource)
        elif "" in self._services:
            self._hand_off(engine, self._services[""], "")
        else:
            self._held[engine] = resource
            engine.hold(resource)

    def _hand_off(self, engine: Engine, socket: Socket, resource: str) -> None:
        self._lobby.discard(engine)
        self._held.pop(engine, None)
        log.info("%s asked for resource %r: served by %s on %s", engine.peer, resource, socket.type.value, self.name)
        engine.serve(socket, self.endpoint_of(resource))

    # -- EngineOwner, for connections not handed off yet -------------------------

    def _owner(self) -> Socket:
        for socket in self._services.values():
            return socket
        raise SocketClosed(f"nothing is bound on {self.name} any more")

    @property
    def metrics(self) -> SocketMetrics | None:
        return self._owner().metrics if self._services else None

    @property
    def zap_handler(self) -> ZapHandler | None:
        return self._owner().zap_handler if self._services else None

    def mechanism_args(self, bound: bool, peer_ip: str) -> dict[str, Any]:
        return self._owner().mechanism_args(bound, peer_ip)

    def emit_event(
        self,
        kind: EventKind,
        endpoint: str,
        peer: str = "",
        reason: str = "",
        failure: HandshakeFailure | None = None,
        **details: Any,
    ) -> None:
        # The serving socket reports ACCEPTED at hand-off, so a monitor sees it only for its
        # own connections; a failure before then is about the listener's credentials, so
        # its owner reports it.
        if kind is EventKind.ACCEPTED or not self._services:
            return
        self._owner().emit_event(kind, endpoint, peer, reason, failure, **details)

    def engine_ready(self, engine: Engine, ev: HandshakeComplete) -> None:
        raise AssertionError("a shared listener's connection completes its handshake only once handed off")

    def engine_failed(self, engine: Engine, exc: BaseException) -> None:
        """Nothing to do: the engine closes itself, and engine_closed forgets it."""

    def engine_closed(self, engine: Engine, was_ready: bool) -> None:
        self._lobby.discard(engine)
        self._held.pop(engine, None)

    def deliver(self, pipe: Pipe, messages: list[list[bytes]]) -> None:
        raise AssertionError("no message arrives before the handshake completes")

    def subscription_changed(self, pipe: Pipe, topic: bytes, subscribe: bool) -> None:
        raise AssertionError("no subscription arrives before the handshake completes")

    def group_changed(self, pipe: Pipe, group: bytes, join: bool) -> None:
        raise AssertionError("no JOIN or LEAVE arrives before the handshake completes")

    def writable(self) -> None:
        """Nothing waits to send on a connection that has no socket yet."""
