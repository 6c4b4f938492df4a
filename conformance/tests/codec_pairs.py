"""Helpers for tests that run two raw codecs against each other in memory."""

from __future__ import annotations

from zmtp_conformance import rawcodec


def pump(a: rawcodec.Codec, b: rawcodec.Codec) -> None:
    """Pass what each side has to send to the other until both are quiet (at most ten rounds)."""
    for _ in range(10):
        out_a, out_b = a.data_to_send(), b.data_to_send()
        if not out_a and not out_b:
            return
        b.receive(out_a)
        a.receive(out_b)
