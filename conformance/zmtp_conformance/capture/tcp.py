"""TCP streams from captured packets: headers parsed by hand, each direction reassembled by sequence number.

The side that sent the first SYN is the client. Retransmitted and
out-of-order segments are put in their place; a hole that is never filled
is reported, and the stream's bytes stop before it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from .pcap import LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_LINUX_SLL, LINKTYPE_NULL, LINKTYPE_RAW, Record

SYN, FIN, RST = 0x02, 0x01, 0x04


@dataclass(frozen=True, slots=True)
class Segment:
    timestamp: float
    src: tuple[str, int]
    dst: tuple[str, int]
    seq: int
    flags: int
    payload: bytes | memoryview


@lru_cache(maxsize=1024)
def _ip_text(raw: bytes) -> str:
    if len(raw) == 4:
        return ".".join(str(b) for b in raw)
    import ipaddress

    return str(ipaddress.IPv6Address(raw))


def _ip(version: int, raw: bytes) -> str:
    # A capture holds a handful of addresses in every packet: each is spelled out once.
    return _ip_text(bytes(raw))


def _network(data: bytes, linktype: int) -> tuple[int, str, str, int, int] | None:
    """(IP protocol, source, destination, transport header offset, end of the IP payload), or None."""
    if linktype == LINKTYPE_ETHERNET:
        if len(data) < 14:
            return None
        ethertype = (data[12] << 8) | data[13]
        off = 14
        if ethertype == 0x8100:  # VLAN tag
            if len(data) < 18:
                return None
            ethertype, off = (data[16] << 8) | data[17], 18
        if ethertype not in (0x0800, 0x86DD):
            return None
    elif linktype == LINKTYPE_LINUX_SLL:
        off = 16
    elif linktype == LINKTYPE_NULL:
        off = 4
    elif linktype in (LINKTYPE_RAW, LINKTYPE_IPV4, 12):
        off = 0
    else:
        return None
    if len(data) < off + 20:
        return None
    version = data[off] >> 4
    if version == 4:
        ihl = (data[off] & 0x0F) * 4
        total = (data[off + 2] << 8) | data[off + 3]
        src, dst = _ip(4, data[off + 12 : off + 16]), _ip(4, data[off + 16 : off + 20])
        return data[off + 9], src, dst, off + ihl, off + total if total else len(data)
    if version == 6:
        if len(data) < off + 40:  # a packet cut inside its IPv6 header
            return None
        # No extension headers on loopback captures.
        plen = (data[off + 4] << 8) | data[off + 5]
        src, dst = _ip(6, data[off + 8 : off + 24]), _ip(6, data[off + 24 : off + 40])
        return data[off + 6], src, dst, off + 40, off + 40 + plen
    return None


def parse(data: bytes, linktype: int, timestamp: float = 0.0) -> Segment | None:
    """The TCP segment in one captured packet, or None for anything else."""
    f = _fields(data, linktype)
    return None if f is None else Segment(timestamp, *f)


def _fields(data: bytes, linktype: int) -> tuple[tuple[str, int], tuple[str, int], int, int, bytes | memoryview] | None:
    """A segment's (source, destination, seq, flags, payload): `parse` without the object, for `streams`."""
    net = _network(data, linktype)
    if net is None or net[0] != 6:
        return None
    _, src, dst, tcp_off, end = net
    if len(data) < tcp_off + 20:
        return None
    sport, dport, seq = _PORTS_SEQ(data, tcp_off)
    doff = (data[tcp_off + 12] >> 4) * 4
    start, stop = tcp_off + doff, min(end, len(data))
    return (src, sport), (dst, dport), seq, data[tcp_off + 13], memoryview(data)[start:stop] if start < stop else b""


_PORTS_SEQ = struct.Struct("!HHI").unpack_from


