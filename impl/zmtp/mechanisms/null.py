"""The NULL mechanism (RFC 37, "The NULL Security Mechanism").

The client sends READY and waits; the server reads the client's READY,
checks it, and answers READY, or ERROR when it refuses. RFC 23 (3.0) made
the exchange symmetric and libzmq still sends READY without waiting; both
orders work here because the client never waits before sending. With a ZAP
domain and handler, the server asks ZAP (mechanism NULL, no credentials)
before it answers, to filter clients by address.
"""

from __future__ import annotations

import struct

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
        return encode_command(name, self._properties())

    def _properties(self) -> bytes:
        props = self.local_metadata
        if self.bugs.metadata_bad_name:
            props = [("Socket Type" if n == "Socket-Type" else n, v) for n, v in props]
        if not (self.bugs.metadata_value_overrun or self.bugs.metadata_bad_name) or not props:
            return encode_properties(props)
        # Encoded by hand: encode_properties refuses to write either mistake.
        out = b""
        for i, (n, v) in enumerate(props):
            size = len(v) + (1 if self.bugs.metadata_value_overrun and i == len(props) - 1 else 0)
            out += bytes((len(n),)) + n.encode("ascii") + struct.pack(">I", size) + v
        return out

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
            self.answer_when_served(self._answer_ready)
        else:
            self.complete = True

    def _answer_ready(self) -> None:
        self.outgoing.append(self._ready())
        self.complete = True
