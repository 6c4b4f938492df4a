"""The NULL mechanism (RFC 37, "The NULL Security Mechanism").

The client sends READY and waits; the server reads the client's READY,
checks it, and answers READY, or ERROR when it refuses. RFC 23 (3.0) made
the exchange symmetric and libzmq still sends READY without waiting; both
orders work here because the client never waits before sending. With a ZAP
domain and handler, the server asks ZAP (mechanism NULL, no credentials)
before it answers, to filter clients by address.
"""

from __future__ import annotations

from .. import command
from ..errors import PeerRefused, ProtocolError
from ..frame import encode_command
from ..metadata import decode_properties, encode_properties
from .base import Mechanism

CLAUSE = "37/ZMTP#the-null-security-mechanism"


class NullMechanism(Mechanism):
    name = "NULL"

    def _ready(self) -> bytes:
        name = self.bugs.ready_command_name or command.READY
        return encode_command(name, encode_properties(self.local_metadata))

    def start(self) -> None:
        if not self.as_server:
            self.outgoing.append(self._ready())

    def receive_command(self, name: bytes, data: bytes) -> None:
        if self.complete or self.pending_zap is not None:
            raise ProtocolError(f"{name.decode()} command after the NULL handshake completed", clause=CLAUSE)
        if name == command.ERROR:
            raise PeerRefused(command.parse_error(data))
        if name != command.READY:
            raise ProtocolError(f"expected READY or ERROR in the NULL handshake, got {name.decode()!r}", clause=CLAUSE)
        self.accept_metadata(decode_properties(data))
        if self.as_server and self.zap is not None and self.zap.domain:
            self.request_zap()
            return
        self.zap_accepted()

    def zap_accepted(self) -> None:
        if self.as_server:
            self.outgoing.append(self._ready())
        self.complete = True
