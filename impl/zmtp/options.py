"""Socket options, as one dataclass (the seed guide's SocketOptions, in Python).

Durations are seconds as floats, the way asyncio counts time. Every field is
checked in `__post_init__`, and a bad value raises a ValueError that names
the option, so a typo in a config file fails at start-up, not on the wire.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from .bugs import NO_BUGS, ProtocolBugs

KiB = 1024


@dataclass(frozen=True)
class SocketOptions:
    # Limits
    max_msg_size: int | None = None  # largest frame body accepted; None = no limit
    sndhwm: int = 1000  # messages queued per peer before send blocks or drops (0 = no limit)
    rcvhwm: int = 1000  # messages queued per peer before reading from it pauses (0 = no limit)
    # Timeouts and intervals (seconds)
    handshake_timeout: float = 30.0  # greeting + security handshake; 0 = none
    connect_timeout: float = 0.0  # one TCP connect attempt; 0 = the OS default
    heartbeat_ivl: float = 0.0  # send a PING this often; 0 = no heartbeats
    heartbeat_ttl: float = 0.0  # TTL announced in our PINGs (tenths of a second on the wire)
    heartbeat_timeout: float | None = None  # close if nothing arrives this long after a PING; None = heartbeat_ivl
    reconnect_ivl: float = 0.1  # first delay before reconnecting; 0 or less = never reconnect
    reconnect_ivl_max: float = 0.0  # cap of the exponential backoff; 0 = keep reconnect_ivl
    linger: float | None = 30.0  # how long close() waits to flush queued messages; None = forever
    # Identity and metadata
    routing_id: bytes = b""  # our Identity property (REQ, DEALER, ROUTER announce it)
    metadata: dict[str, bytes] = field(default_factory=dict)  # X- application properties for READY
    # TCP
    tcp_nodelay: bool = True
    tcp_keepalive: bool = False
    tcp_keepalive_idle: float | None = None
    tcp_keepalive_interval: float | None = None
    # Buffers: recv_buffer_size is the size of a read from the kernel on a
    # quiet connection (and the memory an idle one keeps); while the kernel
    # fills every read, the engine doubles the read size up to 256 KiB (or up
    # to recv_buffer_size, if larger) and halves it again once reads come back
    # mostly empty, so a backlog of small messages costs few reads whatever
    # the preset. send_buffer_size is how many bytes of small messages are
    # gathered before they are written (fewer system calls for small messages);
    # likewise, while a sender fills it without yielding, the engine doubles it
    # up to 64 KiB (or send_buffer_size, if larger) and halves it again once
    # the loop's turns end with little gathered. A lone message is not held.
    send_buffer_size: int = 8 * KiB
    recv_buffer_size: int = 8 * KiB
    # Patterns
    req_relaxed: bool = False
    req_correlate: bool = False
    router_mandatory: bool = False
    router_handover: bool = False
    xpub_verbose: bool = False
    immediate: bool = False  # queue only to completed connections (libzmq ZMQ_IMMEDIATE)
    # Security (RFC 24, 27): PLAIN roles come from these options, not from who binds
    zap_domain: str = ""
    zap_timeout: float = 10.0  # a ZAP handler that takes longer counts as status 500
    plain_server: bool = False
    plain_username: str | bytes | None = None  # set on a PLAIN client (with plain_password)
    plain_password: str | bytes = ""
    # CURVE (RFC 25/26): keys as 32 bytes, 40 Z85 characters or 64 hex digits
    curve_server: bool = False
    curve_secretkey: bytes | str | None = None  # our long-term secret key (server and client)
    curve_publickey: bytes | str | None = None  # optional: checked against the secret key
    curve_serverkey: bytes | str | None = None  # on a client: the server's public key
    # Compatibility
    allow_legacy: bool = True  # downgrade to ZMTP 1.0/2.0 peers (NULL only)
    # Testing: deliberate protocol bugs (see zmtp.bugs)
    bugs: ProtocolBugs = NO_BUGS

    def __post_init__(self) -> None:
        def fail(name: str, expected: str) -> None:
            raise ValueError(f"SocketOptions.{name}: expected {expected}, got {getattr(self, name)!r}")

        for name in ("sndhwm", "rcvhwm"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                fail(name, "an int >= 0")
        if self.max_msg_size is not None and (
            not isinstance(self.max_msg_size, int) or isinstance(self.max_msg_size, bool) or self.max_msg_size < 0
        ):
            fail("max_msg_size", "None or an int >= 0")
        for name in (
            "handshake_timeout",
            "connect_timeout",
            "heartbeat_ivl",
            "heartbeat_ttl",
            "reconnect_ivl_max",
            "zap_timeout",
        ):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
                fail(name, "a duration in seconds >= 0")
        if not isinstance(self.reconnect_ivl, (int, float)) or isinstance(self.reconnect_ivl, bool):
            fail("reconnect_ivl", "a duration in seconds")
        if self.heartbeat_ttl > 6553.5:
            fail("heartbeat_ttl", "at most 6553.5 seconds (a 16-bit count of tenths)")
        for name in ("heartbeat_timeout", "linger", "tcp_keepalive_idle", "tcp_keepalive_interval"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0):
                fail(name, "None or a duration in seconds >= 0")
        for name in ("send_buffer_size", "recv_buffer_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 256:
                fail(name, "an int >= 256 (bytes)")
        if not isinstance(self.routing_id, bytes) or len(self.routing_id) > 255:
            fail("routing_id", "bytes of length 0-255")
        if self.routing_id[:1] == b"\x00":
            fail("routing_id", "bytes not starting with a zero octet (RFC 37 reserves those)")
        if not isinstance(self.metadata, dict):
            fail("metadata", "a dict of str to bytes")
        for k, v in self.metadata.items():
            if not isinstance(k, str) or not k.lower().startswith("x-") or not isinstance(v, bytes):
                fail("metadata", "names starting with 'X-' mapped to bytes values")
        for name in (
            "tcp_nodelay",
            "tcp_keepalive",
            "req_relaxed",
            "req_correlate",
            "router_mandatory",
            "router_handover",
            "xpub_verbose",
            "immediate",
            "allow_legacy",
        ):
            if not isinstance(getattr(self, name), bool):
                fail(name, "True or False")
        if not isinstance(self.bugs, ProtocolBugs):
            fail("bugs", "a zmtp.ProtocolBugs")
        if not isinstance(self.zap_domain, str) or len(self.zap_domain) > 255:
            fail("zap_domain", "a string of at most 255 characters")
        if not isinstance(self.plain_server, bool):
            fail("plain_server", "True or False")
        for name in ("plain_username", "plain_password"):
            v = getattr(self, name)
            if v is None and name == "plain_username":
                continue
            if not isinstance(v, (str, bytes)) or len(v.encode() if isinstance(v, str) else v) > 255:
                fail(name, "str or bytes of at most 255 octets")
        if self.plain_server and self.plain_username is not None:
            fail("plain_username", "None on a PLAIN server (plain_server=True)")
        from .keys import CurveKeyPair, parse_key

        for name in ("curve_secretkey", "curve_publickey", "curve_serverkey"):
            v = getattr(self, name)
            if v is not None:
                try:
                    parse_key(v, f"SocketOptions.{name}")
                except (ValueError, TypeError) as exc:
                    raise ValueError(str(exc)) from None
        if self.curve_server or self.curve_serverkey is not None:
            if self.curve_secretkey is None:
                fail("curve_secretkey", "our secret key, whenever CURVE is used")
            pair = CurveKeyPair.from_secret(self.curve_secretkey)
            if self.curve_publickey is not None and parse_key(self.curve_publickey) != pair.public:
                fail("curve_publickey", "the public key that belongs to curve_secretkey")
        if self.curve_server and self.curve_serverkey is not None:
            fail("curve_serverkey", "None on a CURVE server (curve_server=True)")
        if self.mechanism_conflict():
            fail("curve_server", "one mechanism per socket: not PLAIN and CURVE options together")

    def mechanism_conflict(self) -> bool:
        plain = self.plain_server or self.plain_username is not None
        curve = self.curve_server or self.curve_serverkey is not None
        return plain and curve

    @property
    def mechanism(self) -> str:
        """The security mechanism these options select."""
        if self.curve_server or self.curve_serverkey is not None:
            return "CURVE"
        if self.plain_server or self.plain_username is not None:
            return "PLAIN"
        return "NULL"

    @property
    def effective_heartbeat_timeout(self) -> float:
        return self.heartbeat_ivl if self.heartbeat_timeout is None else self.heartbeat_timeout

    @classmethod
    def small(cls, **changes: Any) -> SocketOptions:
        """For messages under 1 KiB: 4 KiB buffers."""
        return cls(send_buffer_size=4 * KiB, recv_buffer_size=4 * KiB, **changes)

    @classmethod
    def default(cls, **changes: Any) -> SocketOptions:
        """8 KiB buffers: the same as SocketOptions()."""
        return cls(**changes)

    @classmethod
    def large(cls, **changes: Any) -> SocketOptions:
        """For messages over 10 KiB: 16 KiB buffers."""
        return cls(send_buffer_size=16 * KiB, recv_buffer_size=16 * KiB, **changes)

    def with_(self, **changes: Any) -> SocketOptions:
        """A copy with some fields changed (and checked again)."""
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise ValueError(f"unknown socket option(s): {', '.join(sorted(unknown))}")
        return replace(self, **changes)
