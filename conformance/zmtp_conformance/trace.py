"""Transcripts and stopwatches: what each side did during a cell, with bytes in hex and decoded,
and where the cell's time went."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
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


class Stopwatch:
    """Where a cell's time went: seconds per phase, each moment charged to exactly one phase.

    Phases nest (the agents a setup starts are charged to "agents", the rest of the setup to
    "setup"), so the phases of a cell add up to its duration and a run's totals say what to cut.
    """

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}
        self._phase: str | None = None
        self._since = time.monotonic()

    def switch(self, phase: str | None) -> str | None:
        """Charge the time since the last switch to the current phase; `phase` is current from now."""
        now = time.monotonic()
        if self._phase is not None:
            self.spent[self._phase] = self.spent.get(self._phase, 0.0) + now - self._since
        previous, self._phase, self._since = self._phase, phase, now
        return previous

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        outer = self.switch(name)
        try:
            yield
        finally:
            self.switch(outer)
