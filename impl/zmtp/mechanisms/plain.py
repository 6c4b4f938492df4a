"""The PLAIN mechanism (RFC 24): a user name and password, in clear text.

    C: HELLO username password        S: WELCOME | ERROR
    C: INITIATE metadata              S: READY metadata | ERROR

The server decides through ZAP (RFC 27); without a ZAP handler a PLAIN
server refuses everyone, as libzmq does from 4.2.3 on. RFC 24's prose about
"8-character command names padded with spaces" is stale: names are
length-prefixed like every ZMTP 3 command, which is what libzmq sends.
"""

from __future__ import annotations

from .. import command
from ..errors import HandshakeError, ProtocolError
from ..frame import encode_command
from ..metadata import decode_properties, encode_properties
from .base import Mechanism

CLAUSE = "24/ZMTP-PLAIN"
HELLO = b"HELLO"
WELCOME = b"WELCOME"
INITIATE = b"INITIATE"


def _field(value: bytes, what: str) -> bytes:
    if len(value) > 255:
        raise ValueError(f"PLAIN {what} is {len(value)} octets; at most 255 fit")
    return bytes((len(value),)) + value


class PlainMechanism(Mechanism):
    name = "PLAIN"

    def __init__(self, *, username: bytes = b"", password: bytes = b"", **kw) -> None:  # type: ignore[no-untyped-def]
        super().__init__(**kw)
        self.username = username
        self.password = password
        self._state = "start"

    def __repr__(self) -> str:
        return f"<PlainMechanism {'server' if self.as_server else 'client'} user={self.username!r}>"

    def start(self) -> None:
        if self.as_server:
            self._state = "expect-hello"
        else:
            body = _field(self.username, "username") + _field(self.password, "password")
            if self.bugs.plain_hello_trailing_octet:
                body += b"\x00"
            self.outgoing.append(encode_command(HELLO, body))
            if self.bugs.plain_initiate_early:
                self.outgoing.append(encode_command(INITIATE, encode_properties(self.local_metadata)))
            self._state = "expect-welcome"

    def receive_command(self, name: bytes, data: bytes) -> None:
        self.check_error(name, data)
        state = self._state
        if state == "expect-hello" and name == HELLO:
            self._receive_hello(data)
        elif state == "expect-welcome" and name == WELCOME:
            if data:
                raise ProtocolError(f"WELCOME carries {len(data)} octets; it has no body", clause=CLAUSE)
            if not self.bugs.plain_initiate_early:  # or it went with HELLO
                self.outgoing.append(encode_command(INITIATE, encode_properties(self.local_metadata)))
            self._state = "expect-ready"
        elif state == "expect-initiate" and name == INITIATE:
            self._receive_metadata(data, INITIATE)
            self._state = "serving"
            self.answer_when_served(self._answer_ready)
        elif state == "expect-ready" and name == command.READY:
            self._receive_metadata(data, command.READY)
            self.complete = True
            self._state = "done"
        else:
            raise ProtocolError(f"unexpected {name.decode()} command in the PLAIN handshake ({state})", clause=CLAUSE)

    def _answer_ready(self) -> None:
        self.outgoing.append(encode_command(command.READY, encode_properties(self.local_metadata)))
        self.complete = True
        self._state = "done"

    def _receive_hello(self, data: bytes) -> None:
        pos = 0
        values = []
        for what in ("username", "password"):
            if pos >= len(data):
                raise ProtocolError(f"HELLO ends before the {what}", clause=CLAUSE)
            n = data[pos]
            if pos + 1 + n > len(data):
                raise ProtocolError(f"HELLO {what} truncated: {n} octets announced", clause=CLAUSE)
            values.append(bytes(data[pos + 1 : pos + 1 + n]))
            pos += 1 + n
        if pos != len(data):
            raise ProtocolError(f"HELLO has {len(data) - pos} octets after the password", clause=CLAUSE)
        self._state = "zap"
        if self.zap is None:
            raise HandshakeError("PLAIN server has no ZAP handler to check credentials; refusing")
        self.request_zap(tuple(values))

    def zap_accepted(self) -> None:
        self.outgoing.append(encode_command(WELCOME, b"\x00" if self.bugs.plain_welcome_with_body else b""))
        self._state = "expect-initiate"

    def _receive_metadata(self, data: bytes, name: bytes) -> None:
        self.accept_metadata(decode_properties(data, command=name.decode()))
