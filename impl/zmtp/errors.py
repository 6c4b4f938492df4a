"""Typed errors.

Every error says what happened and, where one is known, with which peer, so
that a log line on its own is enough to find the misbehaving party.
"""

from __future__ import annotations


class ZMTPError(Exception):
    """Base class of every error this package raises on purpose."""

    def __init__(self, message: str, *, peer: str | None = None) -> None:
        self.peer = peer
        super().__init__(f"{message} (peer {peer})" if peer else message)


class ProtocolError(ZMTPError):
    """The peer broke the wire protocol; the connection is closed.

    `clause` names the part of the RFC that was broken, e.g. "23/ZMTP#framing".
    """

    def __init__(self, message: str, *, clause: str | None = None, peer: str | None = None) -> None:
        self.clause = clause
        self.reason = message
        super().__init__(f"{message} [{clause}]" if clause else message, peer=peer)


class MessageTooLarge(ProtocolError):
    """A frame header announced more bytes than `max_msg_size` allows."""


class HandshakeError(ZMTPError):
    """The handshake was refused: an ERROR command, a bad socket-type pair, a mechanism mismatch."""


class PeerRefused(HandshakeError):
    """The peer sent an ERROR command; per RFC 23 we must not reconnect with the same credentials."""

    def __init__(self, reason: str, *, peer: str | None = None) -> None:
        self.reason = reason
        super().__init__(f"peer refused the handshake with ERROR {reason!r}", peer=peer)


class HandshakeTimeout(ZMTPError):
    """The peer did not complete its greeting and handshake in `handshake_timeout` seconds."""


class HeartbeatTimeout(ZMTPError):
    """No traffic arrived within the heartbeat timeout or the peer's ping TTL."""


class InvalidState(ZMTPError):
    """The call is not allowed in the socket's current state (e.g. REQ send twice)."""


class HostUnreachable(ZMTPError):
    """ROUTER with router_mandatory: no peer has this routing id."""


class NotSupported(ZMTPError):
    """The operation does not exist for this socket type (e.g. recv on PUB)."""


class SecurityMismatch(ZMTPError):
    """A bind would share a tcp endpoint whose listener uses other security settings.

    RFC 37 resolves a Resource only after the security handshake, so one
    listener, with one set of credentials, serves every resource there.
    """

    rule = (
        "RFC 37: 'Since resource evaluation happens after security handshaking, all services"
        " that use the same endpoint SHALL use the same security credentials'"
    )

    def __init__(self, endpoint: str, differences: str) -> None:
        self.endpoint = endpoint
        self.differences = differences
        super().__init__(f"cannot bind {endpoint}: {differences} from the services already bound there; {self.rule}")


class SocketClosed(ZMTPError):
    """The socket or its context was closed."""


class Again(ZMTPError):
    """A non-blocking call could not complete now (libzmq's EAGAIN)."""


class AuthenticationFailed(HandshakeError):
    """ZAP refused the peer (status 300, 400 or 500)."""

    def __init__(self, status_code: int, text: str, *, peer: str | None = None) -> None:
        self.status_code = status_code
        self.text = text
        super().__init__(f"authentication refused: ZAP status {status_code} {text!r}".rstrip(), peer=peer)
