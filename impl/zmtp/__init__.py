"""zmtp: a reference implementation of ZMTP 3.1 (RFC 37) and 3.0 (RFC 23) in pure Python,
with the draft socket types CLIENT/SERVER, RADIO/DISH and SCATTER/GATHER (RFC 47-49).

The wire protocol lives in a sans-I/O core (`zmtp.connection` and the
modules it uses: greeting, frame, command, metadata, mechanisms); the
asyncio layer (`Context`, `Socket` and the patterns) runs it over tcp:// and
ipc://.
"""

from .bugs import ProtocolBugs
from .connection import Connection
from .context import Context
from .errors import (
    Again,
    AuthenticationFailed,
    HandshakeError,
    HandshakeTimeout,
    HeartbeatTimeout,
    HostUnreachable,
    InvalidState,
    MessageTooLarge,
    NotSupported,
    PeerRefused,
    ProtocolError,
    SecurityMismatch,
    SocketClosed,
    ZMTPError,
)
from .keys import CurveKeyPair
from .limits import FdLimitError, ensure_fd_limit
from .metadata import Metadata
from .metrics import Metrics
from .monitor import EventKind, HandshakeFailure, Monitor, SocketEvent
from .options import SocketOptions
from .socket import Socket
from .socket_type import SocketType
from .zap import ZapHandler, ZapRequest, ZapResponse

__version__ = "0.1.0"

PAIR = SocketType.PAIR
PUB = SocketType.PUB
SUB = SocketType.SUB
REQ = SocketType.REQ
REP = SocketType.REP
DEALER = SocketType.DEALER
ROUTER = SocketType.ROUTER
PULL = SocketType.PULL
PUSH = SocketType.PUSH
XPUB = SocketType.XPUB
XSUB = SocketType.XSUB
CLIENT = SocketType.CLIENT
SERVER = SocketType.SERVER
RADIO = SocketType.RADIO
DISH = SocketType.DISH
SCATTER = SocketType.SCATTER
GATHER = SocketType.GATHER

__all__ = [
    "CLIENT",
    "DEALER",
    "DISH",
    "GATHER",
    "PAIR",
    "PUB",
    "PULL",
    "PUSH",
    "RADIO",
    "REP",
    "REQ",
    "ROUTER",
    "SCATTER",
    "SERVER",
    "SUB",
    "XPUB",
    "XSUB",
    "Again",
    "AuthenticationFailed",
    "Connection",
    "Context",
    "CurveKeyPair",
    "EventKind",
    "FdLimitError",
    "HandshakeError",
    "HandshakeFailure",
    "HandshakeTimeout",
    "HeartbeatTimeout",
    "HostUnreachable",
    "InvalidState",
    "MessageTooLarge",
    "Metadata",
    "Metrics",
    "Monitor",
    "NotSupported",
    "PeerRefused",
    "ProtocolBugs",
    "ProtocolError",
    "SecurityMismatch",
    "Socket",
    "SocketClosed",
    "SocketEvent",
    "SocketOptions",
    "SocketType",
    "ZMTPError",
    "ZapHandler",
    "ZapRequest",
    "ZapResponse",
    "__version__",
    "ensure_fd_limit",
]
