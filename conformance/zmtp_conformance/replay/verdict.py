"""What a replay concludes: the verdict on each item, the report, and the comparison by meaning."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..capture.dissect import MORE, Item, decode_properties, describe

SAME, EQUIVALENT, TIMING, DIFFERS, MISSING, EXTRA, NOT_REPLAYED = (
    "same",
    "equivalent",
    "timing",
    "differs",
    "missing",
    "extra",
    "not replayed",
)
BAD = (DIFFERS, MISSING, EXTRA)


@dataclass
class Verdict:
    result: str
    captured: Item | None
    live: Item | None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        def item(it: Item | None) -> dict[str, Any] | None:
            if it is None:
                return None
            return {"offset": it.offset, "meaning": describe(it), "octets": bytes(it.raw[:256]).hex(" ")}

        return {"result": self.result, "note": self.note, "captured": item(self.captured), "live": item(self.live)}


@dataclass
class ReplayReport:
    file: str
    stream: str
    against: str
    play: str
    mechanism: str
    peer_type: str
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(v.result in BAD for v in self.verdicts)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for v in self.verdicts:
            out[v.result] = out.get(v.result, 0) + 1
        return out

    def text(self) -> str:
        peer_side = "server" if self.play == "client" else "client"
        lines = [
            f"replay {self.file} stream {self.stream}: the harness plays the {self.play}, "
            f"{self.against} the {peer_side} ({self.peer_type}, {self.mechanism})"
        ]
        for v in self.verdicts:
            what = describe(v.captured) if v.captured is not None else describe(v.live) if v.live else ""
            lines.append(f"  {v.result:<13}{what}" + (f"  ({v.note})" if v.note else ""))
            if v.result in BAD:
                lines += aligned(v.captured, v.live)
        counts = ", ".join(f"{n} {r}" for r, n in self.counts().items())
        lines.append(f"{'OK' if self.ok else 'MISMATCH'}: {counts}")
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps(
            {
                "file": self.file,
                "stream": self.stream,
                "against": self.against,
                "play": self.play,
                "mechanism": self.mechanism,
                "ok": self.ok,
                "verdicts": [v.to_dict() for v in self.verdicts],
            },
            indent=1,
        )


def aligned(captured: Item | None, live: Item | None, width: int = 16) -> list[str]:
    """Both byte runs, 16 octets a row, with ^^ under each octet that differs."""
    a = bytes(captured.raw) if captured is not None else b""
    b = bytes(live.raw) if live is not None else b""
    out = [
        f"      captured: {describe(captured) if captured is not None else '(nothing)'}",
        f"      live:     {describe(live) if live is not None else '(nothing)'}",
    ]
    for row in range(0, min(max(len(a), len(b)), 256), width):
        ca, cb = a[row : row + width], b[row : row + width]
        marks = "".join(
            "^^ " if i >= len(ca) or i >= len(cb) or ca[i] != cb[i] else "   " for i in range(max(len(ca), len(cb)))
        )
        out.append(f"      +{row:<4d} captured {ca.hex(' ')}")
        out.append(f"            live     {cb.hex(' ')}")
        if marks.strip():
            out.append(f"                     {marks.rstrip()}")
    return out


def is_heartbeat(it: Item) -> bool:
    return it.kind == "command" and it.name in ("PING", "PONG")


def properties(it: Item) -> dict[str, bytes]:
    props = it.fields.get("properties")
    if props is None:
        props, _ = decode_properties(bytes(it.body))
    out = {bytes(k).decode(errors="replace").lower(): bytes(v) for k, v in props}
    if out.get("identity") == b"":
        del out["identity"]  # an empty Identity says the same as none
    return out


def compare(captured: Item, live: Item, mechanism: str) -> tuple[str, str]:
    """Whether the live item says what the captured one said; with why, when not by identical octets."""
    if bytes(captured.raw) == bytes(live.raw):
        return SAME, ""
    if captured.kind != live.kind:
        return DIFFERS, f"a {live.kind} where the capture has a {captured.kind}"
    if captured.kind == "greeting":
        cf, lf = captured.fields, live.fields
        for key in ("version", "mechanism", "as_server"):
            if cf[key] != lf[key]:
                return DIFFERS, f"{key} {lf[key]!r}, captured {cf[key]!r}"
        if bytes(cf["filler"]) != bytes(lf["filler"]):
            return DIFFERS, "filler differs"
        return EQUIVALENT, "signature padding differs (not significant, RFC 23)"
    if captured.kind == "command":
        if captured.name != live.name:
            return DIFFERS, f"{live.name} where the capture has {captured.name}"
        if mechanism == "CURVE" and captured.name in ("HELLO", "WELCOME", "INITIATE", "READY", "MESSAGE"):
            if len(captured.raw) == len(live.raw):
                return EQUIVALENT, "same size; boxes differ (fresh transient keys and nonces)"
            return DIFFERS, f"{len(live.raw)} octets, captured {len(captured.raw)}"
        if captured.name in ("READY", "INITIATE"):
            cp, lp = properties(captured), properties(live)
            if cp == lp:
                return EQUIVALENT, "same properties, in another order, case or Identity form"
            diff = sorted(k for k in cp.keys() | lp.keys() if cp.get(k) != lp.get(k))
            return DIFFERS, "properties differ: " + ", ".join(
                f"{k}={lp.get(k)!r} (captured {cp.get(k)!r})" for k in diff
            )
        return DIFFERS, "command data differs"
    if captured.kind == "frame":
        if mechanism == "CURVE" and bytes(captured.body[:8]) == b"\x07MESSAGE":
            if len(captured.raw) == len(live.raw):
                return EQUIVALENT, "same size; box differs (fresh keys and nonces)"
            return DIFFERS, f"MESSAGE of {len(live.raw)} octets, captured {len(captured.raw)}"
        if (captured.flags or 0) & MORE != (live.flags or 0) & MORE:
            return DIFFERS, "MORE flag differs"
        if bytes(captured.body) == bytes(live.body):
            return EQUIVALENT, "same body, other size encoding (short vs long)"
        return DIFFERS, "frame body differs"
    return DIFFERS, "octets differ"
