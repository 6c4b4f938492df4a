"""Running one matrix cell: one scenario, one pairing of peers, one transport and mechanism."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import protocol
from .deviations import Deviation, find
from .peers import AgentProcess, PeerSpec, ipc_path, make_agent
from .rawpeer import RawFailure, RawPeer, build
from .scenario import Role, Scenario, Step
from .trace import Transcript, show

if TYPE_CHECKING:
    from .deviations import WireDeviation
    from .wire import CellCapture, WireResult

PASSED, FAILED, DEVIATES, UNSUPPORTED, SKIPPED = "passed", "failed", "deviates", "unsupported", "skipped"
OUTCOMES = (PASSED, FAILED, DEVIATES, UNSUPPORTED, SKIPPED)
RAW = "raw"
DEFAULT_TIMEOUT = 2.0


@dataclass(frozen=True)
class Cell:
    scenario: Scenario
    server: str  # peer name, or "raw"
    client: str
    transport: str
    mechanism: str

    @property
    def params(self) -> str:
        return f"{self.server}-{self.client}-{self.transport}-{self.mechanism}"

    @property
    def id(self) -> str:
        return f"{self.scenario.id}[{self.params}]"


@dataclass
class CellResult:
    cell: Cell
    outcome: str
    reason: str = ""
    duration: float = 0.0
    transcript: str = ""
    expected: str | None = None
    seen: str | None = None
    versions: dict[str, dict[str, str]] = field(default_factory=dict)
    deviation: Deviation | None = None
    wire: WireResult | None = None
    measurements: dict[str, int] = field(default_factory=dict)  # e.g. {"lost": 3} after a fault

    def record(self) -> dict[str, Any]:
        c = self.cell
        return {
            "id": c.id,
            "scenario": c.scenario.id,
            "title": c.scenario.title,
            "rfc": c.scenario.rfc,
            "level": c.scenario.level,
            "server": {"peer": c.server, "versions": self.versions.get("server", {})},
            "client": {"peer": c.client, "versions": self.versions.get("client", {})},
            "transport": c.transport,
            "mechanism": c.mechanism,
            "outcome": self.outcome,
            "reason": self.reason,
            "expected": self.expected,
            "seen": self.seen,
            "deviation": None
            if self.deviation is None
            else {"reason": self.deviation.reason, "reference": self.deviation.reference},
            "duration": round(self.duration, 4),
            "capture": None if self.wire is None else self.wire.record(),
            "measurements": self.measurements,
        }


class StepFailed(Exception):
    def __init__(self, message: str, expected: str | None = None, seen: str | None = None) -> None:
        self.expected = expected
        self.seen = seen
        super().__init__(message)


class Unsupported(Exception):
    pass


class AgentPool:
    """Agents kept running across cells: one process per (peer, side), restarted if it dies."""

    def __init__(
        self, specs: dict[str, PeerSpec], extra_args: dict[str, list[str]] | None = None, keylog: Path | None = None
    ) -> None:
        self.specs = specs
        self.extra_args = extra_args or {}
        self.keylog = keylog  # where agents write CURVE transient keys (None: nowhere)
        self.agents: dict[tuple[str, str], AgentProcess] = {}

    async def get(self, peer: str, side: str) -> AgentProcess:
        key = (peer, side)
        agent = self.agents.get(key)
        if agent is None or not agent.alive:
            agent = make_agent(
                self.specs[peer], name=f"{peer}/{side}", extra_args=self.extra_args.get(peer), keylog=self.keylog
            )
            await agent.start()
            self.agents[key] = agent
        return agent

    async def discard(self, *peers: str) -> None:
        """Stop these peers' agents, so the next cell starts them afresh.

        After a failed cell: whatever state the failure left in an agent (a socket
        stuck mid-handshake, a library's I/O thread gone) must not reach the next
        cell, nor the failed cell's own rerun.
        """
        for key in [k for k in self.agents if k[0] in peers]:
            await self.agents.pop(key).stop()

    async def close(self) -> None:
        for agent in self.agents.values():
            await agent.stop()
        self.agents.clear()


def _version(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split("."))


def frame_bytes(frames: list[Any], vars: dict[str, bytes]) -> list[bytes]:
    out = []
    for f in frames:
        if isinstance(f, str):
            out.append(f.encode())
        elif "hex" in f:
            out.append(bytes.fromhex(f["hex"].replace(" ", "")))
        elif "ref" in f:
            if f["ref"] not in vars:
                raise StepFailed(f"{{ref: {f['ref']}}} used before a {{capture: {f['ref']}}} filled it")
            out.append(vars[f["ref"]])
        elif "repeat" in f:
            out.append((f["repeat"].encode() * (f["count"] // max(1, len(f["repeat"])) + 1))[: f["count"]])
        else:
            raise StepFailed(f"frame {f!r} cannot be sent")
    return out


def describe_matchers(frames: list[Any]) -> str:
    parts = []
    for f in frames:
        if isinstance(f, str):
            parts.append(repr(f))
        elif "hex" in f:
            parts.append(f"hex {f['hex']}")
        elif "any" in f:
            parts.append("<any>")
        elif "capture" in f:
            parts.append(f"<any, as {f['capture']}>")
        elif "ref" in f:
            parts.append(f"<{f['ref']}>")
        elif "prefix" in f:
            parts.append(f"{f['prefix']!r}...")
        elif "repeat" in f:
            parts.append(f"{f['repeat']!r} x {f['count']}")
    return "[" + ", ".join(parts) + "]"


def match(frames_spec: list[Any], got: list[bytes], vars: dict[str, bytes]) -> bool:
    if len(frames_spec) != len(got):
        return False
    captured = {}
    for spec, frame in zip(frames_spec, got, strict=True):
        if isinstance(spec, str):
            ok = frame == spec.encode()
        elif "any" in spec:
            ok = True
        elif "capture" in spec:
            captured[spec["capture"]] = frame
            ok = True
        elif "prefix" in spec:
            ok = frame.startswith(spec["prefix"].encode())
        else:
            ok = frame == frame_bytes([spec], vars)[0]
        if not ok:
            return False
    vars.update(captured)
    return True


def expect_args(arg: Any) -> tuple[list[Any], float]:
    """An `expect` argument is a message, or {message, timeout}."""
    if isinstance(arg, dict):
        return arg["message"], arg.get("timeout", DEFAULT_TIMEOUT)
    return arg, DEFAULT_TIMEOUT


def describe_event(ev: dict[str, Any]) -> str:
    detail = ", ".join(f"{k}={v}" for k, v in ev.items() if k in ("failure", "reason"))
    return f"{ev['event']}({detail})" if detail else ev["event"]


def endpoint_for(transport: str) -> str:
    if transport == "tcp":
        return "tcp://127.0.0.1:0"
    return f"ipc://{ipc_path('cell')}"


# Test credentials for cells run under PLAIN and CURVE (libzmq's documented test keys).
PLAIN_USER, PLAIN_PASSWORD = "admin", "secret"
CURVE_SERVER_PUBLIC = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
CURVE_SERVER_SECRET = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"
CURVE_CLIENT_PUBLIC = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"
CURVE_CLIENT_SECRET = "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs"
MECHANISM_OPTIONS: dict[str, dict[str, dict[str, Any]]] = {
    "NULL": {"server": {}, "client": {}},
    "PLAIN": {
        "server": {"plain_server": True},
        "client": {"plain_username": PLAIN_USER, "plain_password": PLAIN_PASSWORD},
    },
    "CURVE": {
        "server": {"curve_server": True, "curve_secretkey": CURVE_SERVER_SECRET},
        "client": {
            "curve_secretkey": CURVE_CLIENT_SECRET,
            "curve_publickey": CURVE_CLIENT_PUBLIC,
            "curve_serverkey": CURVE_SERVER_PUBLIC,
        },
    },
}


def client_mechanism(mechanism: str) -> Any:
    """The sans-I/O mechanism a raw client uses with the test credentials (None for NULL)."""
    from functools import partial

    from zmtp.keys import parse_key
    from zmtp.mechanisms.curve import CurveMechanism
    from zmtp.mechanisms.plain import PlainMechanism

    if mechanism == "PLAIN":
        return partial(PlainMechanism, username=PLAIN_USER.encode(), password=PLAIN_PASSWORD.encode())
    if mechanism == "CURVE":
        return partial(
            CurveMechanism, secret_key=parse_key(CURVE_CLIENT_SECRET), server_key=parse_key(CURVE_SERVER_PUBLIC)
        )
    return None


def role_options(role: Role, mechanism: str) -> dict[str, Any]:
    """The scenario's options over the mechanism's defaults for the role's side."""
    return {**MECHANISM_OPTIONS[mechanism][role.side], **role.options}


# What a fresh partner does to prove a peer still serves after hostile input.
SANITY_PARTNER = {
    "PULL": "PUSH",
    "PUSH": "PULL",
    "REP": "REQ",
    "REQ": "REP",
    "ROUTER": "DEALER",
    "DEALER": "DEALER",
    "PAIR": "PAIR",
    "PUB": "SUB",
    "XPUB": "SUB",
    "SUB": "PUB",
    "XSUB": "PUB",
}


class CellRun:
    def __init__(self, cell: Cell, pool: AgentPool, capture: CellCapture | None = None) -> None:
        self.cell = cell
        self.pool = pool
        self.capture = capture
        self.t = Transcript()
        self.vars: dict[str, bytes] = {}
        self.agents: dict[str, AgentProcess] = {}  # role -> agent
        self.sockets: dict[str, str] = {}  # role -> socket id in its agent
        self.raws: dict[str, RawPeer] = {}
        self.endpoints: dict[str, str] = {}  # server role -> endpoint
        self.servers: list[asyncio.AbstractServer] = []
        self.versions: dict[str, dict[str, str]] = {}
        self.bound: dict[str, str] = {}  # server role -> the endpoint its socket bound (before any proxy)
        self.paused: set[AgentProcess] = set()
        self.measurements: dict[str, int] = {}  # counted by steps, e.g. messages lost to a fault

    def peer_of(self, role: Role) -> str:
        return self.cell.server if role.side == "server" else self.cell.client

    async def setup(self) -> None:
        sc = self.cell.scenario
        ordered = sorted(sc.roles.values(), key=lambda r: r.side != "server")
        for role in ordered:
            if role.raw:
                self.raws[role.name] = RawPeer(role.name, self.t)
                if role.side == "server":
                    await self._raw_listen(role)
                continue
            await self.open_role(role)
        for role in ordered:
            if role.side == "client" and role.raw:
                for target in self.targets(role):
                    await self.raws[role.name].connect(self.endpoints[target])
                    self.harness_client(self.raws[role.name])
            elif role.side == "client":
                await self.connect_role(role)

    def targets(self, role: Role) -> tuple[str, ...]:
        return role.connect or tuple(r.name for r in self.cell.scenario.roles.values() if r.side == "server")

    async def open_role(self, role: Role) -> None:
        """The role's socket in its side's agent (started if need be); a server role binds.

        A server role that was bound before (the agent was restarted) binds the same endpoint again.
        """
        sc = self.cell.scenario
        agent = await self.pool.get(self.peer_of(role), role.side)
        self.agents[role.name] = agent
        self.versions[role.side] = agent.versions
        need = sc.required_zmtp
        speaks = agent.hello.get("zmtp") or []  # absent: a ZMTP 3.x peer
        if need and speaks and _version(max(speaks, key=_version)) < _version(need):
            raise Unsupported(
                f"{agent.name} speaks ZMTP {', '.join(speaks)} only; this scenario needs ZMTP {need} of both peers"
            )
        mechanism = self.cell.mechanism
        options = role_options(role, mechanism)
        try:
            if role.side == "server" and mechanism != "NULL":
                # The server side authenticates through ZAP: allow the test
                # user and the test client key, nobody else.
                zap: dict[str, Any] = {"users": {PLAIN_USER: PLAIN_PASSWORD}, "curve_keys": [CURVE_CLIENT_PUBLIC]}
                if sc.zap_deny_status != 400:
                    zap["deny_status"] = sc.zap_deny_status
                await agent.request("zap", **zap)
            resp = await agent.request("socket", type=role.type, options=options, mechanism=mechanism)
        except protocol.AgentError as exc:
            if exc.kind == protocol.UNSUPPORTED:
                raise Unsupported(f"{agent.name}: {exc.message}") from None
            raise
        self.sockets[role.name] = resp["socket"]
        self.t.add(role.name, "socket", f"{role.type} on {agent.name} {mechanism} {options or ''}".rstrip())
        if role.side == "server":
            again = self.bound.get(role.name)
            resp = await agent.request(
                "bind", socket=resp["socket"], endpoint=again or endpoint_for(self.cell.transport)
            )
            self.t.add(role.name, "bind", resp["endpoint"])
            if again is None:
                self.bound[role.name] = resp["endpoint"]
                self.endpoints[role.name] = await self.expose(resp["endpoint"], self.peer_of(role))

    async def connect_role(self, role: Role) -> None:
        for target in self.targets(role):
            ep = self.endpoints[target]
            await self.agents[role.name].request("connect", socket=self.sockets[role.name], endpoint=ep)
            self.t.add(role.name, "connect", ep)

    async def fault(self, role: Role, what: str) -> None:
        """Kill, restart, pause or unpause the agent playing `role`'s side (and so every role on it)."""
        agent = self.agents[role.name]
        on_side = [r for r in self.cell.scenario.roles.values() if not r.raw and r.side == role.side]
        if what == "kill":
            await agent.kill()
            self.t.add(role.name, "fault", f"{agent.name} killed")
            for r in on_side:
                self.sockets.pop(r.name, None)
        elif what == "restart":
            if agent.alive:
                raise StepFailed(f"restart of {agent.name}, which is still running", expected="a kill first")
            for r in on_side:
                await self.open_role(r)
            for r in on_side:
                if r.side == "client":
                    await self.connect_role(r)
            self.t.add(role.name, "fault", f"{self.agents[role.name].name} restarted")
        elif what == "pause":
            await agent.pause()
            self.paused.add(agent)
            self.t.add(role.name, "fault", f"{agent.name} paused")
        elif what == "unpause":
            await agent.unpause()
            self.paused.discard(agent)
            self.t.add(role.name, "fault", f"{agent.name} unpaused")

    async def reopen(self, role: Role) -> None:
        """Close the role's socket and make it again (a lazy pirate client after a timeout)."""
        await self.agents[role.name].request("close", socket=self.sockets.pop(role.name), deadline=5)
        self.t.add(role.name, "close", "")
        await self.open_role(role)
        if role.side == "client":
            await self.connect_role(role)

    async def send_numbered(self, role: Role, a: dict[str, Any]) -> None:
        agent, sock = self.agents[role.name], self.sockets[role.name]
        first, count = a.get("from", 0), a["count"]
        for n in range(first, first + count):
            await agent.request("send", socket=sock, frames=[str(n).encode().hex()], timeout=DEFAULT_TIMEOUT)
        self.t.add(role.name, "send", f"{count} numbered messages, {first} to {first + count - 1}")

    async def expect_numbered(self, role: Role, a: dict[str, Any]) -> None:
        agent, sock = self.agents[role.name], self.sockets[role.name]
        first, count, timeout = a.get("from", 0), a["count"], a.get("timeout", DEFAULT_TIMEOUT)
        last, got, previous = first + count - 1, 0, first - 1
        while previous < last:
            try:
                resp = await agent.request("recv", socket=sock, timeout=timeout)
            except protocol.AgentError as exc:
                if exc.kind == protocol.TIMEOUT:
                    break
                raise
            frames = protocol.decode_frames(resp["frames"])
            try:
                n = int(frames[-1])
            except ValueError:
                raise StepFailed(
                    f"{role.name} received a message that is not one of the numbered ones",
                    expected=f"a number from {first} to {last}",
                    seen=show(frames),
                ) from None
            if n <= previous or n > last:
                raise StepFailed(
                    f"{role.name} received message {n} after {previous}: out of order, twice, or not sent",
                    expected=f"a number from {previous + 1} to {last}",
                    seen=str(n),
                )
            previous, got = n, got + 1
        lost = count - got
        self.t.add(role.name, "recv", f"{got} of {count} numbered messages, in order; {lost} lost")
        self.measurements["received"] = self.measurements.get("received", 0) + got
        self.measurements["lost"] = self.measurements.get("lost", 0) + lost
        if lost and not a.get("may_lose"):
            raise StepFailed(
                f"{role.name} received {got} of {count} numbered messages",
                expected=f"all {count}",
                seen=f"{got} (last {previous})",
            )

    async def _raw_listen(self, role: Role) -> None:
        raw = self.raws[role.name]
        raw.accepted = asyncio.Event()

        async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if raw.writer is None:
                raw.attach(reader, writer)
            else:
                writer.close()

        if self.cell.transport == "tcp":
            server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
            ep = f"tcp://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        else:
            ep = endpoint_for("ipc")
            server = await asyncio.start_unix_server(on_conn, ep[6:])
        self.servers.append(server)
        self.endpoints[role.name] = await self.expose(ep, None)
        self.t.add(role.name, "listen", ep)

    async def expose(self, endpoint: str, owner: str | None) -> str:
        """Where clients connect to reach a server (a recording proxy may stand in front of it)."""
        if self.capture is None:
            return endpoint
        ep = await self.capture.expose(endpoint, owner)
        if ep != endpoint:
            self.t.add("harness", "proxy", f"{ep} -> {endpoint} (records the traffic)")
        return ep

    def harness_client(self, raw: RawPeer) -> None:
        if self.capture is not None and raw.writer is not None:
            self.capture.harness_client(raw.writer)

    async def raw(self, role: str) -> RawPeer:
        peer = self.raws[role]
        if peer.accepted is not None and peer.writer is None:
            try:
                await asyncio.wait_for(peer.accepted.wait(), 5)
            except TimeoutError:
                raise StepFailed(
                    f"nobody connected to raw server {role!r} within 5s", expected="a connection"
                ) from None
        return peer

    async def step(self, st: Step) -> None:
        if st.action == "wait":
            await asyncio.sleep(st.arg)
            return
        role = self.cell.scenario.roles[st.role]  # type: ignore[index]
        if role.raw:
            await self.raw_step(st, await self.raw(role.name), role)
        else:
            await self.agent_step(st, role)

    def check_received(self, role: str, spec: list[Any], got: list[bytes]) -> None:
        self.t.add(role, "recv", show(got))
        if not match(spec, got, self.vars):
            raise StepFailed(f"{role} received a different message", expected=describe_matchers(spec), seen=show(got))

    async def agent_step(self, st: Step, role: Role) -> None:
        agent = self.agents[role.name]
        a = st.arg
        if st.action == "fault":
            await self.fault(role, a)
            return
        if role.name not in self.sockets:
            raise StepFailed(f"{role.name}'s peer was killed and not restarted", expected="a restart first")
        sock = self.sockets[role.name]
        if st.action == "send":
            frames = frame_bytes(a, self.vars)
            self.t.add(role.name, "send", show(frames))
            await agent.request("send", socket=sock, frames=protocol.encode_frames(frames), timeout=DEFAULT_TIMEOUT)
        elif st.action == "try_send":
            frames = frame_bytes(a, self.vars)
            try:
                await agent.request("send", socket=sock, frames=protocol.encode_frames(frames), timeout=0.5)
                self.t.add(role.name, "send", show(frames))
            except protocol.AgentError as exc:
                if exc.kind not in (protocol.TIMEOUT, protocol.FAILED):
                    raise
                self.t.add(role.name, "send refused", f"{exc.kind}: {exc.message} (allowed here)")
        elif st.action == "expect":
            spec, timeout = expect_args(a)
            try:
                resp = await agent.request("recv", socket=sock, timeout=timeout)
            except protocol.AgentError as exc:
                if exc.kind == protocol.TIMEOUT:
                    raise StepFailed(
                        f"{role.name} received nothing within {timeout:g}s",
                        expected=describe_matchers(spec),
                        seen="nothing",
                    ) from None
                raise
            self.check_received(role.name, spec, protocol.decode_frames(resp["frames"]))
        elif st.action == "expect_nothing":
            try:
                resp = await agent.request("recv", socket=sock, timeout=a)
            except protocol.AgentError as exc:
                if exc.kind == protocol.TIMEOUT:
                    self.t.add(role.name, "recv", f"nothing for {a:g}s, as expected")
                    return
                raise
            got = protocol.decode_frames(resp["frames"])
            raise StepFailed(f"{role.name} received a message where none was due", expected="nothing", seen=show(got))
        elif st.action in ("subscribe", "unsubscribe"):
            topic = a.encode() if isinstance(a, str) else bytes.fromhex(a["hex"])
            self.t.add(role.name, st.action, show(topic))
            await agent.request(st.action, socket=sock, topic=topic.hex())
        elif st.action == "send_expect_error":
            frames = frame_bytes(a["message"], self.vars)
            try:
                await agent.request("send", socket=sock, frames=protocol.encode_frames(frames), timeout=DEFAULT_TIMEOUT)
            except protocol.AgentError as exc:
                self.t.add(role.name, "send failed", f"{exc.kind}: {exc.message}")
                if exc.kind != a["error"]:
                    raise StepFailed(
                        f"{role.name}'s send failed with {exc.kind}", expected=a["error"], seen=exc.kind
                    ) from None
                return
            raise StepFailed(f"{role.name}'s send succeeded", expected=f"error {a['error']}", seen="success")
        elif st.action == "expect_event":
            await self.expect_event(role.name, agent, sock, a)
        elif st.action == "reopen":
            await self.reopen(role)
        elif st.action == "send_numbered":
            await self.send_numbered(role, a)
        elif st.action == "expect_numbered":
            await self.expect_numbered(role, a)
        else:
            raise StepFailed(f"action {st.action} is not available for peer roles")

    async def expect_event(self, role: str, agent: AgentProcess, sock: str, a: str | dict[str, Any]) -> None:
        spec = {"event": a} if isinstance(a, str) else a
        name, timeout = spec["event"], spec.get("timeout", DEFAULT_TIMEOUT)
        try:
            resp = await agent.request("events", socket=sock, until=name, timeout=timeout)
        except protocol.AgentError as exc:
            if exc.kind == protocol.TIMEOUT:
                raise StepFailed(
                    f"{role} reported no {name} event within {timeout:g}s", expected=name, seen=exc.message
                ) from None
            if exc.kind == protocol.UNSUPPORTED:
                raise Unsupported(f"{agent.name}: {exc.message}") from None
            raise
        events = resp["events"]
        self.t.add(role, "events", ", ".join(describe_event(e) for e in events))
        early = [e["event"] for e in events[:-1] if e["event"] in spec.get("absent", ())]
        if early:
            raise StepFailed(
                f"{role} reported {', '.join(early)} before {name}",
                expected=f"{name} without {', '.join(spec['absent'])}",
                seen=", ".join(describe_event(e) for e in events),
            )
        got, want = events[-1].get("failure"), spec.get("failure")
        # Only a peer that classifies its failures can be held to a class (libzmq's NO_DETAIL does not).
        if want and got and got != want:
            raise StepFailed(
                f"{role}'s handshake failed for another reason",
                expected=f"{name} ({want})",
                seen=describe_event(events[-1]),
            )

    async def raw_step(self, st: Step, raw: RawPeer, role: Role) -> None:
        a = st.arg
        try:
            if st.action == "send_raw":
                await raw.write(build(a, lambda frames: frame_bytes(frames, self.vars)))
            elif st.action == "expect_raw":
                await raw.expect(a)
            elif st.action == "handshake":
                await raw.handshake(
                    a["type"],
                    as_server=role.side == "server",
                    minor=a.get("minor"),
                    identity=a.get("identity", "").encode(),
                )
            elif st.action == "send":
                await raw.send_message(frame_bytes(a, self.vars))
            elif st.action == "expect":
                spec, timeout = expect_args(a)
                try:
                    got = await raw.recv_message(timeout)
                except TimeoutError:
                    raise StepFailed(
                        f"{role.name} received nothing within {timeout:g}s",
                        expected=describe_matchers(spec),
                        seen="nothing",
                    ) from None
                self.check_received(role.name, spec, got)
            elif st.action == "expect_nothing":
                try:
                    got = await raw.recv_message(a)
                except TimeoutError:
                    return
                raise StepFailed(
                    f"{role.name} received a message where none was due", expected="nothing", seen=show(got)
                )
            elif st.action == "expect_close":
                if isinstance(a, dict):
                    seen = await raw.expect_close(a["timeout"])
                    if a.get("silent") and seen:
                        raise RawFailure(
                            "the peer sent bytes before closing", expected="a close and nothing else", seen=seen
                        )
                else:
                    await raw.expect_close(a)
            elif st.action == "expect_open":
                await raw.expect_open(a)
            else:
                raise StepFailed(f"action {st.action} is not available for raw roles")
        except RawFailure as exc:
            raise StepFailed(
                f"{role.name}: {exc}", expected=exc.expected, seen=show(exc.seen) if exc.seen is not None else None
            ) from None
        except ConnectionError as exc:
            raise StepFailed(f"{role.name}: connection lost: {exc}", seen="connection closed") from None

    async def sanity(self) -> None:
        """After hostile input: a fresh connection still gets served."""
        server = next(r for r in self.cell.scenario.roles.values() if r.side == "server" and not r.raw)
        partner_type = SANITY_PARTNER[server.type or ""]
        raw = RawPeer("sanity", self.t)
        try:
            await raw.connect(self.endpoints[server.name])
            self.harness_client(raw)
            await raw.handshake(partner_type, as_server=False, mechanism=client_mechanism(self.cell.mechanism))
            agent, sock = self.agents[server.name], self.sockets[server.name]
            if server.type in ("PULL", "ROUTER", "DEALER", "PAIR", "REP", "XSUB", "SUB"):
                await raw.send_message([b"", b"sanity"] if server.type == "REP" else [b"sanity"])
                resp = await agent.request("recv", socket=sock, timeout=DEFAULT_TIMEOUT)
                got = protocol.decode_frames(resp["frames"])
                if got[-1] != b"sanity":
                    raise StepFailed(
                        "sanity exchange: the peer delivered something else", expected="[sanity]", seen=show(got)
                    )
            else:  # PUSH, PUB, XPUB, REQ send first
                if server.type in ("PUB", "XPUB"):
                    raw.conn.send_subscribe(b"")  # type: ignore[union-attr]
                    await raw.flush()
                    await asyncio.sleep(0.1)
                await agent.request("send", socket=sock, frames=[b"sanity".hex()], timeout=DEFAULT_TIMEOUT)
                got = await raw.recv_message(DEFAULT_TIMEOUT)
                if got[-1] != b"sanity":
                    raise StepFailed("sanity exchange: unexpected message", expected="[sanity]", seen=show(got))
            self.t.add("sanity", "ok", "the peer still serves a fresh connection")
        except (TimeoutError, RawFailure, protocol.AgentError) as exc:
            raise StepFailed(
                f"sanity exchange after hostile input failed: {exc or 'timed out'}",
                expected="the peer serves a fresh connection",
                seen=str(exc) or "timeout",
            ) from None
        finally:
            raw.close()

    async def teardown(self) -> None:
        for agent in self.paused:
            await agent.unpause()
        for raw in self.raws.values():
            raw.close()
        for server in self.servers:
            server.close()
        for role, sock in self.sockets.items():
            agent = self.agents[role]
            if agent.alive:
                try:
                    await agent.request("close", socket=sock, deadline=5)
                except protocol.AgentError:
                    pass


async def run_cell(
    cell: Cell,
    pool: AgentPool,
    deviations: list[Deviation],
    capture: CellCapture | None = None,
    capture_path: Path | None = None,
    wire_table: list[WireDeviation] | None = None,
) -> CellResult:
    """Run one cell; with a capture, also write its pcap to `capture_path` and judge every peer's bytes."""
    start = time.monotonic()
    run = CellRun(cell, pool, capture)
    result = CellResult(cell, PASSED)
    try:
        if capture is not None:
            await capture.begin()
        await run.setup()
        for st in cell.scenario.steps:
            await run.step(st)
        if cell.scenario.hostile:
            await run.sanity()
    except Unsupported as exc:
        result.outcome, result.reason = UNSUPPORTED, str(exc)
    except StepFailed as exc:
        result.outcome, result.reason, result.expected, result.seen = FAILED, str(exc), exc.expected, exc.seen
    except protocol.AgentError as exc:
        kind = UNSUPPORTED if exc.kind == protocol.UNSUPPORTED else FAILED
        result.outcome, result.reason = kind, str(exc)
    except (OSError, TimeoutError) as exc:
        result.outcome, result.reason = FAILED, f"{type(exc).__name__}: {exc}"
    finally:
        await run.teardown()
    if result.outcome == FAILED:
        dev = find(deviations, cell.scenario.id, cell.server, cell.client)
        if dev is not None:
            result.outcome, result.deviation = DEVIATES, dev
    if capture is not None and capture_path is not None:
        result.wire = await judge_wire(run, capture, capture_path, wire_table or [], result)
    if result.reason:
        run.t.add("harness", result.outcome.upper(), result.reason)
    result.duration = time.monotonic() - start
    result.transcript = run.t.text()
    result.versions = run.versions
    result.measurements = run.measurements
    return result


async def judge_wire(
    run: CellRun, capture: CellCapture, path: Path, table: list[WireDeviation], result: CellResult
) -> WireResult:
    """Write the cell's pcap and validate it. A violation not in the wire table fails the cell,
    even one whose scenario passed or deviates in a known way: a known deviation in behaviour
    does not excuse unknown bytes."""
    from .capture.pcap import PcapError
    from .capture.sniffer import SnifferError
    from .wire import WireResult

    try:
        wire = await capture.finish(path, run.cell.scenario.id, table)
    except (SnifferError, PcapError, OSError) as exc:
        run.t.add("harness", "capture lost", str(exc))
        return WireResult(capture.method, error=str(exc))
    run.t.add("harness", "capture", f"{path.name}: {wire.streams} stream(s) by {wire.method}")
    for f in wire.findings:
        known = f" (known: {f.deviation.reason})" if f.deviation else ""
        run.t.add("wire", f.violation.check, f"{f}{known}")
    for name in wire.incomplete:
        run.t.add("wire", "incomplete", f"{name}: the capture lost bytes; checked up to the hole")
    unknown = wire.unknown
    if unknown:
        text = "; ".join(str(f) for f in unknown)
        if result.outcome in (PASSED, DEVIATES):
            result.outcome, result.deviation = FAILED, None
            result.reason = f"wire: {text}"
            result.expected = "every octet the peers send conforms to the RFCs"
            result.seen = f"{unknown[0].violation.check}: {unknown[0].violation.octets}"
        elif result.outcome == FAILED:
            result.reason += f"; wire: {text}"
    return wire
