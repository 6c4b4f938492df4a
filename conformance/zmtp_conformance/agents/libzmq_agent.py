"""Agent for libzmq, through pyzmq (whichever libzmq pyzmq is linked with).

python -m zmtp_conformance.agents.libzmq_agent
"""

from __future__ import annotations

import asyncio
from typing import Any

import zmq
import zmq.asyncio

from .. import protocol
from .base import SocketTableAgent
from .loop import Unsupported, run

SECONDS_TO_MS = {
    "heartbeat_ivl",
    "heartbeat_ttl",
    "heartbeat_timeout",
    "reconnect_ivl",
    "reconnect_ivl_max",
    "handshake_timeout",
    "connect_timeout",
    "linger",
}
# zmtp option name -> libzmq option name, where they differ.
RENAMES = {
    "handshake_timeout": "HANDSHAKE_IVL",
    "max_msg_size": "MAXMSGSIZE",
    "routing_id": "ROUTING_ID",
}
BYTES_OPTIONS = {"routing_id"}
TEXT_OPTIONS = {
    "plain_username",
    "plain_password",
    "curve_secretkey",
    "curve_publickey",
    "curve_serverkey",
    "zap_domain",
}
BOOL_OPTIONS = {
    "plain_server",
    "curve_server",
    "router_mandatory",
    "router_handover",
    "req_relaxed",
    "req_correlate",
    "xpub_verbose",
    "immediate",
    "tcp_keepalive",
}
UNSUPPORTED = {"allow_legacy", "send_buffer_size", "recv_buffer_size", "metadata", "tcp_nodelay"}


class LibzmqAgent(SocketTableAgent):
    def __init__(self) -> None:
        self.ctx = zmq.asyncio.Context()
        super().__init__()
        self._poker: asyncio.Task[None] | None = None
        self._auth: Any = None
        self._busy: set[str] = set()  # sockets with a send or recv in progress

    async def _poke(self) -> None:
        # libzmq attaches new pipes only when the application calls into the
        # socket; an agent idle between requests would hide subscriptions a
        # bound SUB owes its new peers. Poll like a live application does.
        while True:
            await asyncio.sleep(0.01)
            for name, sock in list(self.sockets.items()):
                # Never touch a socket with a send or recv waiting on it:
                # reading ZMQ_EVENTS resets the edge-triggered ZMQ_FD that
                # pyzmq's asyncio future is waiting for, and it would stall.
                if name in self._busy:
                    continue
                try:
                    sock.getsockopt(zmq.EVENTS)
                except zmq.ZMQError:
                    pass

    async def op_hello(self) -> dict[str, Any]:
        return {
            "peer": "libzmq",
            "protocol": protocol.PROTOCOL_VERSION,
            "versions": {"libzmq": zmq.zmq_version(), "pyzmq": zmq.__version__},
        }

    async def op_send(self, socket: str, frames: list[str], timeout: float = 5.0) -> dict:
        self._busy.add(socket)
        try:
            return await super().op_send(socket, frames, timeout)
        finally:
            self._busy.discard(socket)

    async def op_recv(self, socket: str, timeout: float = 2.0) -> dict:
        self._busy.add(socket)
        try:
            return await super().op_recv(socket, timeout)
        finally:
            self._busy.discard(socket)

    async def op_zap(self, users: dict[str, str] | None = None, curve_keys: list[str] | None = None) -> dict:
        """Start pyzmq's ZAP authenticator with these PLAIN users and CURVE keys (None: any key)."""
        from zmq.auth.asyncio import AsyncioAuthenticator

        if self._auth is None:
            self._auth = AsyncioAuthenticator(self.ctx)
            self._auth.start()
        self._auth.configure_plain(domain="*", passwords=dict(users or {}))
        allowed = None if curve_keys is None else {k.encode() for k in curve_keys}

        class Keys:
            def callback(self, domain: str, key: bytes) -> bool:
                return allowed is None or key in allowed

        self._auth.configure_curve_callback(domain="*", credentials_provider=Keys())
        return {}

    async def op_socket(self, type: str, options: dict[str, Any] | None = None, mechanism: str = "NULL") -> dict:
        if mechanism not in ("NULL", "PLAIN", "CURVE"):
            raise Unsupported(f"mechanism {mechanism} is not supported by libzmq")
        try:
            sock = self.ctx.socket(getattr(zmq, type.upper()))
        except AttributeError:
            raise Unsupported(f"socket type {type} is unknown to pyzmq") from None
        sock.linger = 0
        for key, value in (options or {}).items():
            if key in UNSUPPORTED:
                raise Unsupported(f"option {key!r} has no libzmq equivalent in this agent")
            name = RENAMES.get(key, key.upper())
            opt = getattr(zmq, name, None)
            if opt is None:
                raise Unsupported(f"option {key!r} is unknown to libzmq")
            if key in SECONDS_TO_MS and value is not None:
                value = int(value * 1000)
            elif key in BYTES_OPTIONS:
                value = bytes.fromhex(value)
            elif key in TEXT_OPTIONS:
                value = value.encode()
            elif key in BOOL_OPTIONS:
                value = int(bool(value))
            elif key == "max_msg_size" and value is None:
                value = -1
            sock.setsockopt(opt, value)
        answer = self._add(sock)
        if self._poker is None:
            self._poker = asyncio.get_running_loop().create_task(self._poke())
        return answer

    async def op_bind(self, socket: str, endpoint: str) -> dict:
        sock = self._sock(socket)
        sock.bind(endpoint)
        return {"endpoint": sock.last_endpoint.decode()}

    async def op_connect(self, socket: str, endpoint: str) -> dict:
        self._sock(socket).connect(endpoint)
        return {}

    async def op_close(self, socket: str) -> dict:
        sock = self.sockets.pop(socket, None)
        if sock is not None:
            sock.close(0)
        return {}

    async def op_quit(self) -> dict:
        if self._auth is not None:
            self._auth.stop()
        self.ctx.destroy(0)
        return {}


def main() -> None:
    run(LibzmqAgent)


if __name__ == "__main__":
    main()