def parse_udp(data: bytes, linktype: int) -> bytes | None:
    """The payload of a UDP datagram (the sniffer's markers), or None for anything else."""
    net = _network(data, linktype)
    if net is None or net[0] != 17 or len(data) < net[3] + 8:
        return None
    return bytes(data[net[3] + 8 : min(net[4], len(data))])


def ports(data: bytes, linktype: int) -> tuple[int, int] | None:
    """(source port, destination port) of a TCP packet, without building a Segment."""
    net = _network(data, linktype)
    if net is None or net[0] != 6 or len(data) < net[3] + 4:
        return None
    return struct.unpack_from("!HH", data, net[3])


@dataclass
class Direction:
    """The bytes one side sent, in order, with when each piece was first seen."""

    isn: int | None = None
    data: bytearray = field(default_factory=bytearray)
    pending: dict[int, bytes | memoryview] = field(default_factory=dict)  # out-of-order segments by stream offset
    times: list[tuple[int, float]] = field(default_factory=list)  # (offset, timestamp) of each piece
    retransmissions: int = 0
    fin: bool = False
    rst: bool = False

    def add(self, seg: Segment) -> None:
        self._add(seg.seq, seg.flags, seg.payload, seg.timestamp)

    def _add(self, seq: int, flags: int, payload: bytes | memoryview, timestamp: float) -> None:
        if flags & SYN:
            self.isn = (seq + 1) & 0xFFFFFFFF
        if self.isn is None:
            self.isn = seq  # capture began mid-stream
        if flags & FIN:
            self.fin = True
        if flags & RST:
            self.rst = True
        if not payload:
            return
        off = (seq - self.isn) & 0xFFFFFFFF
        have = len(self.data)
        if off == have and not self.pending:  # the usual case: the next segment, in order
            self.times.append((have, timestamp))
            self.data += payload
            return
        if off + len(payload) <= have or off in self.pending:
            self.retransmissions += 1
            return
        if off > have:
            self.pending[off] = payload
            return
        self.times.append((have, timestamp))
        self.data += payload[have - off :]
        while self.pending:
            have = len(self.data)
            ready = [o for o in self.pending if o <= have]
            if not ready:
                break
            for o in sorted(ready):
                piece = self.pending.pop(o)
                if o + len(piece) > len(self.data):
                    self.data += piece[len(self.data) - o :]

    @property
    def gap(self) -> int | None:
        """Offset of the first hole never filled, if any."""
        return len(self.data) if self.pending else None

    def time_at(self, offset: int) -> float:
        t = 0.0
        for o, ts in self.times:
            if o > offset:
                break
            t = ts
        return t


@dataclass
class Stream:
    index: int
    client: tuple[str, int]
    server: tuple[str, int]
    first_seen: float
    to_server: Direction = field(default_factory=Direction)
    to_client: Direction = field(default_factory=Direction)
    saw_syn: bool = False

    @property
    def name(self) -> str:
        return f"{self.client[0]}:{self.client[1]} -> {self.server[0]}:{self.server[1]}"


def streams(records: Iterable[Record], linktype: int) -> list[Stream]:
    """Every TCP stream in the records, in order of first appearance."""
    by_key: dict[tuple[tuple[str, int], tuple[str, int]], Stream] = {}
    out: list[Stream] = []
    for rec in records:
        f = _fields(rec.data, linktype)
        if f is None:
            continue
        src, dst, seq, flags, payload = f
        key = (src, dst) if src <= dst else (dst, src)
        st = by_key.get(key)
        if st is None or (flags & SYN and not flags & 0x10 and st.saw_syn and st.to_server.data):
            # A new SYN on a 4-tuple already used starts a new stream (port reuse).
            client, server = (src, dst)
            if not flags & SYN and src[1] < dst[1]:
                client, server = dst, src  # no SYN seen: guess the ephemeral port is the client's
            st = Stream(len(out), client, server, rec.timestamp, saw_syn=bool(flags & SYN))
            by_key[key] = st
            out.append(st)
        (st.to_server if src == st.client else st.to_client)._add(seq, flags, payload, rec.timestamp)
    return out
