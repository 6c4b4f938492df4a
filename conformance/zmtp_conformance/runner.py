"""Running one matrix cell: one scenario, one pairing of peers, one transport and mechanism."""

from __future__ import annotations

import asyncio
import errno
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import protocol, zap
from .cells import Cell, CellResult, StepFailed, Unsupported
from .credentials import (
    CURVE_CLIENT_PUBLIC,
    PLAIN_PASSWORD,
    PLAIN_USER,
    client_mechanism,
    role_options,
    server_mechanism,
)
from .deviations import Deviation, Failure, find
from .endpoints import (
    UNIX,
    agents_ipc,
    endpoint_for,
    free_endpoint,
    ipc_mismatch,
    listen_port,
    with_resource,
    without_resource,
)
from .matchers import DEFAULT_TIMEOUT, describe_event, describe_matchers, expect_args, frame_bytes, match, send_args
from .peers import AgentPool, AgentProcess
from .rawpeer import RawFailure, RawPeer, build
from .scenario import Role, Step, topic_bytes
from .trace import Stopwatch, Transcript, show
from .vocabulary import ACTIONS, PEER, RAW, Outcome

if TYPE_CHECKING:
    from .deviations import WireDeviation
    from .wire import CellCapture, WireResult


def _version(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split("."))


def no_common_version(one: str, hello: dict[str, Any], other: str, other_hello: dict[str, Any]) -> str | None:
    """Why two peers share no ZMTP version, from their hellos, or None.

    A peer that speaks only a version older than 3.0 (hello `zmtp`) can talk to a ZMTP 3 peer only
    if that peer downgrades to it, which RFC 23 leaves to the implementation ("MAY downgrade"); a
    peer that declares the older versions it falls back to (hello `downgrades`) and lacks this one
    has no protocol in common with it, so their cells have nothing to test. Undeclared: try.
    """
    for old, o_hello, new, n_hello in ((one, hello, other, other_hello), (other, other_hello, one, hello)):
        speaks = o_hello.get("zmtp") or []
        if not speaks or _version(max(speaks, key=_version)) >= (3,):
            continue
        version = max(speaks, key=_version)
        falls_back = n_hello.get("downgrades")
        if falls_back is not None and version not in falls_back:
            return (
                f"{old} speaks ZMTP {', '.join(speaks)} only and {new} does not downgrade to it (it falls back to"
                f" {', '.join(falls_back) or 'no older version'}): no ZMTP version in common (RFC 23: a peer MAY"
                " downgrade its protocol to talk to a lower protocol peer)"
            )
    return None


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
    "SERVER": "CLIENT",
    "CLIENT": "SERVER",
    "GATHER": "SCATTER",
    "SCATTER": "GATHER",
}


