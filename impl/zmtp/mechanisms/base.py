"""What a security mechanism is, to the connection (RFC 23, "Authentication and Confidentiality").

A mechanism sees the commands of the handshake and answers with commands of
its own. When it is done it hands over the peer's metadata. A server-side
mechanism may ask for a ZAP decision (`pending_zap`); the connection reports
it and hands the answer back through `zap_result`. Mechanisms that encrypt
(CURVE) also wrap and unwrap every frame of the traffic phase.

A server on an endpoint shared by several services (RFC 37's Resource)
does not know, when the peer's metadata arrives, which socket it speaks for:
with `hold_for_service` the mechanism keeps that metadata unchecked, goes on
to ZAP, and stops just before its own READY (`pending_service`) until the
connection tells it the service was found (`service_found`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .. import command
from ..bugs import NO_BUGS, ProtocolBugs
from ..errors import AuthenticationFailed, HandshakeError, PeerRefused, ProtocolError
from ..frame import COMMAND, MORE
from ..metadata import Metadata
from ..zap import SUCCESS, TEMPORARY, ZapRequest, ZapResponse

# Called with the peer's metadata as soon as it is known, before we answer:
# raises HandshakeError (whose text becomes the ERROR reason) to refuse.
PeerCheck = Callable[[Metadata], None]

# A mechanism that encrypts carries each frame's flags inside its box (RFC 26: MORE 01,
# COMMAND 02); these are the frame flags they stand for, by their value.
FRAME_FLAGS = (0, MORE, COMMAND, MORE | COMMAND)


@dataclass(frozen=True)
class ZapSettings:
    """What a server needs to build ZAP requests; None on a socket without a handler."""

    domain: str
    address: str
    identity: bytes


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
        zap: ZapSettings | None = None,
        hold_for_service: bool = False,
    ) -> None:
        self.as_server = as_server
        self.hold_for_service = hold_for_service and as_server
        self.local_metadata = local_metadata
        self.check_peer = check_peer
        self.bugs = bugs
        self.zap = zap
        self.outgoing: list[bytes] = []  # encoded command frames waiting to be sent
        self.peer_metadata: Metadata | None = None  # set when the handshake is complete
        self.complete = False
        self.pending_zap: ZapRequest | None = None
        self.user_id = ""  # from a successful ZAP reply
        self.zap_metadata: dict[str, bytes] = {}
        self.pending_service: Metadata | None = None  # the peer's metadata, while no service is chosen
        self._unchecked: Metadata | None = None
        self._answer: Callable[[], None] | None = None

    def accept_metadata(self, metadata: Metadata) -> None:
        """Check the peer's metadata; a server refusing it answers ERROR first (RFC 37).

        A client has already sent its own READY/INITIATE by then, and the
        handshake grammars leave it no ERROR to send, so it just closes.
        Holding for a service, the check waits for it: the Socket-Type to
        check against is the serving socket's.
        """
        if self.hold_for_service:
            self._unchecked = metadata
            return
        self._check_metadata(metadata)

    def _check_metadata(self, metadata: Metadata) -> None:
        try:
            self.check_peer(metadata)
        except HandshakeError as exc:
            if self.as_server:
                self.outgoing.append(command.error(getattr(exc, "wire_reason", "Invalid-metadata")))
            raise
        self.peer_metadata = metadata

    def answer_when_served(self, answer: Callable[[], None]) -> None:
        """Run `answer` (the server's READY) now, or, holding for a service, once it is found."""
        if not self.hold_for_service:
            answer()
            return
        assert self._unchecked is not None, "the server answers only after the peer's metadata"
        self._answer = answer
        self.pending_service = self._unchecked

    def service_found(self) -> None:
        """The connection now speaks for the socket that serves the peer (its local_metadata
        and check_peer say so): check the peer against it, and answer."""
        metadata, answer = self.pending_service, self._answer
        assert metadata is not None and answer is not None, "no service is pending"
        self.pending_service = self._unchecked = self._answer = None
        self.hold_for_service = False
        self._check_metadata(metadata)
        answer()

    def check_error(self, name: bytes, data: bytes) -> None:
        """An ERROR in a PLAIN or CURVE handshake: fatal from a server, illegal from a client."""
        if name != command.ERROR:
            return
        if self.as_server:
            raise ProtocolError(f"a {self.name} client never sends ERROR", clause=f"{self.name} handshake grammar")
        raise PeerRefused(command.parse_error(data))

    def start(self) -> None:
        """Called once both greetings are in; may queue the first command."""

    def receive_command(self, name: bytes, data: bytes) -> None:
        """One handshake command from the peer."""
        raise NotImplementedError

    def request_zap(self, credentials: tuple[bytes, ...] = ()) -> None:
        assert self.zap is not None
        self.pending_zap = ZapRequest(
            domain=self.zap.domain,
            address=self.zap.address,
            identity=self.zap.identity,
            mechanism=self.name,
            credentials=credentials,
        )

    def zap_result(self, response: ZapResponse) -> None:
        """Apply a ZAP answer: remember who the peer is, or refuse it (RFC 27).

        300 closes without ERROR, as libzmq does (a temporary failure the
        client may retry); 400 and 500 answer ERROR with the status code.
        """
        if response.status_code == SUCCESS or self.bugs.zap_ignore_refusal:
            self.user_id = response.user_id
            self.zap_metadata = dict(response.metadata)
            self.zap_accepted()
            return
        if response.status_code == TEMPORARY:
            sends_error = self.bugs.zap_error_on_temporary
        else:
            sends_error = not self.bugs.zap_no_error_on_refusal
        if sends_error:
            self.outgoing.append(command.error(str(response.status_code)))
        raise AuthenticationFailed(response.status_code, response.status_text)

    def zap_accepted(self) -> None:
        """Continue the handshake after a ZAP success."""
        raise NotImplementedError
