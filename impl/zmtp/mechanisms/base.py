"""What a security mechanism is, to the connection (RFC 23, "Authentication and Confidentiality").

A mechanism sees the commands of the handshake and answers with commands of
its own. When it is done it hands over the peer's metadata. Mechanisms that
encrypt (CURVE) also wrap and unwrap every frame of the traffic phase.
"""

from __future__ import annotations

from collections.abc import Callable

from ..bugs import NO_BUGS, ProtocolBugs
from ..metadata import Metadata

# Called with the peer's metadata as soon as it is known, before we answer:
# raises HandshakeError (whose text becomes the ERROR reason) to refuse.
PeerCheck = Callable[[Metadata], None]


class Mechanism:
    name: str = ""
    encrypts: bool = False

    def __init__(
        self,
        *,
        as_server: bool,
        local_metadata: list[tuple[str, bytes]],
        check_peer: PeerCheck,
        bugs: ProtocolBugs = NO_BUGS,
    ) -> None:
        self.as_server = as_server
        self.local_metadata = local_metadata
        self.check_peer = check_peer
        self.bugs = bugs
        self.outgoing: list[bytes] = []  # encoded command frames waiting to be sent
        self.peer_metadata: Metadata | None = None  # set when the handshake is complete
        self.complete = False

    def start(self) -> None:
        """Called once both greetings are in; may queue the first command."""

    def receive_command(self, name: bytes, data: bytes) -> None:
        """One handshake command from the peer."""
        raise NotImplementedError
