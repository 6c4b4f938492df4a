"""Replaying one side of a capture against a live peer, and comparing what it sends back.

`zmtp-conformance replay FILE.pcap --against PEER` takes one TCP stream of
the capture (pcap or pcapng). The harness plays one side (the client by default) and the
live peer, driven by its agent, plays the other with the socket type,
mechanism and credentials the capture shows. Then, item by item in the
order of the capture:

- what the played side sent goes out again, byte for byte;
- what the peer's side sent is read from the live peer and compared:
  *same* (identical octets), *equivalent* (different octets with the same
  meaning: READY properties in another order or case, the greeting's
  signature padding, CURVE boxes made with fresh keys and nonces),
  *differs*, *missing* (the live peer did not send it) or *extra* (it sent
  more than the capture holds).

The live peer's application part (a REP replying, a PUB publishing, a SUB
subscribing) is driven through its agent from what the captured messages
show, so the wire traffic has the same cause as in the capture.

CURVE: the played side cannot resend its captured boxes (they were made for
another server's transient key), so the harness runs its own handshake with
the keys the manifest (or the command line) gives and compares the peer's
handshake commands by name and size. The messages after the handshake are
replayed inside fresh boxes and compared as plaintext when a key log opens
the captured ones (docs/captures.md); without one they are reported as not
replayed.

The parts: `verdict` (results and the comparison), `live` (the live peer's
bytes), `application` (driving the live peer's application), `session`
(one replay).
"""

from .session import PATIENCE, Replay, ReplayError, replay
from .verdict import (
    BAD,
    DIFFERS,
    EQUIVALENT,
    EXTRA,
    MISSING,
    NOT_REPLAYED,
    SAME,
    TIMING,
    ReplayReport,
    Verdict,
    aligned,
    compare,
)

__all__ = [
    "BAD",
    "DIFFERS",
    "EQUIVALENT",
    "EXTRA",
    "MISSING",
    "NOT_REPLAYED",
    "PATIENCE",
    "SAME",
    "TIMING",
    "Replay",
    "ReplayError",
    "ReplayReport",
    "Verdict",
    "aligned",
    "compare",
    "replay",
]
