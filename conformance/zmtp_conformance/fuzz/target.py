"""The peer under test, live: its agent (through the matrix's AgentPool), its sockets, and the raw
peer that plays one input against it on a fresh connection.

The agent's socket always receives (PULL, ROUTER, or PUB for subscriptions), so that whatever the
hostile bytes make it deliver to its application can be compared with what they carried.
"""

from __future__ import annotations

import asyncio
import os
import random
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nacl.public import Box, PrivateKey

from .. import protocol, rawcodec
from ..credentials import (
    CURVE_CLIENT_PUBLIC,
    MECHANISM_OPTIONS,
    PLAIN_PASSWORD,
    PLAIN_USER,
    client_mechanism,
    server_mechanism,
)
from ..endpoints import endpoint_for
from ..peers import STALL_RERUNS, AgentPool, AgentProcess, KnownStall
from ..rawcodec import COMMAND, LONG, CurveServer, Mechanism, _CurveBoxes, frame
from ..rawpeer import RawFailure, RawPeer
from ..trace import Transcript
from .inputs import PARTNER, FuzzInput

HANDSHAKE_TIMEOUT = 2.0
# Boxes that open under the session key with a fresh nonce: whatever else is odd about them (reserved
# inner flags, a long frame, a misspelt command name), their message was carried by the wire. Boxes
# with stale nonces, wrong keys or damaged ciphertext carry nothing an application may receive.
CARRIED = {"good", "long", "flags", "name"}
SANITY_TIMEOUT = 3.0
RECONNECT_WAIT = 1.0  # client side: how long a client may take to reconnect on its own
# The sanity handshake's bound, looser than an input's: with HANDSHAKE_TIMEOUT, JeroMQ's clean
# exchange as a client failed its sanity check on a loaded two-core machine; the oracle is for
# stalls, not for a slow JVM.
SANITY_HANDSHAKE_TIMEOUT = 6.0
CLOSE_TIMEOUT = 1.5


@dataclass
class Played:
    """What one input did on the wire."""

    wire: bytes = b""  # every octet the raw peer wrote, in order (plaintext: NULL and PLAIN)
    boxed: list[list[bytes]] = field(default_factory=list)  # messages in good CURVE boxes
    handshake: bool | None = None  # None: the input has no handshake step
    closed_by_peer: bool = False
    stayed_open: bool = False  # a must-close input: the peer kept the connection open
    detail: str = ""


@dataclass
class Sanity:
    ok: bool
    received: list[list[bytes]]  # messages the application got besides the sanity message
    detail: str = ""
    silent: bool = False  # client side: the peer connected and sent not one octet (no greeting)


def process_rss(pid: int) -> int:
    """Resident memory of a process and all its descendants, in octets (0 if gone)."""
    total, todo, seen = 0, [pid], set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
            for task in os.listdir(f"/proc/{p}/task"):
                kids = Path(f"/proc/{p}/task/{task}/children").read_text().split()
                todo += [int(k) for k in kids]
        except (OSError, ValueError):
            continue
    return total


def cgroup_memory_file(pid: int, container_id: str, root: Path = Path("/sys/fs/cgroup")) -> Path | None:
    """The memory.stat of a container's cgroup: found from its init process's /proc/PID/cgroup (cgroup
    v1 or v2), else where the cgroupfs and systemd drivers put a container; None if none is readable."""
    candidates = []
    try:
        for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if path.strip("/") == "" or ".." in path:
                continue  # the root (the whole machine's memory) or outside our cgroup namespace
            if "memory" in controllers.split(","):
                candidates.append(root / "memory" / path.lstrip("/"))
            elif controllers == "":
                candidates.append(root / path.lstrip("/"))
    except (OSError, ValueError):
        pass
    candidates += [
        root / "memory" / "docker" / container_id,
        root / "memory" / "system.slice" / f"docker-{container_id}.scope",
        root / "system.slice" / f"docker-{container_id}.scope",
        root / "docker" / container_id,
    ]
    for c in candidates:
        if container_id and (c / "memory.stat").is_file():
            return c / "memory.stat"
    return None


