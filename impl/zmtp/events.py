"""Events the sans-I/O connection yields, one plain dataclass each (in the manner of h11)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .metadata import Metadata
from .zap import ZapRequest


class Event:
    """Base class, for isinstance checks and type hints."""

    __slots__ = ()


@dataclass(slots=True)
class GreetingReceived(Event):
    """The peer's greeting is in. `version` is (1, 0) or (2, 0) for a legacy peer."""

    version: tuple[int, int]
    mechanism: str
    as_server: bool = False


@dataclass(slots=True)
class HandshakeComplete(Event):
    """Both sides are READY: traffic may flow.

    `version` is the version in use on the wire: (3, 1), (3, 0), (2, 0) or (1, 0).
    """

    version: tuple[int, int]
    peer_socket_type: str | None
    peer_identity: bytes
    metadata: Metadata = field(default_factory=Metadata)
    user_id: str = ""  # from ZAP, on a server
    zap_metadata: dict[str, bytes] = field(default_factory=dict)


@dataclass(slots=True)
class Message(Event):
    """A whole message: every frame, never a part (RFC 23 "Socket Semantics")."""

    frames: list[bytes]


@dataclass(slots=True)
class Messages(Event):
    """Whole messages that follow one another, each a list of frames: what
    `Connection.receive_data(..., batched=True)` gives instead of one Message
    each (an event object per small message costs more than the message)."""

    messages: list[list[bytes]]


@dataclass(slots=True)
class Subscribe(Event):
    """A SUBSCRIBE command, or a 3.0-style `01`+topic frame received by a PUB or XPUB."""

    topic: bytes
    legacy: bool = False


@dataclass(slots=True)
class Cancel(Event):
    topic: bytes
    legacy: bool = False


@dataclass(slots=True)
class Join(Event):
    """A JOIN command (RFC 37): a DISH asks a RADIO for a group's messages."""

    group: bytes


@dataclass(slots=True)
class Leave(Event):
    group: bytes


@dataclass(slots=True)
class Ping(Event):
    """A PING arrived (the PONG has already been queued). `ttl` is in tenths of a second."""

    ttl: int
    context: bytes


@dataclass(slots=True)
class Pong(Event):
    context: bytes


@dataclass(slots=True)
class UnknownCommand(Event):
    """A command this implementation does not know, after the handshake. libzmq drops these."""

    name: bytes
    data: bytes


@dataclass(slots=True)
class AuthenticationRequested(Event):
    """The server side needs a ZAP decision; answer with `Connection.authenticate`.

    Nothing more is read from the peer until the answer is in.
    """

    request: ZapRequest


@dataclass(slots=True)
class ServiceRequested(Event):
    """A server on an endpoint shared by services (RFC 37's Resource) has the peer's metadata:
    its handshake waits for `Connection.serve_as` with the socket that serves `resource`
    ("" when the peer named none)."""

    resource: str
