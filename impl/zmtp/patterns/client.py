"""CLIENT (RFC 47): round-robin out, fair-queue in, single-part, to SERVER peers.

A DEALER without multipart: sending waits while no peer can take the
message, and nothing is ever dropped on the way out.
"""

from __future__ import annotations

from ..socket_type import SocketType
from .loadbalance import LoadBalanced
from .threadsafe import SinglePart


class Client(SinglePart, LoadBalanced):
    type = SocketType.CLIENT
