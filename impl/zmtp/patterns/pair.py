"""PAIR (RFC 31): exactly one peer at a time; a second one is refused."""

from __future__ import annotations

import logging

from ..pipe import Pipe
from ..socket_type import SocketType
from .loadbalance import LoadBalanced

log = logging.getLogger(__name__)


class Pair(LoadBalanced):
    type = SocketType.PAIR

    def pipe_attached(self, pipe: Pipe) -> bool:
        if self.options.bugs.pair_accept_second_peer:
            return True
        others = [p for p in self._pipes if p is not pipe and (p.live or p.persistent)]
        if any(p.live for p in others):
            log.warning("PAIR already has a peer; refusing %s", pipe.peer_address)
            return False
        return True