class CellRun:
    def __init__(self, cell: Cell, pool: AgentPool, capture: CellCapture | None = None) -> None:
        self.cell = cell
        self.pool = pool
        self.capture = capture
        self.t = Transcript()
        self.clock = Stopwatch()
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
        # side -> its killed agent's successor, starting while the scenario runs without it
        self.respawn: dict[str, asyncio.Task[AgentProcess]] = {}
        self.sent_until_full: dict[str, int] = {}  # role -> how many its last send_until_full (or flood) sent
        self.until_full_message: dict[str, list[bytes]] = {}  # role -> the frames its send_until_full numbered
        self.ipc = UNIX  # how this cell's parties reach ipc endpoints (endpoints.IPC_KINDS)
        self.killed: set[AgentProcess] = set()  # agents a fault step killed: their death is the scenario's

    async def deaths(self) -> list[tuple[str, str]]:
        """The cell's agents that died on their own, each with the stderr lines that say why.

        A peer process that crashes makes the step that notices fail with whatever that step saw (a
        reset, a refused connect); the crash itself is the finding, and what an entry for it names.
        An agent no step has spoken to since is asked for its hello, which finds out.
        """
        dead = []
        for agent in dict.fromkeys(self.agents.values()):
            if agent in self.killed or agent in self.paused:
                continue  # a fault step's doing; a paused agent cannot answer, and is not dead
            if not agent.died:
                try:
                    await agent.request("hello", deadline=1.0)
                except protocol.AgentError:
                    pass  # a death sets `died`; a hung agent (stopped after the deadline) does not
            if agent.died:
                dead.append((agent.name, agent.last_words()))
        return dead

    def peer_of(self, role: Role) -> str:
        return self.cell.server if role.side == "server" else self.cell.client

    async def setup(self) -> None:
        sc = self.cell.scenario
        ordered = sorted(sc.roles.values(), key=lambda r: r.side != "server")
        await self.start_agents([(self.peer_of(r), r.side) for r in ordered if not r.raw])
        if self.cell.transport == "ipc":
            self.ipc = await self.ipc_way(ordered)
        for role in ordered:
            if role.raw:
                self.raws[role.name] = RawPeer(role.name, self.t)
                if role.side == "server":
                    await self._raw_listen(role)
                continue
            if role.deferred:
                await self.reserve(role)
                continue
            await self.open_role(role)
        for role in ordered:
            if role.side == "client" and role.raw:
                if not role.deferred:
                    await self.connect_raw(role)
            elif role.side == "client":
                await self.connect_role(role)

    async def ipc_way(self, roles: list[Role]) -> str:
        """The one way every party to this ipc cell reaches an ipc endpoint, else Unsupported.

        The raw peer and the sanity check after hostile input open Unix sockets, as the harness does.
        """
        parties = agents_ipc([await self.pool.get(self.peer_of(r), r.side) for r in roles if not r.raw])
        if any(r.raw for r in roles):
            parties["the raw peer"] = UNIX
        if self.cell.scenario.hostile:
            parties["the sanity check"] = UNIX
        why = ipc_mismatch(parties)
        if why:
            raise Unsupported(why)
        return next(iter(parties.values()), UNIX)

    async def start_agents(self, wanted: list[tuple[str, str]]) -> None:
        """The agents of both sides started side by side rather than one after the other (each is a
        process or container to launch, the first cell of a pairing and every cell after a discard).
        Starting opens no socket; a failed start raises as the first open_role would have."""
        keys = list(dict.fromkeys(wanted))
        if len(keys) < 2:
            return  # one agent or none: open_role starts it, nothing to overlap
        with self.clock.phase("agents"):
            done = await asyncio.gather(*(self.pool.get(peer, side) for peer, side in keys), return_exceptions=True)
        for outcome in done:
            if isinstance(outcome, BaseException):
                raise outcome

    async def reserve(self, role: Role) -> None:
        """A deferred server's endpoint, chosen now: its clients connect there before anything listens."""
        if role.shares_port_with:
            # A second service behind a listener that is up already: its clients reach the listener now,
            # which holds them until the service binds (RFC 37: a resource may become available later).
            self.bound[role.name] = with_resource(self.bound[role.shares_port_with], role.resource)
            self.endpoints[role.name] = self.endpoints[role.shares_port_with]
            self.t.add(role.name, "reserve", f"{self.bound[role.name]}, where nothing serves until {role.name}.bind")
            return
        ep = free_endpoint(self.cell.transport, self.ipc)
        self.bound[role.name] = with_resource(ep, role.resource)  # open_role binds it at the bind step
        self.endpoints[role.name] = await self.expose(ep, self.peer_of(role), later=True)
        self.t.add(role.name, "reserve", f"{ep}, where nothing listens until {role.name}.bind")

    async def connect_raw(self, role: Role) -> None:
        for target in self.targets(role):
            await self.raws[role.name].connect(self.endpoints[target])
            self.harness_client(self.raws[role.name])

    def targets(self, role: Role) -> tuple[str, ...]:
        return role.connect or tuple(r.name for r in self.cell.scenario.roles.values() if r.side == "server")

    async def open_role(self, role: Role) -> None:
        """The role's socket in its side's agent (started if need be); a server role binds.

        A server role that was bound before (the agent was restarted) binds the same endpoint again.
        """
        sc = self.cell.scenario
        pending = self.respawn.pop(role.side, None)
        with self.clock.phase("agents"):
            if pending is not None:
                await pending  # a failed start raises here, at the restart, as pool.get would
            agent = await self.pool.get(self.peer_of(role), role.side)
        self.agents[role.name] = agent
        self.versions[role.side] = agent.versions
        need = sc.required_zmtp
        speaks = agent.hello.get("zmtp") or []  # absent: a ZMTP 3.x peer
        if need and speaks and _version(max(speaks, key=_version)) < _version(need):
            raise Unsupported(
                f"{agent.name} speaks ZMTP {', '.join(speaks)} only; this scenario needs ZMTP {need} of both peers"
            )
        for other in {a for r, a in self.agents.items() if sc.roles[r].side != role.side}:
            why = no_common_version(agent.name, agent.hello, other.name, other.hello)
            if why:
                raise Unsupported(why)
        if (role.resource or role.shares_port_with) and not agent.hello.get("resource"):
            raise Unsupported(
                f"{agent.name}: its hello does not say `resource: true`, so it neither binds nor connects"
                " tcp://host:port/resource (RFC 37's Resource property, which libzmq does not implement either)",
                agent.name,
            )
        mechanism = self.cell.mechanism
        options = role_options(role, mechanism)
        try:
            asks_zap = any(st.action == "expect_zap" for st in sc.steps)  # NULL servers ask ZAP too, given a domain
            if role.side == "server" and (mechanism != "NULL" or asks_zap):
                # The server side authenticates through ZAP: allow the test
                # user and the test client key, nobody else.
                zap: dict[str, Any] = {"users": {PLAIN_USER: PLAIN_PASSWORD}, "curve_keys": [CURVE_CLIENT_PUBLIC]}
                if sc.zap_deny_status != 400:
                    zap["deny_status"] = sc.zap_deny_status
                await agent.request("zap", **zap)
            resp = await agent.request("socket", type=role.type, options=options, mechanism=mechanism)
        except protocol.AgentError as exc:
            if exc.kind == protocol.UNSUPPORTED:
                raise Unsupported(f"{agent.name}: {exc.message}", agent.name) from None
            raise
        self.sockets[role.name] = resp["socket"]
        self.t.add(role.name, "socket", f"{role.type} on {agent.name} {mechanism} {options or ''}".rstrip())
        if role.side == "server":
            again = self.bound.get(role.name)  # a restart, or the bind step of a deferred role
            endpoint = again or with_resource(
                self.bound.get(role.shares_port_with) or endpoint_for(self.cell.transport, self.ipc), role.resource
            )
            resp = await agent.request("bind", socket=resp["socket"], endpoint=endpoint)
            self.t.add(role.name, "bind", resp["endpoint"])
            if again is None:
                self.bound[role.name] = resp["endpoint"]
                self.endpoints[role.name] = (
                    self.endpoints[role.shares_port_with]
                    if role.shares_port_with
                    else await self.expose(without_resource(resp["endpoint"]), self.peer_of(role))
                )

    async def connect_role(self, role: Role) -> None:
        for target in self.targets(role):
            ep = with_resource(self.endpoints[target], role.resource)
            await self.agents[role.name].request("connect", socket=self.sockets[role.name], endpoint=ep)
            self.t.add(role.name, "connect", ep)

    async def fault(self, role: Role, what: str) -> None:
        """Kill, restart, pause or unpause the agent playing `role`'s side (and so every role on it)."""
        agent = self.agents[role.name]
        on_side = [r for r in self.cell.scenario.roles.values() if not r.raw and r.side == role.side]
        if what == "kill":
            await agent.kill()
            self.killed.add(agent)
            self.t.add(role.name, "fault", f"{agent.name} killed")
            # The successor process starts now, overlapping the steps until the restart (a container
            # takes about half a second): it opens no socket, so nothing listens before the restart.
            self.respawn[role.side] = asyncio.ensure_future(self.pool.get(self.peer_of(role), role.side))
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

    async def send_until_full(self, role: Role, a: dict[str, Any]) -> None:
        agent, sock = self._agent(role)
        frames = frame_bytes(a["message"], self.vars)
        fields = self._addressing(a)
        resp = await agent.request(
            "send_until_full",
            socket=sock,
            frames=protocol.encode_frames(frames),
            max=a["max"],
            deadline=120,  # many large messages go through the agent's loop
            **fields,
        )
        sent, full = int(resp["sent"]), bool(resp["full"])
        self.sent_until_full[role.name] = sent
        self.until_full_message[role.name] = frames
        self.measurements["queued"] = sent
        how = "then a send would block or was refused" if full else "none blocked or was refused"
        self.t.add(role.name, "send", f"{sent} numbered messages without waiting, {how}")
        if full != a["full"]:
            raise StepFailed(
                f"{role.name} took {sent} of at most {a['max']} messages, and {how}",
                expected="a send that blocks or is refused (a full queue)" if a["full"] else f"all {a['max']} taken",
                seen="a send blocked or was refused" if full else f"all {sent} taken",
            )
        if sent < a.get("at_least", 0) or ("at_most" in a and sent > a["at_most"]):
            raise StepFailed(
                f"{role.name}'s queue took {sent} messages before it was full",
                expected=f"from {a.get('at_least', 0)} to {a.get('at_most', 'any number')}",
                seen=str(sent),
            )

    async def expect_numbered(
        self,
        role: Role,
        a: dict[str, Any],
        receive: Callable[[float], Awaitable[list[bytes] | None]],
        mark: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        """`receive(timeout)`: the role's next message, or None when nothing came in time; `mark()`
        has the sender send END_MARKER (False once it cannot), see `_end_marker`."""
        first, timeout = a.get("from", 0), a.get("timeout", DEFAULT_TIMEOUT)
        if "sent_by" in a:
            if a["sent_by"] not in self.sent_until_full:
                raise StepFailed(f"expect_numbered counts on {a['sent_by']}'s send_until_full, which has not run")
            count = self.sent_until_full[a["sent_by"]]
        else:
            count = a["count"]
        last, got, previous = first + count - 1, 0, first - 1
        quiet = 0.0  # seconds without a message, waited MARKER_INTERVAL at a time while markers go
        marked = False  # a marker was sent: one arriving ends the run
        while previous < last:
            step = timeout - quiet if mark is None else min(MARKER_INTERVAL, timeout - quiet)
            frames = await receive(step)
            if frames is None:
                quiet += step
                if mark is None or quiet >= timeout:
                    break
                sent = await mark()
                marked = marked or sent
                if not sent:
                    mark = None  # the rest of the quiet period as without markers
                continue
            if marked and frames[-1] == END_MARKER:
                self.t.add(role.name, "recv", "the end marker: nothing more of the run is on its way")
                break
            quiet = 0.0
            try:
                # "n", or "n " and padding (send_until_full's messages)
                n = int(frames[-1].split(b" ", 1)[0])
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
        if lost and not (a.get("may_lose") or a.get("must_lose")):
            raise StepFailed(
                f"{role.name} received {got} of {count} numbered messages",
                expected=f"all {count}",
                seen=f"{got} (last {previous})",
            )
        if not lost and a.get("must_lose"):
            raise StepFailed(
                f"{role.name} received all {count} numbered messages: a full queue on their way kept what it should"
                " have dropped",
                expected=f"fewer than {count}",
                seen=str(got),
            )

    async def _raw_listen(self, role: Role) -> None:
        raw = self.raws[role.name]
        raw.accepted = asyncio.Event()

        async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if raw.writer is None:
                raw.attach(reader, writer)
            else:
                raw.connected_again()
                writer.close()

        if self.cell.transport == "tcp":
            for attempt in range(5):
                try:
                    server = await asyncio.start_server(on_conn, "127.0.0.1", listen_port())
                    break
                except OSError as exc:
                    if exc.errno != errno.EADDRINUSE or attempt == 4:
                        raise  # a port found free a moment ago, taken since by someone else, five times over
            ep = f"tcp://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        else:
            ep = endpoint_for("ipc")
            server = await asyncio.start_unix_server(on_conn, ep[6:])
        self.servers.append(server)
        self.endpoints[role.name] = await self.expose(ep, None)
        self.t.add(role.name, "listen", ep)

    async def expose(self, endpoint: str, owner: str | None, later: bool = False) -> str:
        """Where clients connect to reach a server (a recording proxy may stand in front of it)."""
        if self.capture is None:
            return endpoint
        ep = await self.capture.expose(endpoint, owner, later, self.ipc)
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
            raw = await self.raw(role.name)
            try:
                await RAW_STEPS[st.action](self, role, raw, st.arg)
            except RawFailure as exc:
                seen = show(exc.seen) if exc.seen is not None else None
                raise StepFailed(f"{role.name}: {exc}", expected=exc.expected, seen=seen) from None
            except ConnectionError as exc:
                raise StepFailed(f"{role.name}: connection lost: {exc}", seen="connection closed") from None
            return
        if st.action not in ("fault", "bind") and role.name not in self.sockets:
            raise StepFailed(f"{role.name}'s peer was killed and not restarted", expected="a restart first")
        await PEER_STEPS[st.action](self, role, st.arg)

    def check_received(self, role: str, spec: list[Any], got: list[bytes]) -> None:
        self.t.add(role, "recv", show(got))
        if not match(spec, got, self.vars):
            raise StepFailed(f"{role} received a different message", expected=describe_matchers(spec), seen=show(got))

    def _agent(self, role: Role) -> tuple[AgentProcess, str]:
        return self.agents[role.name], self.sockets[role.name]

    # -- steps of peer roles: an agent drives the implementation ------------------------------

    def _addressing(self, extra: dict[str, Any]) -> dict[str, Any]:
        """A send's group (RADIO) and routing id (SERVER), as the agent protocol carries them."""
        out: dict[str, Any] = {}
        if "group" in extra:
            out["group"] = extra["group"]
        if "routing_id" in extra:
            out["routing_id"] = frame_bytes([extra["routing_id"]], self.vars)[0].hex()
        return out

    async def peer_send(self, role: Role, a: Any) -> None:
        agent, sock = self._agent(role)
        message, extra = send_args(a)
        frames = frame_bytes(message, self.vars)
        fields = self._addressing(extra)
        self.t.add(role.name, "send", show(frames) + "".join(f" {k}={v}" for k, v in fields.items()))
        await agent.request(
            "send", socket=sock, frames=protocol.encode_frames(frames), timeout=DEFAULT_TIMEOUT, **fields
        )

    async def peer_try_send(self, role: Role, a: Any) -> None:
        agent, sock = self._agent(role)
        frames = frame_bytes(a, self.vars)
        try:
            await agent.request("send", socket=sock, frames=protocol.encode_frames(frames), timeout=0.5)
            self.t.add(role.name, "send", show(frames))
        except protocol.AgentError as exc:
            if exc.kind not in (protocol.TIMEOUT, protocol.FAILED):
                raise
            self.t.add(role.name, "send refused", f"{exc.kind}: {exc.message} (allowed here)")

    async def peer_send_more(self, role: Role, a: Any) -> None:
        agent, sock = self._agent(role)
        frames = frame_bytes(a, self.vars)
        self.t.add(role.name, "send more", show(frames) + " (the message goes on)")
        await agent.request("send_more", socket=sock, frames=protocol.encode_frames(frames), timeout=DEFAULT_TIMEOUT)

    async def peer_expect(self, role: Role, a: Any) -> None:
        agent, sock = self._agent(role)
        spec, timeout = expect_args(a)
        within = a.get("within", 1) if isinstance(a, dict) else 1
        passed: list[str] = []
        for _ in range(within):
            try:
                resp = await agent.request("recv", socket=sock, timeout=timeout)
            except protocol.AgentError as exc:
                if exc.kind == protocol.TIMEOUT:
                    raise StepFailed(
                        f"{role.name} received nothing within {timeout:g}s"
                        + (f" after {len(passed)} other message(s)" if passed else ""),
                        expected=describe_matchers(spec),
                        seen=", ".join([*passed, "nothing"]),
                    ) from None
                raise
            got = protocol.decode_frames(resp["frames"])
            if match(spec, got, self.vars):
                break
            passed.append(show(got))
            if len(passed) < within:
                # Another peer's message, which fair queuing may deliver first: read past it.
                self.t.add(role.name, "recv", f"{passed[-1]} (read past)")
        else:
            if within > 1:
                raise StepFailed(
                    f"{role.name} received {within} messages, none of them the one expected",
                    expected=f"{describe_matchers(spec)} among the next {within}",
                    seen=", ".join(passed),
                )
        self.check_received(role.name, spec, got)
        if isinstance(a, dict):
            self.check_addressing(role.name, a, resp)

    def check_addressing(self, role: str, a: dict[str, Any], resp: dict[str, Any]) -> None:
        """A received message's group (DISH) and routing id (SERVER) against the expectation."""
        if "group" in a and resp.get("group") != a["group"]:
            raise StepFailed(
                f"{role} received the message in another group",
                expected=f"group {a['group']!r}",
                seen=repr(resp.get("group")),
            )
        if "routing_id" in a:
            if not resp.get("routing_id"):
                raise StepFailed(
                    f"{role}'s agent reported no routing id with the message",
                    expected=describe_matchers([a["routing_id"]]),
                    seen="no routing_id in the recv answer",
                )
            got = bytes.fromhex(resp["routing_id"])
            if not match([a["routing_id"]], [got], self.vars):
                raise StepFailed(
                    f"{role} received the message from another routing id",
                    expected=describe_matchers([a["routing_id"]]),
                    seen=show([got]),
                )

    async def peer_join(self, role: Role, a: Any) -> None:
        agent, sock = self._agent(role)
        self.t.add(role.name, "join", a)
        await agent.request("join", socket=sock, group=a)

    async def peer_leave(self, role: Role, a: Any) -> None:
        agent, sock = self._agent(role)
        self.t.add(role.name, "leave", a)
        await agent.request("leave", socket=sock, group=a)

    async def peer_expect_nothing(self, role: Role, a: Any) -> None:
        agent, sock = self._agent(role)
        try:
            resp = await agent.request("recv", socket=sock, timeout=a)
        except protocol.AgentError as exc:
            if exc.kind == protocol.TIMEOUT:
                self.t.add(role.name, "recv", f"nothing for {a:g}s, as expected")
                return
            raise
        got = protocol.decode_frames(resp["frames"])
        raise StepFailed(f"{role.name} received a message where none was due", expected="nothing", seen=show(got))

    async def _subscription(self, role: Role, a: Any, op: str) -> None:
        agent, sock = self._agent(role)
        topic = topic_bytes(a)
        self.t.add(role.name, op, show(topic))
        await agent.request(op, socket=sock, topic=topic.hex())

    async def peer_subscribe(self, role: Role, a: Any) -> None:
        await self._subscription(role, a, "subscribe")

    async def peer_unsubscribe(self, role: Role, a: Any) -> None:
        await self._subscription(role, a, "unsubscribe")

    def receiver(self, role: Role) -> Callable[[float], Awaitable[list[bytes] | None]]:
        """A peer role's next message within a timeout, or None when none came."""
        agent, sock = self._agent(role)

        async def receive(timeout: float) -> list[bytes] | None:
            try:
                resp = await agent.request("recv", socket=sock, timeout=timeout)
            except protocol.AgentError as exc:
                if exc.kind == protocol.TIMEOUT:
                    return None
                raise
            return protocol.decode_frames(resp["frames"])

        return receive

    async def peer_await_subscription(self, role: Role, a: Any) -> None:
        await self.await_subscription(role, a, self.receiver(role))

    async def await_subscription(
        self, role: Role, a: dict[str, Any], receive: Callable[[float], Awaitable[list[bytes] | None]]
    ) -> None:
        """The subscriber's earlier (un)subscribes have reached the publisher: a probe got through.

        A publisher drops what no subscription matches and tells its application nothing when a
        subscription arrives, so scenarios used to pause and hope. A probe that arrives is proof:
        the publisher takes a connection's commands in order, so the subscription the probe matched
        being in effect means every (un)subscribe sent on that connection before it is too. The
        probes sent after the first to arrive match as well and follow it in order; they are read
        here, so the scenario's next expect sees only its own messages.
        """
        publisher = self.cell.scenario.roles[a["publisher"]]
        agent, sock = self._agent(publisher)
        topic = topic_bytes(a["topic"])
        timeout = a.get("timeout", DEFAULT_TIMEOUT)
        deadline = time.monotonic() + timeout
        sent, got = 0, None
        while got is None:
            if time.monotonic() > deadline:
                raise StepFailed(
                    f"none of the {sent} probes {publisher.name} published on {show(topic)} reached {role.name}"
                    f" within {timeout:g}s: the subscription is not in effect",
                    expected=f"a message beginning {show(topic)}",
                    seen="nothing",
                )
            sent += 1
            await agent.request("send", socket=sock, frames=[probe(topic, sent).hex()], timeout=DEFAULT_TIMEOUT)
            got = await receive(PROBE_INTERVAL)
        first = last = probe_number(role.name, topic, got)
        while last < sent:
            got = await receive(DEFAULT_TIMEOUT)
            if got is None:
                raise StepFailed(
                    f"{role.name} received probe {last} of the {sent} {publisher.name} published on {show(topic)},"
                    " then nothing: the probes after one that arrived match the same subscription",
                    expected=show([probe(topic, last + 1)]),
                    seen="nothing",
                )
            last = probe_number(role.name, topic, got, last + 1)
        self.t.add(role.name, "subscribed", f"probe {first} of {sent} on {show(topic)} arrived, the rest read")

    async def peer_send_expect_error(self, role: Role, a: Any) -> None:
        agent, sock = self._agent(role)
        frames = frame_bytes(a["message"], self.vars)
        fields = self._addressing(a)
        try:
            await agent.request(
                "send", socket=sock, frames=protocol.encode_frames(frames), timeout=DEFAULT_TIMEOUT, **fields
            )
        except protocol.AgentError as exc:
            self.t.add(role.name, "send failed", f"{exc.kind}: {exc.message}")
            if exc.kind != a["error"]:
                raise StepFailed(
                    f"{role.name}'s send failed with {exc.kind}", expected=a["error"], seen=exc.kind
                ) from None
            return
        raise StepFailed(f"{role.name}'s send succeeded", expected=f"error {a['error']}", seen="success")

    async def peer_expect_event(self, role: Role, a: Any) -> None:
        agent, sock = self._agent(role)
        await self.expect_event(role.name, agent, sock, a)

    async def peer_expect_zap(self, role: Role, a: Any) -> None:
        """The ZAP requests the role's implementation sent to its agent's handler, judged by zap.py."""
        if role.side != "server":
            raise StepFailed(f"expect_zap is for server roles; {role.name} is a client and asks no ZAP handler")
        agent = self.agents[role.name]
        want, timeout = a.get("count", 1), a.get("timeout", DEFAULT_TIMEOUT)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        requests: list[list[bytes]] = []
        while True:
            try:
                resp = await agent.request("zap_requests")
            except protocol.AgentError as exc:
                if exc.kind == protocol.UNSUPPORTED:
                    raise Unsupported(f"{agent.name}: {exc.message}", agent.name) from None
                raise
            handler = resp["handler"]
            requests += [protocol.decode_frames(r) for r in resp["requests"]]
            # A request comes before the handshake it decides, so once `want` are in the rest of the
            # scenario's handshakes have asked too; `count: 0` waits out the timeout for none to come.
            if (want and len(requests) >= want) or loop.time() >= deadline:
                break
            await asyncio.sleep(0.05)
        for n, frames in enumerate(requests, 1):
            self.t.add(role.name, "zap request", f"{n} via {handler}: {zap.describe(frames, handler)}")
        if not requests:
            self.t.add(role.name, "zap request", f"none within {timeout:g}s")
        problems = zap.check_requests(requests, handler, a, self.vars, over_ip=self.cell.transport == "tcp")
        if problems:
            more = f" (and {len(problems) - 1} more: {'; '.join(map(str, problems[1:]))})" if problems[1:] else ""
            raise StepFailed(
                f"{role.name}'s ZAP requests depart from RFC 27 or the scenario: {problems[0]}{more}",
                expected=problems[0].expected,
                seen=problems[0].seen,
            )

    async def peer_bind(self, role: Role, a: Any) -> None:
        # The loader allows this step only on a deferred role; what it cannot see is a second one.
        if role.name in self.sockets:
            raise StepFailed(f"{role.name} is bound already: a deferred server binds once")
        await self.open_role(role)
        if self.capture is not None:
            await self.capture.listening(without_resource(self.bound[role.name]))

    async def peer_fault(self, role: Role, a: Any) -> None:
        await self.fault(role, a)

    async def peer_reopen(self, role: Role, a: Any) -> None:
        await self.reopen(role)

    async def peer_send_numbered(self, role: Role, a: Any) -> None:
        await self.send_numbered(role, a)

    async def peer_expect_numbered(self, role: Role, a: Any) -> None:
        await self.expect_numbered(role, a, self.receiver(role), self._end_marker(role, a))

    def _end_marker(self, role: Role, a: dict[str, Any]) -> Callable[[], Awaitable[bool]] | None:
        """How the sender of a lossy numbered run says "that was all", where that can be trusted.

        A PUB, XPUB or ROUTER queues a message behind every one it queued before on the same
        connection, so once an END_MARKER it sent arrives, nothing more of the run can: the quiet
        period that proves a loss ends there instead of at the timeout. Only as the scenario's
        last step (later steps must not meet a marker) and after send_until_full (whose message
        gives a ROUTER's envelope); the sender drops a marker its full queue cannot take, so it
        sends one again after each quiet MARKER_INTERVAL. A marker it fails to send ends the markers.
        """
        sender = self.cell.scenario.roles.get(a.get("sent_by", ""))
        steps = self.cell.scenario.steps
        if (
            sender is None
            or sender.raw
            or sender.type not in ("PUB", "XPUB", "ROUTER")
            or not (a.get("must_lose") or a.get("may_lose"))
            or steps[-1].action != "expect_numbered"
            or steps[-1].role != role.name
            or sender.name not in self.until_full_message
        ):
            return None
        agent, sock = self._agent(sender)
        frames = [*self.until_full_message[sender.name][:-1], END_MARKER]
        usable = [True]

        async def mark() -> bool:
            if usable[0]:
                try:
                    await agent.request("send", socket=sock, frames=protocol.encode_frames(frames), timeout=0.5)
                    self.t.add(sender.name, "send", f"{show(frames)} (end of the numbered run)")
                except protocol.AgentError as exc:
                    usable[0] = False
                    self.t.add(sender.name, "send", f"no end marker: {exc.message}")
            return usable[0]

        return mark

    async def peer_send_until_full(self, role: Role, a: Any) -> None:
        await self.send_until_full(role, a)

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
                raise Unsupported(f"{agent.name}: {exc.message}", agent.name) from None
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

    # -- steps of raw roles: the harness plays the peer byte by byte --------------------------

    async def raw_send_raw(self, role: Role, raw: RawPeer, a: Any) -> None:
        await raw.write(build(a, lambda frames: frame_bytes(frames, self.vars), raw.last_sent))

    async def raw_expect_raw(self, role: Role, raw: RawPeer, a: Any) -> None:
        await raw.expect(a)

    async def raw_handshake(self, role: Role, raw: RawPeer, a: Any) -> None:
        # Either side speaks the cell's mechanism through the raw peer's own codec.
        client = role.side == "client"
        if not client and "curve_secretkey" in a:
            raise StepFailed(f"{role.name}: curve_secretkey is a raw CURVE client's; a raw server uses the test key")
        mechanism = (
            client_mechanism(self.cell.mechanism, a.get("curve_secretkey"))
            if client
            else server_mechanism(self.cell.mechanism)
        )
        await raw.handshake(
            a["type"],
            as_server=not client,
            minor=a.get("minor"),
            identity=a.get("identity", "").encode(),
            mechanism=mechanism,
            properties=[(k, v.encode()) for k, v in a.get("properties", {}).items()],
            lowercase_names=a.get("lowercase_names", False),
            corrupt=a.get("corrupt"),
            distinct_from=self.raws[a["distinct_from"]] if "distinct_from" in a else None,
            replay_initiate_of=self.raws[a["replay_initiate_of"]] if "replay_initiate_of" in a else None,
            stop_after=a.get("stop_after"),
            refuse=a["refuse"].encode("ascii") if "refuse" in a else None,
        )
        want = a.get("peer_properties") or {}
        theirs = (raw.conn.mech.peer if raw.conn is not None else None) or {}
        wrong = [name for name, value in want.items() if theirs.get(name.lower()) != value.encode()]
        if wrong:
            # Names without regard to case, values octet for octet (RFC 37's metadata).
            lacking = ", ".join(f"{n}: {want[n]}" for n in wrong)
            raise StepFailed(
                f"{role.name}: the peer's metadata (READY, or INITIATE under PLAIN and CURVE) lacks {lacking}",
                expected=lacking,
                seen=", ".join(f"{k}: {v.decode('latin-1')}" for k, v in theirs.items()) or "no metadata",
            )

    async def raw_subscribe(self, role: Role, raw: RawPeer, a: Any) -> None:
        await raw.subscribe(topic_bytes(a))

    async def raw_send(self, role: Role, raw: RawPeer, a: Any) -> None:
        message, extra = send_args(a)
        if extra:
            raise StepFailed(
                f"{role.name}: group and routing_id are for peer roles; a raw role writes them with send_raw"
            )
        rfc_form = isinstance(a, dict) and a.get("curve_message") == "command"
        await raw.send_message(frame_bytes(message, self.vars), rfc_form=rfc_form)

    async def raw_flood(self, role: Role, raw: RawPeer, a: Any) -> None:
        frames = frame_bytes(a["message"], self.vars)
        messages = [[*frames[:-1], b"%d " % n + frames[-1]] for n in range(a["count"])]
        written, left = await raw.flood(messages, a["drained"])
        self.sent_until_full[role.name] = a["count"]
        if left:
            raise StepFailed(
                f"{role.name}'s peer took {written - left} of {written} octets within {a['drained']:g}s while its"
                " application read nothing: it stopped reading the connection (pushed back) instead of discarding"
                " what its full queue could not hold",
                expected=f"all {written} octets taken",
                seen=f"{left} left unread",
            )
        self.t.add(role.name, "drained", f"the peer took all {written} octets within {a['drained']:g}s")

    async def raw_expect_numbered(self, role: Role, raw: RawPeer, a: Any) -> None:
        async def receive(timeout: float) -> list[bytes] | None:
            try:
                return await raw.recv_message(timeout)
            except (TimeoutError, ConnectionResetError):
                return None

        await self.expect_numbered(role, a, receive)

    async def raw_await_subscription(self, role: Role, raw: RawPeer, a: Any) -> None:
        async def receive(timeout: float) -> list[bytes] | None:
            try:
                return await raw.recv_message(timeout)
            except TimeoutError:
                return None

        await self.await_subscription(role, a, receive)

    async def raw_expect(self, role: Role, raw: RawPeer, a: Any) -> None:
        if isinstance(a, dict) and "within" in a:
            raise StepFailed(f"{role.name}: within is for peer roles; a raw role has one peer, read in order")
        if isinstance(a, dict) and {"group", "routing_id"} & set(a):
            raise StepFailed(
                f"{role.name}: group and routing_id are for peer roles; a raw role reads them with expect_raw"
            )
        spec, timeout = expect_args(a)
        try:
            got = await raw.recv_message(timeout)
        except TimeoutError:
            raise StepFailed(
                f"{role.name} received nothing within {timeout:g}s", expected=describe_matchers(spec), seen="nothing"
            ) from None
        self.check_received(role.name, spec, got)

    async def raw_expect_nothing(self, role: Role, raw: RawPeer, a: Any) -> None:
        try:
            got = await raw.recv_message(a)
        except TimeoutError:
            return
        raise StepFailed(f"{role.name} received a message where none was due", expected="nothing", seen=show(got))

    async def raw_expect_close(self, role: Role, raw: RawPeer, a: Any) -> None:
        if isinstance(a, dict):
            seen = await raw.expect_close(a["timeout"])
            if a.get("silent") and seen:
                raise RawFailure("the peer sent bytes before closing", expected="a close and nothing else", seen=seen)
        else:
            await raw.expect_close(a)

    async def raw_expect_open(self, role: Role, raw: RawPeer, a: Any) -> None:
        await raw.expect_open(a)

    async def raw_expect_no_connection(self, role: Role, raw: RawPeer, a: Any) -> None:
        await raw.expect_no_connection(a)

    async def raw_expect_silence(self, role: Role, raw: RawPeer, a: Any) -> None:
        if isinstance(a, dict):
            await raw.expect_silence(a["timeout"], may_close=a.get("may_close", False))
        else:
            await raw.expect_silence(a)

    async def raw_expect_response(self, role: Role, raw: RawPeer, a: Any) -> None:
        await raw.expect_response(a)

    async def raw_disconnect(self, role: Role, raw: RawPeer, a: Any) -> None:
        await raw.disconnect()

    async def raw_connect(self, role: Role, raw: RawPeer, a: Any) -> None:
        # The loader allows this step only on a deferred role; what it cannot see is a second one.
        if raw.writer is not None:
            raise StepFailed(f"{role.name} is connected already: a deferred role connects once")
        await self.connect_raw(role)

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
            if server.type in ("PULL", "ROUTER", "DEALER", "PAIR", "REP", "XSUB", "SUB", "SERVER", "GATHER"):
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
        for pending in self.respawn.values():
            # A cell that ended between a kill and its restart: the successor joins the pool (or its
            # failed start is dropped), not left running unowned into the next cell.
            try:
                await pending
            except Exception:  # whatever a backend raises: no step needed this agent
                pass
        self.respawn.clear()
        for agent in self.paused:
            try:
                await agent.unpause()
            except Exception as exc:  # whatever the backend raises: the rest of the teardown must run
                self.t.add("harness", "unpause failed", f"{agent.name}: {exc!r}")
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


# Each action of the vocabulary that a role kind may use has exactly one handler here
# (a test holds the two tables to vocabulary.ACTIONS).
PEER_STEPS: dict[str, Callable[[CellRun, Role, Any], Awaitable[None]]] = {
    name: getattr(CellRun, f"peer_{name}") for name, a in ACTIONS.items() if PEER in a.roles
}
RAW_STEPS: dict[str, Callable[[CellRun, Role, RawPeer, Any], Awaitable[None]]] = {
    name: getattr(CellRun, f"raw_{name}") for name, a in ACTIONS.items() if RAW in a.roles
}


def name_the_dead(reason: str, died: list[tuple[str, str]]) -> str:
    """`reason` ending with "(<agent> died: <its last words>)" for each agent that died on its own.

    However a step found the death out (a reset, a refused connect, an agent that answered
    nothing or was already gone), the reason ends the same way, so that one deviation entry
    matches the crash however it was noticed. Last words the step already quoted as the agent's
    stderr move into that ending rather than being said twice.
    """
    said = []
    for name, words in died:
        hint = f"; agent stderr: {words}"
        if words and hint in reason:
            reason = reason.replace(hint, "")
        said.append(f"{name} died: {words or 'nothing on its stderr'}")
    return f"{reason} ({'; '.join(said)})" if said else reason


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
    clock = run.clock
    clock.switch("harness")  # whatever no other phase claims: verdicts, deviation lookup, records
    result = CellResult(cell, Outcome.PASSED)
    where, action = "setup", "setup"
    try:
        if capture is not None:
            with clock.phase("sniffer"):
                await capture.begin()
        with clock.phase("setup"):
            await run.setup()
        for i, st in enumerate(cell.scenario.steps):
            where, action = str(i), st.action
            with clock.phase(f"step:{st.action}"):
                await run.step(st)
        if cell.scenario.hostile:
            where, action = "sanity", "sanity"
            with clock.phase("sanity"):
                await run.sanity()
    except Unsupported as exc:
        result.outcome, result.reason = Outcome.UNSUPPORTED, str(exc)
        claims_all = exc.agent and _claims_everything(pool, exc.agent)
        if claims_all:
            result.outcome, result.reason = Outcome.FAILED, f"{exc} (impl claims every feature the scenarios use)"
    except StepFailed as exc:
        result.outcome, result.reason, result.expected, result.seen = Outcome.FAILED, str(exc), exc.expected, exc.seen
    except protocol.AgentError as exc:
        unsupported = exc.kind == protocol.UNSUPPORTED and not _claims_everything(pool, exc.peer)
        result.outcome, result.reason = (Outcome.UNSUPPORTED if unsupported else Outcome.FAILED), str(exc)
    except (OSError, TimeoutError) as exc:
        result.outcome, result.reason = Outcome.FAILED, f"{type(exc).__name__}: {exc}"
    finally:
        with clock.phase("teardown"):
            died = await run.deaths() if result.outcome == Outcome.FAILED else []
            await run.teardown()
    if result.outcome == Outcome.FAILED:
        result.reason = name_the_dead(result.reason, died)
        result.step, result.action = where, action
        failure = Failure(where, action, result.reason, result.expected, result.seen)
        dev = find(deviations, cell.scenario.id, cell.server, cell.client, failure, cell.mechanism, cell.transport)
        if dev is not None:
            result.outcome, result.deviation = Outcome.DEVIATES, dev
    if capture is not None and capture_path is not None:
        with clock.phase("wire"):
            result.wire = await judge_wire(run, capture, capture_path, wire_table or [], result)
    if result.reason:
        run.t.add("harness", result.outcome.upper(), result.reason)
    clock.switch(None)
    result.duration = time.monotonic() - start
    result.phases = clock.spent
    result.transcript = run.t.text()
    result.versions = run.versions
    result.measurements = run.measurements
    return result


# How long a subscriber listens for each probe before the publisher sends the next: short, as the
# first probe after the subscription arrives ends the wait.
PROBE_INTERVAL = 0.02
# The last frame of the message that ends a lossy numbered run (see CellRun._end_marker), and how
# long a quiet receiver waits before the sender sends it (again).
END_MARKER = b"end of the numbered run"
MARKER_INTERVAL = 0.2


def probe(topic: bytes, n: int) -> bytes:
    return topic + b" probe %d" % n


def probe_number(role: str, topic: bytes, got: list[bytes], exactly: int | None = None) -> int:
    """The number of the probe `got`, which must be a probe (probe `exactly`, when given)."""
    prefix = topic + b" probe "
    number = got[0][len(prefix) :] if len(got) == 1 and got[0].startswith(prefix) else b""
    if not number.isdigit() or (exactly is not None and int(number) != exactly):
        raise StepFailed(
            f"{role} received something other than the publisher's probe while waiting for it",
            expected=show([probe(topic, exactly)]) if exactly else f"a probe: {show([prefix])} and a number",
            seen=show(got),
        )
    return int(number)


def _claims_everything(pool: AgentPool, agent: str) -> bool:
    """impl is the reference: an agent of its family answering unsupported is a failure, not a gap."""
    spec = pool.specs.get(agent.split("/", 1)[0])
    return spec is not None and (spec.family or spec.name) == "impl"


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
    for peer in wire.silent:
        run.t.add("wire", "silent", f"{peer} connected and sent nothing, not even its greeting")
    unknown = wire.unknown
    if unknown:
        text = "; ".join(str(f) for f in unknown)
        if result.outcome in (Outcome.PASSED, Outcome.DEVIATES):
            result.outcome, result.deviation = Outcome.FAILED, None
            result.reason = f"wire: {text}"
            result.expected = "every octet the peers send conforms to the RFCs"
            result.seen = f"{unknown[0].violation.check}: {unknown[0].violation.octets}"
        elif result.outcome == Outcome.FAILED:
            result.reason += f"; wire: {text}"
    return wire
