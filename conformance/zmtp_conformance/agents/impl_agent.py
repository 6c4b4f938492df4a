"""Agent for `zmtp`, the reference implementation in impl/.

    python -m zmtp_conformance.agents.impl_agent [--bug NAME[=VALUE]]...

`--bug` switches on one of zmtp.ProtocolBugs for every socket, so the agent
plays a known-broken peer (the harness's own tests use this to prove that
its checks can fail).
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import dataclasses
import sys
import time
from typing import Any

import zmtp
import zmtp.keys

from .. import protocol
from .base import EventLog, SocketTableAgent, latency_summary, numbered
from .loop import Unsupported, run

# Options the control protocol carries, and how each becomes a SocketOptions field.
BYTES_OPTIONS = {"routing_id"}


def routing_id_hex(rid: int) -> str:
    """A SERVER's routing id on the control protocol: its 4 octets in network order, as hex."""
    return rid.to_bytes(4, "big").hex()


def routing_id_int(text: str) -> int:
    raw = bytes.fromhex(text)
    if len(raw) != 4:
        raise TypeError(f"routing_id {text!r} is not 4 octets of hex")
    return int.from_bytes(raw, "big")


class AllowList:
    """A ZAP handler for the harness: fixed PLAIN users, CURVE keys (or any key), every NULL peer.

    It keeps each request it is asked, for the `zap_requests` op.
    """

    def __init__(self, users: dict[str, str], keys: set[bytes] | None, deny_status: int = 400) -> None:
        self.users = users
        self.keys = keys
        self.deny_status = deny_status
        self.requests: list[list[bytes]] = []

    async def authenticate(self, request: zmtp.ZapRequest) -> zmtp.ZapResponse:
        # zmtp hands its handler the request's fields, not frames: listed here in RFC 27's frame
        # order, as they are, so the harness judges what zmtp put in each.
        self.requests.append(
            [
                request.version.encode(),
                request.request_id,
                request.domain.encode(),
                request.address.encode(),
                request.identity or b"",
                request.mechanism.encode(),
                *request.credentials,
            ]
        )
        if request.mechanism == "PLAIN":
            ok = self.users.get(request.username or "") == request.password
        elif request.mechanism == "CURVE":
            ok = self.keys is None or request.client_key in self.keys
        else:
            ok = True
        if ok:
            return zmtp.ZapResponse.success(request.request_id, request.username or "")
        return zmtp.ZapResponse.failure(request.request_id, "not on the allow list", self.deny_status)


