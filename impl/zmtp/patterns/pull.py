"""PULL (RFC 30): fair-queues messages from PUSH peers; never sends."""

from __future__ import annotations

from ..socket import Socket
from ..socket_type import SocketType


class Pull(Socket):
    type = SocketType.PULL
    can_send = False
