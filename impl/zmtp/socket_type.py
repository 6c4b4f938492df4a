"""Socket types and which pairs of them may talk (RFC 37, "The Socket-Type Property")."""

from __future__ import annotations

import enum


class SocketType(enum.Enum):
    PAIR = "PAIR"
    PUB = "PUB"
    SUB = "SUB"
    REQ = "REQ"
    REP = "REP"
    DEALER = "DEALER"
    ROUTER = "ROUTER"
    PULL = "PULL"
    PUSH = "PUSH"
    XPUB = "XPUB"
    XSUB = "XSUB"
    # The draft thread-safe types (RFC 47, 48, 49): single-part messages only.
    CLIENT = "CLIENT"
    SERVER = "SERVER"
    RADIO = "RADIO"
    DISH = "DISH"
    SCATTER = "SCATTER"
    GATHER = "GATHER"

    @classmethod
    def parse(cls, value: SocketType | str) -> SocketType:
        if isinstance(value, SocketType):
            return value
        try:
            return cls[str(value).upper()]
        except KeyError:
            known = ", ".join(t.value for t in cls)
            raise ValueError(f"unknown socket type {value!r}; expected one of {known}") from None

    @property
    def wire_name(self) -> bytes:
        return self.value.encode("ascii")

    def can_talk_to(self, peer: str | bytes) -> bool:
        """RFC 37: is `peer` (the Socket-Type the other side announced) a legal partner?"""
        if isinstance(peer, bytes):
            peer = peer.decode("ascii", "replace")
        return peer in VALID_PEERS.get(self.value, frozenset())


# RFC 37's table, complete: PEER and CHANNEL (RFC 51, 52) are not implemented,
# but the validator can still judge any announced pair.
VALID_PEERS: dict[str, frozenset[str]] = {
    "REQ": frozenset({"REP", "ROUTER"}),
    "REP": frozenset({"REQ", "DEALER"}),
    "DEALER": frozenset({"REP", "DEALER", "ROUTER"}),
    "ROUTER": frozenset({"REQ", "DEALER", "ROUTER"}),
    "PUB": frozenset({"SUB", "XSUB"}),
    "XPUB": frozenset({"SUB", "XSUB"}),
    "SUB": frozenset({"PUB", "XPUB"}),
    "XSUB": frozenset({"PUB", "XPUB"}),
    "PUSH": frozenset({"PULL"}),
    "PULL": frozenset({"PUSH"}),
    "PAIR": frozenset({"PAIR"}),
    "CLIENT": frozenset({"SERVER"}),
    "SERVER": frozenset({"CLIENT"}),
    "RADIO": frozenset({"DISH"}),
    "DISH": frozenset({"RADIO"}),
    "SCATTER": frozenset({"GATHER"}),
    "GATHER": frozenset({"SCATTER"}),
    "PEER": frozenset({"PEER"}),
    "CHANNEL": frozenset({"CHANNEL"}),
}

# RFC 15 (ZMTP/2.0) carries the socket type as one octet; libzmq sends its own
# ZMQ_* numbers, so XPUB (9) and XSUB (10) appear on the wire as well.
ZMTP20_TYPE_NUMBERS: dict[SocketType, int] = {
    SocketType.PAIR: 0,
    SocketType.PUB: 1,
    SocketType.SUB: 2,
    SocketType.REQ: 3,
    SocketType.REP: 4,
    SocketType.DEALER: 5,
    SocketType.ROUTER: 6,
    SocketType.PULL: 7,
    SocketType.PUSH: 8,
    SocketType.XPUB: 9,
    SocketType.XSUB: 10,
}
ZMTP20_TYPES_BY_NUMBER: dict[int, SocketType] = {n: t for t, n in ZMTP20_TYPE_NUMBERS.items()}

# The thread-safe family (RFC 37, "Thread-Safe Socket Types"): they exist only
# in ZMTP 3.1, and RFC 15 has no number for them, so they never downgrade.
THREAD_SAFE = frozenset(
    {SocketType.CLIENT, SocketType.SERVER, SocketType.RADIO, SocketType.DISH, SocketType.SCATTER, SocketType.GATHER}
)

# Types that announce an Identity in READY. libzmq sends it (possibly empty)
# from REQ, DEALER and ROUTER; RFC 37 lets exactly these announce one.
SENDS_IDENTITY = frozenset({SocketType.REQ, SocketType.DEALER, SocketType.ROUTER})
