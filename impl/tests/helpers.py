"""Helpers for driving two sans-I/O connections against each other."""

from __future__ import annotations

from zmtp.connection import Connection
from zmtp.events import Event


def pump(a: Connection, b: Connection, rounds: int = 20) -> tuple[list[Event], list[Event]]:
    """Move bytes both ways until neither side has anything to say; the events each side saw."""
    ea: list[Event] = []
    eb: list[Event] = []
    for _ in range(rounds):
        da, db = a.data_to_send(), b.data_to_send()
        if not da and not db:
            break
        if da:
            eb.extend(b.receive_data(da))
        if db:
            ea.extend(a.receive_data(db))
    return ea, eb


def handshake(client_type: str = "DEALER", server_type: str = "ROUTER", **kw) -> tuple[Connection, Connection]:
    client = Connection(client_type, as_server=False, **kw.get("client", {}))
    server = Connection(server_type, as_server=True, **kw.get("server", {}))
    pump(client, server)
    return client, server


# RFC 37's valid socket-type pairs, each once; either side may play either role.
VALID_PAIRS = [
    ("REQ", "REP"),
    ("REQ", "ROUTER"),
    ("DEALER", "REP"),
    ("DEALER", "DEALER"),
    ("DEALER", "ROUTER"),
    ("ROUTER", "ROUTER"),
    ("PUB", "SUB"),
    ("PUB", "XSUB"),
    ("XPUB", "SUB"),
    ("XPUB", "XSUB"),
    ("PUSH", "PULL"),
    ("PAIR", "PAIR"),
]
BOTH_ORDERS = sorted(set(VALID_PAIRS) | {(b, a) for a, b in VALID_PAIRS})
