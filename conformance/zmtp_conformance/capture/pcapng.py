"""Reading pcapng, Wireshark's default format, through scapy; and telling it from classic pcap.

Field captures come from Wireshark and dumpcap, which write pcapng. Its
blocks (sections, interfaces, packets with options) are parsed by scapy's
raw reader; classic pcap keeps its own fast reader (`pcap`). Either way the
result is the same records and header, so `tcp` and everything above it
do not care which format a capture came in.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .pcap import Header, PcapError, Record
from .pcap import read as read_pcap

MAGIC = b"\x0a\x0d\x0d\x0a"  # the type of a Section Header Block, the first block of every pcapng file
# scapy cuts packets at 65535 octets unless told otherwise; a loopback frame can be 65550.
LARGEST_PACKET = 1 << 20


def is_pcapng(path: str | Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == MAGIC


def read(path: str | Path) -> tuple[Header, list[Record]]:
    """A pcapng file's packets, as classic pcap records with one header.

    Raises PcapError for a file that is not pcapng, for a missing scapy, and
    for packets from interfaces of different link types (which one header
    cannot describe). Stops quietly at a block cut short, as `pcap.read` does.
    """
    name = str(path)
    try:
        from scapy.error import Scapy_Exception
        from scapy.utils import RawPcapNgReader
    except ImportError:
        raise PcapError(
            f"{name} is pcapng, which is read with scapy: pip install scapy "
            "(or convert the file: editcap -F pcap IN OUT)"
        ) from None
    # scapy logs what it skips (a truncated last block, an unknown option) as warnings on stderr.
    scapy_log = logging.getLogger("scapy")
    level = scapy_log.level
    scapy_log.setLevel(logging.ERROR)
    try:
        try:
            reader = RawPcapNgReader(name)
        except Scapy_Exception as exc:
            raise PcapError(f"{name}: not a readable pcapng file ({exc})") from None
        if not isinstance(reader, RawPcapNgReader):  # scapy falls back to its classic pcap reader
            reader.close()
            raise PcapError(f"{name}: not a pcapng file (magic {MAGIC.hex()} expected)")
        records: list[Record] = []
        linktypes: dict[int, int] = {}  # link type -> packets
        snaplen = 0
        try:
            while True:
                try:
                    # scapy's own advice: the raw reader's public read_packet() is disabled; _read_packet() it is.
                    data, meta = reader._read_packet(size=LARGEST_PACKET)
                except EOFError:
                    break
                linktypes[meta.linktype] = linktypes.get(meta.linktype, 0) + 1
                ts = ((meta.tshigh << 32) | meta.tslow) / meta.tsresol
                records.append(Record(ts, bytes(data), meta.wirelen))
            snaplen = max((iface[1] for iface in reader.interfaces), default=0)
            nanoseconds = any(iface[2].get("tsresol", 1_000_000) > 1_000_000 for iface in reader.interfaces)
            endian = "<" if reader.endian == "<" else ">"
        finally:
            reader.close()
    finally:
        scapy_log.setLevel(level)
    if len(linktypes) > 1:
        counts = ", ".join(f"link type {lt}: {n} packets" for lt, n in sorted(linktypes.items()))
        raise PcapError(
            f"{name}: packets from interfaces of different link types ({counts}); keep one interface, "
            "e.g. tshark -r IN -Y 'frame.interface_id == 0' -w OUT"
        )
    linktype = next(iter(linktypes), 1)
    return Header(endian, nanoseconds, snaplen, linktype), records


def read_any(path: str | Path) -> tuple[Header, list[Record]]:
    """A capture in either format, told apart by its first four octets."""
    if is_pcapng(path):
        return read(path)
    return read_pcap(path)
