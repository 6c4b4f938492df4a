"""The context: a factory and owner of sockets, of the tcp listeners they share, and of the ZAP handler."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .listener import ListenerRegistry
from .options import SocketOptions
from .patterns import SOCKET_CLASSES
from .socket import Socket
from .socket_type import SocketType
from .zap import ZapHandler

if TYPE_CHECKING:
    from .metrics import Metrics


class Context:
    def __init__(self, metrics: Metrics | None = None) -> None:
        self._sockets: set[Socket] = set()
        self._terminated = False
        self.zap_handler: ZapHandler | None = None
        self.metrics = metrics  # zmtp.Metrics: every socket made here reports to it
        self.listeners: ListenerRegistry = {}  # by (host, port): what lets this context's sockets share ports

    def set_zap_handler(self, handler: ZapHandler | None) -> None:
        """Install the ZAP handler (RFC 27) every server socket of this context asks."""
        if handler is not None and not callable(getattr(handler, "authenticate", None)):
            raise TypeError("a ZAP handler needs an async authenticate(request) method")
        self.zap_handler = handler

    def socket(self, socket_type: SocketType | str, options: SocketOptions | None = None) -> Socket:
        """A new socket of `socket_type` (a constant such as zmtp.REQ, or its name)."""
        if self._terminated:
            from .errors import SocketClosed

            raise SocketClosed("the context has been terminated")
        cls = SOCKET_CLASSES[SocketType.parse(socket_type)]
        sock = cls(self, options)
        self._sockets.add(sock)
        return sock

    def _forget(self, sock: Socket) -> None:
        self._sockets.discard(sock)

    async def term(self) -> None:
        """Close every socket of this context (each lingers as its options say)."""
        self._terminated = True
        for sock in list(self._sockets):
            await sock.close()

    async def __aenter__(self) -> Context:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.term()
