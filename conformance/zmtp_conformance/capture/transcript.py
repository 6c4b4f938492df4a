"""A capture as a person reads it (`zmtp-conformance dissect`), or as JSON (`--json`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from . import pcapng, tcp
from .curvebox import CurveKeys, Opened, open_stream
from .dissect import Decoder, Item, describe
from .validator import Violation, decode_stream, validate_stream


def load_streams(path: str | Path, port: int | None = None) -> list[tcp.Stream]:
    header, records = pcapng.read_any(path)
    found = tcp.streams(records, header.linktype)
    if port is not None:
        found = [s for s in found if port in (s.client[1], s.server[1])]
    return found


def timeline(stream: tcp.Stream, c: Decoder, s: Decoder) -> list[tuple[float, str, Item]]:
    out = []
    for who, dec, direction in (("C", c, stream.to_server), ("S", s, stream.to_client)):
        for it in dec.items:
            out.append((direction.time_at(it.offset), who, it))
    out.sort(key=lambda e: (e[0], e[2].offset))
    return out


def decode(stream: tcp.Stream, keys: CurveKeys | None = None) -> tuple[Decoder, Decoder, Opened | None]:
    """A stream's two directions decoded, and its CURVE boxes opened where `keys` allow."""
    c, s = decode_stream(stream)
    opened = open_stream(c, s, keys) if keys is not None and c.mechanism == "CURVE" else None
    return c, s, opened


def render(
    streams: list[tcp.Stream], violations: dict[int, list[Violation]] | None = None, keys: CurveKeys | None = None
) -> str:
    lines: list[str] = []
    for st in streams:
        c, s, opened = decode(st, keys)
        lines.append(
            f"stream {st.index}: {st.name}  ({len(st.to_server.data)} octets C->S, {len(st.to_client.data)} S->C)"
        )
        if opened is not None:
            lines.append(
                f"  (CURVE: {opened.boxes} boxes opened"
                + (f", {opened.failed} did not open" if opened.failed else "")
                + (f"; {opened.note}" if opened.note else "")
                + ")"
            )
        t0 = st.first_seen
        for ts, who, it in timeline(st, c, s):
            arrow = "C->S" if who == "C" else "S->C"
            lines.append(f"  {(ts - t0) * 1000:9.3f} ms  {arrow}  +{it.offset:<7d} {describe(it)}")
        for d, who in ((st.to_server, "client"), (st.to_client, "server")):
            if d.gap is not None:
                lines.append(f"  (the {who}'s bytes have a hole at +{d.gap}: packets missing from the capture)")
            if d.rst:
                lines.append(f"  ({who} reset the connection)")
            elif d.fin:
                lines.append(f"  ({who} closed its side)")
        for v in (violations or {}).get(st.index, []):
            lines.append(f"  VIOLATION {v}")
        lines.append("")
    return "\n".join(lines)


def _item_json(it: Item) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for k, v in it.fields.items():
        if isinstance(v, bytes):
            fields[k] = v.hex()
        elif k == "properties":
            fields[k] = {n.decode(errors="replace"): val.hex() for n, val in v}
        else:
            fields[k] = v
    return {
        "kind": it.kind,
        "offset": it.offset,
        "length": len(it.raw),
        "flags": it.flags,
        "name": it.name or None,
        "fields": fields,
        "note": it.note or None,
        "summary": describe(it),
    }


def to_json(
    streams: list[tcp.Stream], violations: dict[int, list[Violation]] | None = None, keys: CurveKeys | None = None
) -> dict[str, Any]:
    out = []
    for st in streams:
        c, s, _ = decode(st, keys)
        out.append(
            {
                "index": st.index,
                "client": f"{st.client[0]}:{st.client[1]}",
                "server": f"{st.server[0]}:{st.server[1]}",
                "client_to_server": [_item_json(i) for i in c.items],
                "server_to_client": [_item_json(i) for i in s.items],
                "violations": [v.to_dict() for v in (violations or {}).get(st.index, [])],
            }
        )
    return {"streams": out}


def check(streams: list[tcp.Stream]) -> dict[int, list[Violation]]:
    return {st.index: validate_stream(st) for st in streams}


def throughput(path: str | Path) -> dict[str, float]:
    """How fast a capture is read, reassembled and dissected (for the docs' MB/s figure)."""
    t = time.perf_counter()
    streams = load_streams(path)
    octets = items = 0
    for st in streams:
        c, s = decode_stream(st)
        octets += len(st.to_server.data) + len(st.to_client.data)
        items += len(c.items) + len(s.items)
    dt = time.perf_counter() - t
    size = Path(path).stat().st_size
    return {
        "file_mb": size / 1e6,
        "payload_mb": octets / 1e6,
        "items": items,
        "seconds": dt,
        "mb_per_s": size / 1e6 / dt if dt else 0.0,
    }