def cgroup_rss(stat: Path) -> int:
    """Anonymous resident memory of a cgroup, in octets: total_rss (v1) or anon (v2) of memory.stat.
    Page cache is left out, as /proc's VmRSS leaves out what a process only reads from disk."""
    try:
        fields = dict(line.split() for line in stat.read_text().splitlines() if line.count(" ") == 1)
        return int(fields.get("total_rss", fields.get("anon", 0)))
    except (OSError, ValueError):
        return 0


class Target:
    def __init__(self, pool: AgentPool, peer: str, side: str, mechanism: str) -> None:
        self.pool, self.peer, self.side, self.mechanism = pool, peer, side, mechanism
        # Agents inherit this environment: a Go panic then prints its own goroutine only, and a
        # Rust panic no backtrace, so that the panic line survives in the stderr tail the crash
        # oracle quotes. RUST_BACKTRACE is forced, not defaulted: machines that set it to 1
        # (this project's own) got forty frames of tokio quoted instead of the panic line.
        os.environ.setdefault("GOTRACEBACK", "single")
        os.environ["RUST_BACKTRACE"] = "0"
        self.agent: AgentProcess | None = None
        self.sockets: dict[str, str] = {}  # socket type -> socket id in the agent
        self.endpoints: dict[str, str] = {}  # socket type -> where the raw peer connects (server side)
        self.listener: asyncio.AbstractServer | None = None  # client side: the agent connects here
        self.incoming: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
        self.restarts = 0
        self.notes: list[str] = []  # what differs from the matrix's set-up, for the summary
        self.sanity_count = 0
        self.stalls = 0  # sanity exchanges run again after the peer's declared stall
        self.t = Transcript()
        self.memory_stat: Path | None = None  # docker backend: the container's cgroup memory.stat

    # -- the agent ---------------------------------------------------------------------------

    async def start(self) -> None:
        self.agent = await self.pool.get(self.peer, self.side)
        self.memory_stat = None
        if getattr(self.agent, "container", None) is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._find_cgroup)
        self.sockets.clear()
        self.endpoints.clear()
        if self.side == "server" and self.mechanism != "NULL":
            try:
                await self.agent.request("zap", users={PLAIN_USER: PLAIN_PASSWORD}, curve_keys=[CURVE_CLIENT_PUBLIC])
            except protocol.AgentError as exc:
                if exc.kind != protocol.UNSUPPORTED:
                    raise
                # No ZAP (zmq4): its server accepts every client, which is still worth attacking.
                self.notes.append(f"no ZAP handler: {exc.message[:160]}")

    @property
    def alive(self) -> bool:
        return self.agent is not None and self.agent.alive

    @property
    def pid(self) -> int | None:
        return self.agent.proc.pid if self.agent is not None and self.agent.proc is not None else None

    def _find_cgroup(self) -> None:
        """The container's memory, read from its cgroup (the container client's /proc would measure
        the docker CLI, not the peer)."""
        assert self.agent is not None
        wrapped = self.agent.container.get_wrapped_container()  # type: ignore[attr-defined]
        wrapped.reload()
        self.memory_stat = cgroup_memory_file(int(wrapped.attrs["State"]["Pid"] or 0), wrapped.id)
        if self.memory_stat is None:
            self.notes.append(f"no readable cgroup memory.stat for container {wrapped.id[:12]}: the rss oracle is off")
        else:
            self.notes.append(f"rss oracle: the container's {self.memory_stat}")

    def rss(self) -> int:
        if self.memory_stat is not None:
            return cgroup_rss(self.memory_stat)
        if getattr(self.agent, "container", None) is not None:
            return 0  # no cgroup found: measuring this process's /proc would say nothing about the container
        pid = self.pid
        return process_rss(pid) if pid else 0

    def last_words(self) -> str:
        """The lines of the agent's stderr that say why it died (a panic, an abort), else its last lines."""
        return self.agent.last_words() if self.agent is not None else ""

    async def restart(self) -> None:
        self.restarts += 1
        await self.pool.discard(self.peer)
        await self.start()

    async def socket(self, socket_type: str) -> str:
        """The agent's socket of this type, made (and bound or connected) on first use."""
        if socket_type in self.sockets:
            return self.sockets[socket_type]
        assert self.agent is not None
        options = dict(MECHANISM_OPTIONS[self.mechanism][self.side])
        resp = await self.agent.request("socket", type=socket_type, options=options, mechanism=self.mechanism)
        sock = resp["socket"]
        if self.side == "server":
            bound = await self.agent.request("bind", socket=sock, endpoint=endpoint_for("tcp"))
            self.endpoints[socket_type] = bound["endpoint"]
        else:
            await self.agent.request("connect", socket=sock, endpoint=await self._listen())
        self.sockets[socket_type] = sock
        return sock

    async def _listen(self) -> str:
        if self.listener is None:

            async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                await self.incoming.put((reader, writer))

            self.listener = await asyncio.start_server(on_conn, "127.0.0.1", 0)
        return f"tcp://127.0.0.1:{self.listener.sockets[0].getsockname()[1]}"

    async def reopen(self, socket_type: str) -> None:
        """Client side: a fresh socket, since a client may rightly stop reconnecting after a protocol
        error (impl does, and libzmq after an ERROR with ZMQ_RECONNECT_STOP)."""
        sock = self.sockets.pop(socket_type, None)
        if sock is not None and self.agent is not None:
            await self.agent.request("close", socket=sock, deadline=5)
        while not self.incoming.empty():
            self.incoming.get_nowait()[1].close()
        await self.socket(socket_type)

    async def close(self) -> None:
        if self.listener is not None:
            self.listener.close()
        while not self.incoming.empty():
            self.incoming.get_nowait()[1].close()

    # -- one connection of the raw peer --------------------------------------------------------

    async def _connection(self, name: str, socket_type: str) -> RawPeer:
        await self.socket(socket_type)
        raw = RawPeer(name, self.t)
        if self.side == "server":
            await raw.connect(self.endpoints[socket_type], timeout=HANDSHAKE_TIMEOUT)
        else:
            try:
                # The client reconnects after the last connection closed (libzmq within 100 ms)...
                reader, writer = await asyncio.wait_for(self.incoming.get(), RECONNECT_WAIT)
            except TimeoutError:
                # ...or does not (zmq.rs): a fresh socket connects, else every input would go unplayed.
                await self.reopen(socket_type)
                reader, writer = await asyncio.wait_for(self.incoming.get(), SANITY_TIMEOUT)
            raw.attach(reader, writer)
        return raw

    def _mechanism(self) -> Any:
        """The raw peer's side of the mechanism: the client's against a server, the server's against a client."""
        return client_mechanism(self.mechanism) if self.side == "server" else server_mechanism(self.mechanism)

    async def _handshake(
        self, raw: RawPeer, socket_type: str, identity: bytes = b"", timeout: float = HANDSHAKE_TIMEOUT
    ) -> None:
        await raw.handshake(
            PARTNER[socket_type],
            as_server=self.side == "client",
            identity=identity,
            mechanism=self._mechanism(),
            timeout=timeout,
        )

    async def _serve(
        self, raw: RawPeer, socket_type: str, arg: dict[str, Any], rng: random.Random, out: Played
    ) -> None:
        """Client side: the raw peer's server handshake until its answer at arg["stage"] (WELCOME or
        READY), which goes out broken as arg["fault"] says; then the input's next steps."""
        base = server_mechanism(self.mechanism)
        sent: list[bytes] = []

        def make(st: str, ident: bytes) -> Mechanism:
            m = (base or Mechanism)(st, ident)
            honest = m.on_command

            def on_command(name: str, data: bytes) -> bytes:
                answer = honest(name, data)
                stage = {"HELLO": "welcome", "INITIATE": "ready"}.get(name)
                if stage != arg["stage"]:
                    return answer
                broken = broken_answer(m, answer, arg["fault"], random.Random(arg.get("variant", 0)))
                sent.append(broken)
                m.peer = None  # the handshake ends here, whatever the codec thinks
                return broken

            m.on_command = on_command  # type: ignore[method-assign]
            return m

        raw.conn = rawcodec.Codec(PARTNER[socket_type], as_server=True, mechanism=make)
        await raw.flush()
        deadline = time.monotonic() + HANDSHAKE_TIMEOUT
        try:
            while not sent:
                await raw._read_more(deadline)
                await raw.flush()
        except RawFailure as exc:
            out.detail = f"serve: the client's handshake: {exc}"
        except TimeoutError:
            out.detail = f"serve: the client did not reach the {arg['stage']} stage"
            return
        await raw.flush()
        if sent and self.mechanism != "CURVE":
            out.wire += sent[0]

    async def play(self, inp: FuzzInput, rng: random.Random) -> Played:
        """Write the input on a fresh connection; a must-close input then waits for the close."""
        out = Played()
        raw = await self._connection("fuzz", inp.socket_type)
        last_box = b""
        try:
            for kind, arg in inp.steps:
                if kind == "wait":
                    await asyncio.sleep(arg)
                elif kind == "raw":
                    out.wire += arg
                    assert raw.writer is not None
                    raw.writer.write(arg)
                    await raw.writer.drain()
                elif kind == "handshake":
                    try:
                        await self._handshake(raw, inp.socket_type)
                        out.handshake = True
                    except RawFailure as exc:
                        out.handshake, out.detail = False, f"handshake: {exc}"
                        break
                elif kind == "serve":
                    await self._serve(raw, inp.socket_type, arg, rng, out)
                elif kind == "curve":
                    if raw.conn is None or not isinstance(raw.conn.mech, _CurveBoxes):
                        continue  # the handshake failed or is not CURVE: nothing to box with
                    data = curve_box(raw.conn.mech, arg["kind"], arg["frames"], last_box, rng)
                    if arg["kind"] in CARRIED:
                        out.boxed.append(list(arg["frames"]) if arg["kind"] != "long" else [arg["frames"][0] * 40])
                    if arg["kind"] == "good":
                        last_box = data
                    assert raw.writer is not None
                    raw.writer.write(data)
                    await raw.writer.drain()
            if inp.must_close:
                try:
                    await raw.expect_close(CLOSE_TIMEOUT)
                    out.closed_by_peer = True
                except RawFailure:
                    out.stayed_open = True
            else:
                await asyncio.sleep(0.02)  # time for the peer to act on the input before the checks
        except (ConnectionError, RawFailure) as exc:
            out.closed_by_peer, out.detail = True, out.detail or str(exc)
        finally:
            raw.close()
        return out

    async def sanity(self, socket_type: str) -> Sanity:
        """A fresh connection with a good handshake gets one message through to the application.

        A client peer that declares a stall before its greeting (peers.yaml known_stalls) and shows
        it here gets the attempts the matrix gives such a cell: the stall is random, reviewed and
        not caused by the input, so it must not become a sanity finding; a peer that stays silent
        every time still fails.
        """
        stall = self._client_stall()
        result = await self._sanity_once(socket_type)
        for _ in range(STALL_RERUNS):
            if result.ok or stall is None or not result.silent:
                break
            self.stalls += 1
            self.t.add("harness", "known stall", f"{stall.id}: sanity exchange again ({stall.upstream})")
            result = await self._sanity_once(socket_type)
        return result

    def _client_stall(self) -> KnownStall | None:
        spec = self.pool.specs.get(self.peer)
        if self.side != "client" or spec is None:
            return None
        return next((s for s in spec.known_stalls if s.side == "client"), None)

    async def _sanity_once(self, socket_type: str) -> Sanity:
        self.sanity_count += 1
        token = f"sanity-{self.sanity_count}".encode()
        others: list[list[bytes]] = []
        raw: RawPeer | None = None
        try:
            if self.side == "client":
                await self.reopen(socket_type)
            raw = await self._connection("sanity", socket_type)
            await self._handshake(raw, socket_type, identity=b"", timeout=SANITY_HANDSHAKE_TIMEOUT)
            assert self.agent is not None
            sock = self.sockets[socket_type]
            if socket_type == "PUB":
                assert raw.conn is not None
                raw.conn.send_subscribe(b"")
                await raw.flush()
                for _ in range(20):
                    await self.agent.request("send", socket=sock, frames=[token.hex()], timeout=1.0)
                    try:
                        got = await raw.recv_message(0.15)
                    except (TimeoutError, RawFailure):
                        continue
                    if got[-1] == token:
                        return Sanity(True, others)
                return Sanity(False, others, "a fresh SUB got nothing the PUB sent within 3s")
            await raw.send_message([token])
            loop = asyncio.get_running_loop()
            deadline = loop.time() + SANITY_TIMEOUT
            errors: list[str] = []
            while (left := deadline - loop.time()) > 0:
                try:
                    resp = await self.agent.request("recv", socket=sock, timeout=left)
                except protocol.AgentError as exc:
                    if exc.kind == protocol.TIMEOUT or not self.alive:
                        break
                    # A recv that reports an earlier connection's end or error (zmq4's EOF, zmq.rs's
                    # codec errors: deviations of their own) is not the stall this oracle is for:
                    # the sanity message may still come.
                    errors.append(str(exc))
                    continue
                frames = protocol.decode_frames(resp["frames"])
                if socket_type == "ROUTER":
                    frames = frames[1:]  # the routing id the ROUTER prepends
                if frames == [token]:
                    return Sanity(True, others)
                others.append(frames)
            return Sanity(
                False,
                others,
                f"the application did not receive the sanity message within {SANITY_TIMEOUT:g}s"
                + (f"; its recv failed: {'; '.join(dict.fromkeys(errors))[:300]}" if errors else ""),
            )
        except (RawFailure, TimeoutError, ConnectionError, OSError) as exc:
            silent = self.side == "client" and raw is not None and not raw.buf
            return Sanity(False, others, f"sanity exchange: {str(exc) or type(exc).__name__}", silent)
        except protocol.AgentError as exc:
            return Sanity(False, others, f"the agent: {exc}")
        finally:
            if raw is not None:
                raw.close()


