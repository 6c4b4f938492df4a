"""Transcripts: what each side did during a cell, with bytes in hex and decoded."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


def show(data: bytes | list[bytes]) -> str:
    """Bytes as hex and as text where printable: `68 69 |hi|`."""
    if isinstance(data, list):
        return "[" + ", ".join(show(f) for f in data) + "]"
    if len(data) > 96:
        head = show(data[:64])
        return f"{head} ... ({len(data)} octets)"
    text = "".join(chr(b) if 32 <= b < 127 else "." for b in data)
    return f"{data.hex(' ')} |{text}|" if data else "(empty)"


@dataclass
class Transcript:
    start: float = field(default_factory=time.monotonic)
    lines: list[str] = field(default_factory=list)

    def add(self, who: str, what: str, detail: str = "") -> None:
        elapsed = time.monotonic() - self.start
        self.lines.append(f"{elapsed * 1000:8.1f} ms  {who:<8} {what:<16} {detail}".rstrip())

    def text(self) -> str:
        return "\n".join(self.lines)
