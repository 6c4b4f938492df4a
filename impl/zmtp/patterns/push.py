"""PUSH (RFC 30): round-robin to PULL peers; never receives."""

from __future__ import annotations

from ..socket_type import SocketType
from .loadbalance import LoadBalanced


class Push(LoadBalanced):
    type = SocketType.PUSH
    can_recv = False