def _command_body(answer: bytes) -> tuple[str, bytes]:
    f = rawcodec.FrameReader().feed(answer)[0]
    return f.command()


def broken_answer(m: Mechanism, answer: bytes, fault: str, rng: random.Random) -> bytes:
    """The server's honest `answer` (one command frame) broken as `fault` says."""
    name, body = _command_body(answer)
    stage = "welcome" if name == "WELCOME" else "ready"
    curve = isinstance(m, CurveServer)
    if fault == "truncated":
        return rawcodec.command(name, body[: rng.randrange(len(body))] if body else b"")
    if fault == "extended":
        return rawcodec.command(name, body + rng.randbytes(rng.choice([1, 16, 300])))
    if fault == "flipped":
        if not body:
            return rawcodec.frame(bytes((len(name),)) + name[:-1].encode() + b"\x00", COMMAND)
        b = bytearray(body)
        b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        return rawcodec.command(name, bytes(b))
    if fault == "name":
        return rawcodec.frame(bytes((len(name),)) + name.lower().encode() + body, COMMAND)
    if fault == "empty":
        return rawcodec.command(name)
    if fault == "error":
        return rawcodec.command("ERROR", rng.choice([b"\x06denied", b"", b"\xff" + b"x" * 3]))
    if fault == "other":
        if stage == "welcome":
            return rawcodec.ready(m.metadata()) if not curve else rawcodec.command("READY", rng.randbytes(40))
        return rawcodec.command("WELCOME", b"" if not curve else rng.randbytes(160))
    if fault == "twice":
        return answer + answer
    if fault == "huge":
        return bytes((COMMAND | LONG,)) + struct.pack("!Q", 2**63 - 1) + answer[2:][:16]
    if fault in ("no_socket_type", "bad_socket_type", "props_truncated") and not (curve and stage == "welcome"):
        if fault == "no_socket_type":
            props = rawcodec.properties([("Identity", b"")])
        elif fault == "bad_socket_type":
            props = rawcodec.properties([("Socket-Type", rng.choice([b"PUB", b"REP", b"", b"X" * 300]))])
        else:
            full = rawcodec.properties(m.metadata())
            props = full[: rng.randrange(1, len(full))]
        if not curve:
            return rawcodec.command("READY", props)
        assert isinstance(m, CurveServer) and m.session is not None
        short = m._short()
        return rawcodec.command("READY", short + m.session.encrypt(props, b"CurveZMQREADY---" + short).ciphertext)
    if curve:
        assert isinstance(m, CurveServer) and m.client_transient is not None
        if stage == "welcome" and fault in ("wrong_key", "zero_transient", "bad_cookie"):
            key = PrivateKey(rng.randbytes(32)) if fault == "wrong_key" else m.permanent
            transient = bytes(32) if fault == "zero_transient" else bytes(m.transient.public_key)
            cookie = rng.randbytes(96) if fault == "bad_cookie" else m.cookie
            nonce = rng.randbytes(16)
            sealed = Box(key, m.client_transient).encrypt(transient + cookie, b"WELCOME-" + nonce).ciphertext
            return rawcodec.command("WELCOME", nonce + sealed)
        if stage == "ready" and fault in ("wrong_key", "nonce_zero", "nonce_max"):
            assert m.session is not None
            box: Any = m.session
            if fault == "wrong_key":
                box = Box(PrivateKey(rng.randbytes(32)), m.client_transient)
            n = {"nonce_zero": 0, "nonce_max": 2**64 - 1}.get(fault, m.nonce + 1)
            m.nonce = n
            short = struct.pack("!Q", n)
            props = rawcodec.properties(m.metadata())
            return rawcodec.command("READY", short + box.encrypt(props, b"CurveZMQREADY---" + short).ciphertext)
    return answer


