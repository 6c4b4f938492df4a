"""Commands of ZMTP 3.x (RFC 23, RFC 37): READY, ERROR, SUBSCRIBE, CANCEL, PING, PONG, JOIN, LEAVE.

    command-body = command-name command-data
    command-name = short-size 1*255command-name-char   ; ALPHA

RFC 23's prose mentions a "null octet separator"; the grammar has none and no
implementation sends one, so the grammar is followed.
"""

from __future__ import annotations

import struct

from .errors import ProtocolError
from .frame import encode_command
from .metadata import Metadata, encode_properties

CLAUSE = "37/ZMTP#commands"

READY = b"READY"
ERROR = b"ERROR"
SUBSCRIBE = b"SUBSCRIBE"
CANCEL = b"CANCEL"
PING = b"PING"
PONG = b"PONG"
JOIN = b"JOIN"
LEAVE = b"LEAVE"

MAX_PING_CONTEXT = 16
MAX_PING_TTL = 0xFFFF  # tenths of a second
MAX_GROUP = 255
GROUP_CLAUSE = "37/ZMTP#the-radio-dish-pattern"


def parse_command(body: bytes) -> tuple[bytes, bytes]:
    """Split a command frame body into (name, data)."""
    if not body:
        raise ProtocolError("command frame is empty: no name length octet", clause=CLAUSE)
    n = body[0]
    if n == 0:
        raise ProtocolError("command name length is 0; names are 1-255 letters", clause=CLAUSE)
    if len(body) < 1 + n:
        raise ProtocolError(f"command name truncated: {n} octets announced, {len(body) - 1} present", clause=CLAUSE)
    name = body[1 : 1 + n]
    if not name.isalpha() or not name.isascii():
        raise ProtocolError(f"command name {name!r} is not all ASCII letters", clause=CLAUSE)
    return bytes(name), body[1 + n :]


def ready(properties: list[tuple[str, bytes]] | Metadata) -> bytes:
    props = list(properties.items()) if isinstance(properties, Metadata) else properties
    return encode_command(READY, encode_properties(props))


def error(reason: str | bytes) -> bytes:
    raw = reason.encode("ascii", "replace") if isinstance(reason, str) else reason
    raw = raw[:255]
    return encode_command(ERROR, bytes((len(raw),)) + raw)


def parse_error(data: bytes) -> str:
    """The reason of an ERROR command; a reason longer than its data is a ProtocolError."""
    if not data:
        raise ProtocolError("ERROR command has no reason length octet", clause="23/ZMTP#error-handling")
    n = data[0]
    if len(data) < 1 + n:
        raise ProtocolError(
            f"ERROR reason truncated: {n} octets announced, {len(data) - 1} present",
            clause="23/ZMTP#error-handling",
        )
    return data[1 : 1 + n].decode("ascii", "replace")


def subscribe(topic: bytes) -> bytes:
    return encode_command(SUBSCRIBE, topic)


def cancel(topic: bytes) -> bytes:
    return encode_command(CANCEL, topic)


def ping(ttl_deciseconds: int = 0, context: bytes = b"") -> bytes:
    if not 0 <= ttl_deciseconds <= MAX_PING_TTL:
        raise ValueError(f"ping TTL {ttl_deciseconds} is outside 0..65535 tenths of a second")
    if len(context) > MAX_PING_CONTEXT:
        raise ValueError(f"ping context is {len(context)} octets; at most 16 are allowed")
    return encode_command(PING, struct.pack(">H", ttl_deciseconds) + context)


def parse_ping(data: bytes) -> tuple[int, bytes]:
    """(ttl in tenths of a second, context). A context over 16 octets is cut to 16,
    as libzmq does, so the PONG we send back stays within the grammar."""
    if len(data) < 2:
        raise ProtocolError(
            f"PING carries {len(data)} octets; at least the 2-octet TTL is required",
            clause="37/ZMTP#connection-heartbeating",
        )
    return struct.unpack_from(">H", data)[0], bytes(data[2 : 2 + MAX_PING_CONTEXT])


def pong(context: bytes = b"") -> bytes:
    return encode_command(PONG, context[:MAX_PING_CONTEXT])


def group_problem(group: bytes) -> str | None:
    """What makes `group` break RFC 37's grammar (0*255 octets of %d1-255), or None."""
    if len(group) > MAX_GROUP:
        return f"group is {len(group)} octets; at most {MAX_GROUP} are allowed"
    if 0 in group:
        return "group contains a zero octet; group characters are 1-255"
    return None


def check_group(group: bytes) -> bytes:
    """`group` if it is valid to send; a ValueError naming the rule otherwise."""
    problem = group_problem(group)
    if problem is not None:
        raise ValueError(f"{problem} [{GROUP_CLAUSE}]")
    return group


def parse_group(name: bytes, data: bytes) -> bytes:
    """The group of a JOIN or LEAVE command; a ProtocolError if it breaks the grammar."""
    problem = group_problem(data)
    if problem is not None:
        raise ProtocolError(f"{name.decode()} command: {problem}", clause=GROUP_CLAUSE)
    return bytes(data)


def join(group: bytes) -> bytes:
    """join = command-size %d4 "JOIN" group (RFC 37)."""
    return encode_command(JOIN, check_group(group))


def leave(group: bytes) -> bytes:
    """leave = command-size %d5 "LEAVE" group (RFC 37)."""
    return encode_command(LEAVE, check_group(group))