class ImplAgent(SocketTableAgent):
    def __init__(self, bugs: zmtp.ProtocolBugs) -> None:
        self.ctx = zmtp.Context()
        self.bugs = bugs
        self.zap: AllowList | None = None
        super().__init__()

    async def op_hello(self) -> dict[str, Any]:
        import platform

        return {
            "peer": "impl",
            "protocol": protocol.PROTOCOL_VERSION,
            "versions": {"zmtp": zmtp.__version__, "python": platform.python_version()},
            "downgrades": ["1.0", "2.0"],  # zmtp/legacy.py: the 1.0 and 2.0 framing after detection
            "resource": True,  # zmtp/listener.py: RFC 37's services behind one tcp://host:port
            "bugs": {k: repr(v) for k, v in self.bugs.active().items()},
        }

    async def op_zap(
        self, users: dict[str, str] | None = None, curve_keys: list[str] | None = None, deny_status: int = 400
    ) -> dict:
        """Install a ZAP handler allowing these PLAIN users and CURVE client keys (None: any key)."""
        allowed = None if curve_keys is None else {zmtp.keys.parse_key(k) for k in curve_keys}
        self.zap = AllowList(users or {}, allowed, deny_status)
        self.ctx.set_zap_handler(self.zap)
        return {}

    async def op_zap_requests(self) -> dict:
        """The requests the handler got since the last call, as frames (it has no envelope: a callback)."""
        if self.zap is None:
            raise TypeError("no ZAP handler is installed: op zap first")
        requests, self.zap.requests = self.zap.requests, []
        return {"handler": "callback", "requests": [protocol.encode_frames(r) for r in requests]}

    async def op_socket(self, type: str, options: dict[str, Any] | None = None, mechanism: str = "NULL") -> dict:
        if mechanism not in ("NULL", "PLAIN", "CURVE"):
            raise Unsupported(f"mechanism {mechanism} is not implemented in zmtp")
        fields = {f.name for f in dataclasses.fields(zmtp.SocketOptions)}
        kwargs: dict[str, Any] = {"linger": 0, "bugs": self.bugs}
        for key, value in (options or {}).items():
            if key not in fields or key == "bugs":
                raise Unsupported(f"option {key!r} is not supported by zmtp")
            kwargs[key] = bytes.fromhex(value) if key in BYTES_OPTIONS else value
        if kwargs.get("metadata"):
            kwargs["metadata"] = {k: v.encode() for k, v in kwargs["metadata"].items()}
        try:
            zmtp.SocketType.parse(type)
        except ValueError:
            raise Unsupported(f"socket type {type} is not implemented in zmtp") from None
        sock = self.ctx.socket(type, zmtp.SocketOptions(**kwargs))
        answer = self._add(sock)
        asyncio.get_running_loop().create_task(self._watch(sock.monitor(), self.event_logs[answer["socket"]]))
        return answer

    async def _watch(self, monitor: zmtp.Monitor, log: EventLog) -> None:
        async for ev in monitor:
            log.add(ev.to_dict())

    async def op_bind(self, socket: str, endpoint: str) -> dict:
        return {"endpoint": await self._sock(socket).bind(endpoint)}

    async def op_connect(self, socket: str, endpoint: str) -> dict:
        await self._sock(socket).connect(endpoint)
        return {}

    async def op_send(
        self,
        socket: str,
        frames: list[str],
        timeout: float = 5.0,
        group: str | None = None,
        routing_id: str | None = None,
    ) -> dict:
        sock = self._sock(socket)
        if group is not None and sock.type is not zmtp.RADIO:
            raise TypeError(f"group is for RADIO sockets; {socket} is {sock.type.value}")
        if routing_id is not None and sock.type is not zmtp.SERVER:
            raise TypeError(f"routing_id is for SERVER sockets; {socket} is {sock.type.value}")
        msg = protocol.decode_frames(frames)
        if len(msg) == 1 and group is not None:
            send = sock.send(msg[0], group=group)
        elif len(msg) == 1 and routing_id is not None:
            send = sock.send(msg[0], routing_id=routing_id_int(routing_id))
        else:  # the socket itself refuses what it must (multipart, a SERVER send without a routing id)
            send = sock.send_multipart(msg)
        await asyncio.wait_for(send, timeout)
        return {}

    async def op_send_more(self, socket: str, frames: list[str], timeout: float = 5.0) -> dict:
        """Frames that begin a message, each sent with more (the last too): zmtp holds them until a
        later send brings the final frame."""
        sock = self._sock(socket)
        for frame in protocol.decode_frames(frames):
            await asyncio.wait_for(sock.send(frame, more=True), timeout)
        return {}

    async def op_send_until_full(
        self, socket: str, frames: list[str], max: int, group: str | None = None, routing_id: str | None = None
    ) -> dict:
        """Send numbered copies of a message without waiting until one would wait or is refused (or max)."""
        sock = self._sock(socket)
        template = protocol.decode_frames(frames)
        for n in range(max):
            msg = numbered(template, n)
            if group is not None:
                await sock.send(msg[0], group=group)  # a RADIO never waits: a full queue drops
            elif routing_id is not None:
                try:
                    await sock.send(msg[0], routing_id=routing_id_int(routing_id))
                except zmtp.Again:  # a SERVER refuses a message for a full queue
                    return {"sent": n, "full": True}
            elif not sock.send_now(msg):  # "would wait": the pattern found no queue with room
                return {"sent": n, "full": True}
            await asyncio.sleep(0)  # the transport writes what it can between sends, as in a live loop
        return {"sent": max, "full": False}

    async def op_recv(self, socket: str, timeout: float = 2.0) -> dict:
        sock = self._sock(socket)
        msg = await asyncio.wait_for(sock.recv_message(), timeout)
        answer: dict[str, Any] = {"frames": protocol.encode_frames(msg.frames)}
        if msg.group is not None:
            answer["group"] = msg.group.decode("utf-8", "replace")
        if msg.routing_id is not None:
            answer["routing_id"] = routing_id_hex(msg.routing_id)
        return answer

    async def op_join(self, socket: str, group: str) -> dict:
        self._dish(socket).join(group)
        return {}

    async def op_leave(self, socket: str, group: str) -> dict:
        self._dish(socket).leave(group)
        return {}

    def _dish(self, socket: str) -> Any:
        sock = self._sock(socket)
        if sock.type is not zmtp.DISH:
            raise TypeError(f"join and leave are for DISH sockets; {socket} is {sock.type.value}")
        return sock

    async def op_close(self, socket: str) -> dict:
        sock = self.sockets.pop(socket, None)
        if sock is not None:
            await sock.close(linger=0)
        return {}

    async def op_quit(self) -> dict:
        await self.ctx.term()
        return {}

    # -- benchmarks: the hot loops run here, so the control protocol is never timed ----------

    async def op_bench_send(self, socket: str, size: int, count: int, timeout: float = 60.0) -> dict:
        """Send `count` one-frame messages of `size` octets through the batch API."""
        sock = self._sock(socket)
        msg = [bytes(size)]
        batch = max(1, min(1000, (4 << 20) // max(size, 1)))
        t0 = time.perf_counter()
        left = count
        while left:
            n = min(batch, left)
            await asyncio.wait_for(sock.send_many([msg] * n), timeout)
            left -= n
        return {"elapsed": time.perf_counter() - t0}

    async def op_bench_recv(self, socket: str, count: int, timeout: float = 60.0) -> dict:
        """Receive `count` messages; timed from the first arrival to the last, as the other agents do."""
        sock = self._sock(socket)
        await asyncio.wait_for(sock.recv_multipart(), timeout)
        t0, got = time.perf_counter(), 1
        while got < count:
            got += len(await asyncio.wait_for(sock.recv_many(min(4096, count - got)), timeout))
        return {"elapsed": time.perf_counter() - t0, "timed": got - 1, "received": got}

    async def op_bench_rtt(self, socket: str, size: int, count: int, timeout: float = 10.0) -> dict:
        """`count` request/reply round trips (REQ, or DEALER with an empty delimiter) of `size` octets."""
        sock = self._sock(socket)
        msg = [b"", bytes(size)] if sock.type is zmtp.DEALER else [bytes(size)]
        samples = []
        for _ in range(count):
            t = time.perf_counter_ns()
            await sock.send_multipart(msg)
            await asyncio.wait_for(sock.recv_multipart(), timeout)
            samples.append(time.perf_counter_ns() - t)
        return latency_summary(samples)

    async def op_bench_echo(self, socket: str, count: int, timeout: float = 10.0) -> dict:
        """Send each of `count` messages back (REP, or ROUTER with its envelope)."""
        sock = self._sock(socket)
        for _ in range(count):
            await sock.send_multipart(await asyncio.wait_for(sock.recv_multipart(), timeout))
        return {}


def parse_bugs(items: list[str]) -> zmtp.ProtocolBugs:
    values: dict[str, Any] = {}
    known = zmtp.ProtocolBugs.names()
    for item in items:
        name, _, raw = item.partition("=")
        if name not in known:
            sys.exit(f"impl_agent: unknown bug {name!r}; known: {', '.join(known)}")
        if not raw:
            values[name] = True
        else:
            try:
                values[name] = ast.literal_eval(raw)
            except (ValueError, SyntaxError):
                values[name] = raw
    return zmtp.ProtocolBugs(**values)


def main() -> None:
    ap = argparse.ArgumentParser(description="zmtp conformance agent for the impl/ reference implementation")
    ap.add_argument(
        "--bug", action="append", default=[], help="a zmtp.ProtocolBugs field to switch on (NAME or NAME=VALUE)"
    )
    args = ap.parse_args()
    bugs = parse_bugs(args.bug)
    run(lambda: ImplAgent(bugs))


if __name__ == "__main__":
    main()