def curve_box(mech: _CurveBoxes, kind: str, frames: list[bytes], last: bytes, rng: random.Random) -> bytes:
    """A MESSAGE (RFC 26) made with the session's keys, wrong in the way `kind` says."""
    assert mech.session is not None
    if kind == "good":
        return mech.wrap(frames)
    if kind == "replay" and last:
        return last
    body = frames[0] if frames else b""
    inner_flags = 0
    box: Any = mech.session
    nonce: int | None = None
    name = b"\x07MESSAGE"
    if kind == "nonce_zero":
        nonce = 0
    elif kind == "nonce_back":
        nonce = max(mech.nonce - 1, 0)
    elif kind == "wrong_key":
        box = Box(PrivateKey(rng.randbytes(32)), PrivateKey(rng.randbytes(32)).public_key)
    elif kind == "flags":
        inner_flags = 0xF0
    elif kind == "name":
        name = b"\x07MESSAGX"
    elif kind == "long":
        body = body * 40
    if nonce is None:
        short = mech._short()
    else:
        short = struct.pack("!Q", nonce)
    sealed = box.encrypt(bytes((inner_flags,)) + body, mech.sends + short).ciphertext
    data = name + short + sealed
    if kind == "truncated":
        data = data[: rng.randrange(8, len(data) - 1)]
    elif kind == "flipped":
        b = bytearray(data)
        b[rng.randrange(16, len(b))] ^= 1 << rng.randrange(8)
        data = bytes(b)
    return frame(data)
