"""Agent for libzmq, through pyzmq (whichever libzmq pyzmq is linked with).

python -m zmtp_conformance.agents.libzmq_agent
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import zmq
import zmq.asyncio
from zmq.utils import z85

from .. import protocol
from .base import EventLog, SocketTableAgent, latency_summary
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

# libzmq monitor events -> the control protocol's event names (and failure class).
# EVENT_CLOSED is libzmq closing one file descriptor, not the socket; CONNECT_DELAYED
# is internal bookkeeping: neither has a counterpart.
EVENT_NAMES: dict[int, tuple[str, str | None]] = {
    zmq.EVENT_LISTENING: ("listening", None),
    zmq.EVENT_BIND_FAILED: ("bind_failed", None),
    zmq.EVENT_ACCEPTED: ("accepted", None),
    zmq.EVENT_CONNECTED: ("connected", None),
    zmq.EVENT_CONNECT_RETRIED: ("connect_retried", None),
    zmq.EVENT_HANDSHAKE_SUCCEEDED: ("handshake_succeeded", None),
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL: ("handshake_failed", None),
    zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: ("handshake_failed", "protocol"),
    zmq.EVENT_HANDSHAKE_FAILED_AUTH: ("handshake_failed", "auth"),
    zmq.EVENT_DISCONNECTED: ("disconnected", None),
    zmq.EVENT_MONITOR_STOPPED: ("closed", None),
}


class LibzmqAgent(SocketTableAgent):
    def __init__(self) -> None:
        self.ctx = zmq.asyncio.Context()
        super().__init__()
        self._poker: asyncio.Task[None] | None = None
        self._zap: asyncio.Task[None] | None = None
        self._zap_policy: tuple[dict[str, str], set[bytes] | None, int] = ({}, set(), 400)
        self._busy: set[str] = set()  # sockets with a send or recv in progress
        self._monitors: dict[str, asyncio.Task[None]] = {}

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

    async def _watch(self, monitor: zmq.asyncio.Socket, log: EventLog) -> None:
        from zmq.utils.monitor import parse_monitor_message

        try:
            while True:
                msg = parse_monitor_message(await monitor.recv_multipart())
                name, failure = EVENT_NAMES.get(msg["event"], (None, None))
                if name is None:
                    continue
                ev: dict[str, Any] = {"event": name, "endpoint": msg["endpoint"].decode(errors="replace")}
                if failure is not None:
                    ev["failure"] = failure
                if name == "handshake_failed":
                    # libzmq gives a number, not text: the ZAP status, a ZMTP_PROTOCOL_ERROR code, or errno.
                    ev["reason"] = f"libzmq code {msg['value']}"
                log.add(ev)
                if name == "closed":
                    return
        except (zmq.ZMQError, asyncio.CancelledError):
            return
        finally:
            monitor.close(0)

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

    async def op_zap(
        self, users: dict[str, str] | None = None, curve_keys: list[str] | None = None, deny_status: int = 400
    ) -> dict:
        """Serve ZAP (RFC 27) on inproc://zeromq.zap.01: allow these PLAIN users and CURVE keys (None: any key).

        A handler of our own rather than pyzmq's authenticator, which can only refuse with 400.
        """
        self._zap_policy = (
            dict(users or {}),
            None if curve_keys is None else {z85.decode(k) for k in curve_keys},
            deny_status,
        )
        if self._zap is None:
            handler = self.ctx.socket(zmq.REP)
            handler.linger = 0
            handler.bind("inproc://zeromq.zap.01")
            self._zap = asyncio.get_running_loop().create_task(self._serve_zap(handler))
        return {}

    async def _serve_zap(self, handler: zmq.asyncio.Socket) -> None:
        try:
            while True:
                request = await handler.recv_multipart()
                version, request_id, _domain, _address, _identity, mechanism, *credentials = request
                users, keys, deny_status = self._zap_policy
                if mechanism == b"PLAIN" and len(credentials) == 2:
                    user = credentials[0].decode(errors="replace")
                    allowed = user in users and users[user].encode() == credentials[1]
                    user_id = user.encode()
                elif mechanism == b"CURVE" and len(credentials) == 1:
                    allowed = keys is None or credentials[0] in keys
                    user_id = z85.encode(credentials[0])
                else:
                    allowed, user_id = mechanism == b"NULL", b""
                status, text = (b"200", b"OK") if allowed else (str(deny_status).encode(), b"not on the allow list")
                await handler.send_multipart([version, request_id, status, text, user_id if allowed else b"", b""])
        except (zmq.ZMQError, asyncio.CancelledError):
            return
        finally:
            handler.close(0)

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
        monitor = sock.get_monitor_socket()
        self._monitors[answer["socket"]] = asyncio.get_running_loop().create_task(
            self._watch(monitor, self.event_logs[answer["socket"]])
        )
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
        task = self._monitors.pop(socket, None)
        if task is not None:
            # libzmq sends MONITOR_STOPPED as the socket closes; give it a moment to arrive.
            try:
                await asyncio.wait_for(asyncio.shield(task), 0.2)
            except TimeoutError:
                task.cancel()
        return {}

    # -- benchmarks: blocking loops on a shadow of the socket, in a thread, timed here ------------

    async def _in_thread(self, socket: str, loop: Any) -> Any:
        """Run a blocking loop on `socket` in a thread; the poker keeps off it meanwhile
        (a libzmq socket must never be used from two threads at once)."""
        self._busy.add(socket)
        try:
            return await asyncio.to_thread(loop)
        finally:
            self._busy.discard(socket)

    def _blocking(self, socket: str, timeout: float) -> zmq.Socket:
        sync = zmq.Socket.shadow(self._sock(socket).underlying)
        sync.rcvtimeo = sync.sndtimeo = int(timeout * 1000)
        return sync

    async def op_bench_send(self, socket: str, size: int, count: int, timeout: float = 60.0) -> dict:
        sync, msg = self._blocking(socket, timeout), bytes(size)

        def loop() -> float:
            t0 = time.perf_counter()
            for _ in range(count):
                sync.send(msg, copy=size < 65536)
            return time.perf_counter() - t0

        return {"elapsed": await self._in_thread(socket, loop)}

    async def op_bench_recv(self, socket: str, count: int, timeout: float = 60.0) -> dict:
        sync = self._blocking(socket, timeout)

        def loop() -> tuple[float, int]:
            sync.recv(copy=False)
            t0 = time.perf_counter()
            for _ in range(count - 1):
                sync.recv(copy=False)
            return time.perf_counter() - t0, count - 1

        try:
            elapsed, timed = await self._in_thread(socket, loop)
        except zmq.Again:
            raise TimeoutError(f"fewer than {count} messages within {timeout:g}s") from None
        return {"elapsed": elapsed, "timed": timed, "received": count}

    async def op_bench_rtt(self, socket: str, size: int, count: int, timeout: float = 10.0) -> dict:
        sync = self._blocking(socket, timeout)
        msg = [b"", bytes(size)] if sync.type == zmq.DEALER else [bytes(size)]

        def loop() -> list[int]:
            samples = []
            for _ in range(count):
                t = time.perf_counter_ns()
                sync.send_multipart(msg)
                sync.recv_multipart(copy=False)
                samples.append(time.perf_counter_ns() - t)
            return samples

        return latency_summary(await self._in_thread(socket, loop))

    async def op_bench_echo(self, socket: str, count: int, timeout: float = 10.0) -> dict:
        sync = self._blocking(socket, timeout)

        def loop() -> None:
            for _ in range(count):
                sync.send_multipart(sync.recv_multipart(copy=False), copy=False)

        await self._in_thread(socket, loop)
        return {}

    async def op_quit(self) -> dict:
        for task in self._monitors.values():
            task.cancel()
        if self._zap is not None:
            self._zap.cancel()
        self.ctx.destroy(0)
        return {}


def main() -> None:
    run(LibzmqAgent)


if __name__ == "__main__":
    main()
