"""DEALER (RFC 28): round-robin out, fair-queue in, no envelope handling."""

from __future__ import annotations

from ..socket_type import SocketType
from .loadbalance import LoadBalanced


class Dealer(LoadBalanced):
    type = SocketType.DEALER
