"""Peers: the implementations under test, and the agent processes that drive them.

The local registry is conformance/peers.yaml: one entry per peer, naming
the command that starts its agent and what it needs. Plugging in another
implementation is one agent program and one entry there. The docker
backend's registry is docker/versions.yaml (containers/images.py): the same
agents, each in an image.
"""

from __future__ import annotations

import asyncio
import fcntl
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import protocol

HERE = Path(__file__).resolve().parent
REGISTRY = HERE.parent / "peers.yaml"
BUILD_DIR = HERE.parent / ".build"

# Lines an agent prints as it dies: a panic, a fatal error, Rust's allocation-failure abort
# ("memory allocation of N bytes failed"), an uncaught exception, a signal, a failed assertion.
DEATH = re.compile(r"panic|fatal|abort|Exception|SIGSEGV|overflow|assert|memory allocation|out of memory", re.I)


def last_words(lines: list[str]) -> str:
    """The stderr lines that say why an agent died, else its last lines.

    A Go panic or a Java exception ends in a stack trace, so the line that names the cause is
    rarely among the last few: it is picked out wherever it is in the tail kept.
    """
    why = [ln for ln in lines if DEATH.search(ln)]
    return " | ".join(why[:3] or lines[-4:])[:600]


def _expand(part: str) -> str:
    return (
        part.replace("{root}", str(HERE.parent))
        .replace("{build}", str(BUILD_DIR))
        .replace("{agents}", str(HERE / "agents"))
    )


# Folders a build writes into its sources' tree; never a reason to rebuild.
_BUILD_LITTER = {"target", "node_modules", "__pycache__", ".gradle"}


def _source_mtimes(paths: list[Path]) -> list[float]:
    times = []
    for path in paths:
        if path.is_dir():
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames[:] = [d for d in dirnames if d not in _BUILD_LITTER]
                times += [os.stat(os.path.join(dirpath, f)).st_mtime for f in filenames]
        elif path.exists():
            times.append(path.stat().st_mtime)
    return times


# Only the connecting side's silence is recognised in a capture (wire.py `silent`): a server that
# never answers looks, on the wire, like a client that has not spoken yet.
STALL_SIDES = ("client",)
STALL_KEYS = {"id", "side", "upstream", "cause"}


# How often a cell (or the fuzzer's sanity exchange) that failed by a declared stall is run again.
STALL_RERUNS = 2


class KnownStallError(ValueError):
    """A `known_stalls` declaration that cannot be used; the loader adds the file."""


@dataclass(frozen=True)
class KnownStall:
    """A reviewed, random stall of a peer with a known upstream cause: a failed cell whose capture
    shows this peer connect on `side` and send nothing is run again (plugin.py), never excused."""

    id: str
    side: str
    upstream: str  # where it is being fixed, e.g. "zeromq/jeromq PR 1022"
    cause: str  # one line: the mechanism in the implementation


def parse_known_stalls(peer: str, value: Any) -> tuple[KnownStall, ...]:
    """A peer entry's `known_stalls:` list, checked; KnownStallError says what is wrong with which item."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise KnownStallError(f"peer {peer!r}: known_stalls must be a list of mappings, not {type(value).__name__}")
    out: list[KnownStall] = []
    for i, item in enumerate(value, 1):
        where = f"peer {peer!r}: known_stalls item {i}"
        if not isinstance(item, dict):
            raise KnownStallError(f"{where} must be a mapping with {', '.join(sorted(STALL_KEYS))}")
        missing, unknown = STALL_KEYS - set(item), set(item) - STALL_KEYS
        if missing or unknown:
            what = [f"lacks {', '.join(sorted(missing))}"] if missing else []
            what += [f"has unknown key(s) {', '.join(sorted(unknown))}"] if unknown else []
            raise KnownStallError(f"{where} {' and '.join(what)}")
        for key in sorted(STALL_KEYS):
            text = item[key]
            if not isinstance(text, str) or not text.strip() or "\n" in text.strip():
                raise KnownStallError(f"{where}: {key} must be one non-empty line of text, not {text!r}")
        if item["side"] not in STALL_SIDES:
            raise KnownStallError(
                f"{where}: side must be {' or '.join(STALL_SIDES)}, not {item['side']!r} "
                "(a capture shows a stall only on the side that connects)"
            )
        if item["id"] in {s.id for s in out}:
            raise KnownStallError(f"{where}: id {item['id']!r} is used twice")
        out.append(KnownStall(item["id"].strip(), item["side"], item["upstream"].strip(), item["cause"].strip()))
    return tuple(out)


@dataclass
class PeerSpec:
    name: str
    command: list[str]
    description: str = ""
    requires_modules: list[str] = field(default_factory=list)
    requires_commands: list[str] = field(default_factory=list)
    requires_files: list[str] = field(default_factory=list)
    build: list[str] = field(default_factory=list)  # command that compiles the agent
    build_output: str = ""  # what it makes; rebuilt when older than build_sources
    build_sources: list[str] = field(default_factory=list)
    keylog: str = ""  # how the peer exports CURVE transient keys: "zmtp", "sodium" (preload shim) or ""
    family: str = ""  # the implementation this peer is a version of (default: its name), for the deviation tables
    image: str = ""  # docker backend: the image whose agent this peer is (containers/images.py)
    # Why this peer's failed cells do not (yet) fail a run: a newly added implementation whose
    # findings are still being triaged into the deviation table. Its cells still show as failed.
    provisional: str = ""
    known_stalls: tuple[KnownStall, ...] = ()

    @property
    def backend(self) -> str:
        return "docker" if self.image else "local"

    def argv(self) -> list[str]:
        return [sys.executable if part == "{python}" else _expand(part) for part in self.command]

    def ensure_built(self) -> str | None:
        """Compile the agent if it is missing or stale; None, or why it could not be built.

        Images are built once per run, before any worker starts (containers.images.build_all).
        """
        if not self.build or self.image:
            return None
        out = Path(_expand(self.build_output))
        if self._fresh(out):
            return None
        out.parent.mkdir(parents=True, exist_ok=True)
        # xdist workers may all ask at once: one builds, the others wait on the lock and find it fresh.
        with open(out.parent / f".{out.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self._fresh(out):
                return None
            # Build beside the target and rename, so parallel workers never run a half-written file.
            tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
            cmd = [_expand(p).replace(str(out), str(tmp)) for p in self.build]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                tmp.unlink(missing_ok=True)
                why = (proc.stderr.strip() or proc.stdout.strip())[-1500:]
                return f"building the {self.name} agent failed ({' '.join(cmd)}): {why}"
            if tmp.exists():
                tmp.replace(out)
            elif not out.exists():
                return f"building the {self.name} agent ({' '.join(cmd)}) made no {out}"
            out.touch()
        return None

    def _fresh(self, out: Path) -> bool:
        """The output exists and is newer than every source file (folders are walked)."""
        if not out.exists():
            return False
        built = out.stat().st_mtime
        return all(mtime <= built for mtime in _source_mtimes([Path(_expand(s)) for s in self.build_sources]))

    def missing(self) -> str | None:
        """Why this peer cannot run here, or None when it can."""
        if self.image:
            from .containers import engine

            return engine.image_missing(self.image)
        for mod in self.requires_modules:
            if importlib.util.find_spec(mod) is None:
                return f"Python module {mod!r} is not installed (pip install {mod})"
        for cmd in self.requires_commands:
            if shutil.which(cmd) is None:
                return f"command {cmd!r} is not on PATH"
        for f in self.requires_files:
            path = _expand(f)
            if not os.path.exists(path):
                return f"{path} does not exist{self.hint}"
        return None

    @property
    def hint(self) -> str:
        return f" ({self.description})" if self.description else ""


def load_registry(path: Path = REGISTRY) -> dict[str, PeerSpec]:
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise SystemExit(f"cannot read the peer registry {path}: {exc}") from None
    peers = {}
    for name, entry in (raw.get("peers") or {}).items():
        if not isinstance(entry, dict) or "command" not in entry:
            raise SystemExit(f"{path}: peer {name!r} needs a 'command' list")
        req = entry.get("requires") or {}
        build = entry.get("build") or {}
        peers[name] = PeerSpec(
            name=name,
            command=list(entry["command"]),
            description=entry.get("description", ""),
            requires_modules=list(req.get("modules", [])),
            requires_commands=list(req.get("commands", [])),
            requires_files=list(req.get("files", [])),
            build=list(build.get("command", [])),
            build_output=build.get("output", ""),
            build_sources=list(build.get("sources", [])),
            keylog=entry.get("keylog", ""),
            family=entry.get("family", name),
            provisional=entry.get("provisional", ""),
            known_stalls=_known_stalls(path, name, entry.get("known_stalls")),
        )
    return peers


def _known_stalls(path: Path, name: str, value: Any) -> tuple[KnownStall, ...]:
    try:
        return parse_known_stalls(name, value)
    except KnownStallError as exc:
        raise SystemExit(f"{path}: {exc}") from None


class AgentProcess:
    """One running agent; requests go one at a time, each with a deadline."""

    def __init__(
        self,
        spec: PeerSpec,
        name: str | None = None,
        extra_args: list[str] | None = None,
        keylog: Path | None = None,
    ) -> None:
        self.spec = spec
        self.keylog = keylog
        self.name = name or spec.name
        self.extra_args = extra_args or []
        self.proc: asyncio.subprocess.Process | None = None
        # The control channel: the agent's stdout and stdin here, a TCP connection for a container.
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.hello: dict[str, Any] = {}
        self._id = 0
        self._lock = asyncio.Lock()
        self.stderr_tail: list[str] = []
        self._stderr_task: asyncio.Task[None] | None = None
        self.stopping = False  # stop() was called: an exit from now on is ours, not a death
        self.died = False  # the agent exited (or its channel broke) without being asked to

    async def start(self) -> dict[str, Any]:
        why = self.spec.ensure_built()
        if why:
            raise protocol.AgentError(protocol.FAILED, why, self.name)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(HERE.parent), str(HERE.parent.parent / "impl"), env.get("PYTHONPATH", "")]
        )
        env.pop("ZMTP_CURVE_KEYLOG", None)
        if self.keylog is not None and self.spec.keylog:
            from .capture.keylog import agent_env

            env.update(agent_env(self.spec.keylog, self.keylog))
        self.proc = await asyncio.create_subprocess_exec(
            *self.spec.argv(),
            *self.extra_args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            limit=1 << 26,
        )
        self.reader, self.writer = self.proc.stdout, self.proc.stdin
        self._stderr_task = asyncio.get_running_loop().create_task(self._drain_stderr(self.proc.stderr))
        self.hello = await self.request("hello", deadline=20.0)
        return self.hello

    async def _drain_stderr(self, stream: asyncio.StreamReader | None) -> None:
        assert stream is not None
        while line := await stream.readline():
            self.stderr_tail = [*self.stderr_tail[-80:], line.decode(errors="replace").rstrip()]

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    @property
    def versions(self) -> dict[str, str]:
        return dict(self.hello.get("versions", {}))

    async def request(self, op: str, deadline: float | None = None, **fields: Any) -> dict[str, Any]:
        """Send one request; `deadline` bounds our wait (default: the op's own timeout + 10 s)."""
        timeout = deadline if deadline is not None else float(fields.get("timeout") or 0) + 10.0
        if not self.alive:
            self.died = self.died or not self.stopping
            await self.until_exited(grace=0.5)  # its last stderr lines may still be on their way
            raise protocol.AgentError(protocol.FAILED, f"agent is not running{self._stderr_hint()}", self.name)
        async with self._lock:
            self._id += 1
            req = {"id": self._id, "op": op, **fields}
            assert self.reader is not None and self.writer is not None
            self.writer.write(protocol.dump(req))
            try:
                await self.writer.drain()
                line = await asyncio.wait_for(self.reader.readline(), timeout)
            except TimeoutError:
                hint = self._stderr_hint()
                await self.stop()
                raise protocol.AgentError(
                    protocol.FAILED, f"no answer to {op} within {timeout:g}s{hint}", self.name
                ) from None
            except ConnectionError:
                # A reset control channel is the agent dying, as an EOF is: report it the same way.
                line = b""
            if not line:
                # The reason a process died is in its last stderr lines; they can trail the EOF.
                self.died = True
                await self.until_exited()
                hint = self._stderr_hint()
                await self.stop()
                raise protocol.AgentError(protocol.FAILED, f"agent exited during {op}{hint}", self.name)
            try:
                resp = json.loads(line)
            except ValueError:
                raise protocol.AgentError(
                    protocol.INVALID, f"agent answered {op} with a line that is not JSON: {line[:200]!r}", self.name
                ) from None
            if resp.get("id") != self._id:
                raise protocol.AgentError(
                    protocol.INVALID, f"answer id {resp.get('id')} for request {self._id}", self.name
                )
            if not resp.get("ok"):
                err = resp.get("error") or {}
                raise protocol.AgentError(err.get("kind", protocol.FAILED), err.get("message", "?"), self.name)
            return resp

    async def until_exited(self, grace: float = 2.0) -> None:
        """Wait (a little) for a dying agent to exit and for its stderr to be read to the end."""
        try:
            if self.proc is not None:
                await asyncio.wait_for(self.proc.wait(), grace)
            if self._stderr_task is not None:
                await asyncio.wait_for(asyncio.shield(self._stderr_task), grace)
        except TimeoutError:
            pass

    def last_words(self) -> str:
        """What the agent's stderr says about its death (or its last lines); empty if nothing."""
        return last_words(self.stderr_tail)

    def _stderr_hint(self) -> str:
        words = self.last_words()
        return f"; agent stderr: {words}" if words else ""

    async def kill(self) -> None:
        """Fault: the agent dies at once (SIGKILL), and its implementation's connections with it."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    async def pause(self) -> None:
        """Fault: the agent stops answering anything (SIGSTOP); its connections stay open."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGSTOP)

    async def unpause(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGCONT)

    async def recycle(self) -> Any:
        """Stop this agent so that a fresh one takes its place; what the successor can reuse.

        A local agent leaves nothing (None); a container's agent leaves its container, whose relay
        starts the next agent at once (containers/agent.py).
        """
        await self.stop()
        return None

    async def stop(self) -> None:
        self.stopping = True
        if self.proc is None:
            return
        if self.proc.returncode is None:
            try:
                if self.proc.stdin is not None:
                    self.proc.stdin.write(protocol.dump({"id": 0, "op": "quit"}))
                    await self.proc.stdin.drain()
                await asyncio.wait_for(self.proc.wait(), 2)
            except (TimeoutError, ConnectionError):
                self.proc.kill()
                await self.proc.wait()


def make_agent(
    spec: PeerSpec, name: str | None = None, extra_args: list[str] | None = None, keylog: Path | None = None
) -> AgentProcess:
    """An agent for this peer: a local process, or a container for an image peer."""
    if spec.image:
        from .containers.agent import ContainerAgent

        return ContainerAgent(spec, name, extra_args, keylog)
    return AgentProcess(spec, name, extra_args, keylog)


async def probe(spec: PeerSpec) -> tuple[dict[str, str] | None, str | None]:
    """(versions, None) when the peer runs here, or (None, why not)."""
    why = spec.missing()
    if why:
        return None, why
    agent = make_agent(spec)
    try:
        await agent.start()
        return agent.versions, None
    except (protocol.AgentError, OSError) as exc:
        return None, f"agent did not start: {exc}"
    finally:
        await agent.stop()


class AgentPool:
    """Agents kept running across cells: one process per (peer, side), restarted if it dies."""

    def __init__(
        self, specs: dict[str, PeerSpec], extra_args: dict[str, list[str]] | None = None, keylog: Path | None = None
    ) -> None:
        self.specs = specs
        self.extra_args = extra_args or {}
        self.keylog = keylog  # where agents write CURVE transient keys (None: nowhere)
        self.agents: dict[tuple[str, str], AgentProcess] = {}
        # What a recycled agent left for its successor (a container whose relay started the next agent).
        self.hosts: dict[tuple[str, str], Any] = {}

    async def get(self, peer: str, side: str) -> AgentProcess:
        key = (peer, side)
        agent = self.agents.get(key)
        if agent is None or not agent.alive:
            if agent is not None:
                # A dead agent's leftovers go, except a container whose agent a fault killed: its
                # relay is starting the successor.
                await self._keep(key, await agent.recycle())
            host = self.hosts.pop(key, None)
            agent = self._new_agent(peer, side)
            if host is not None:
                try:
                    await agent.succeed(host)  # type: ignore[attr-defined]
                except protocol.AgentError:
                    # An image whose relay does not respawn, or a container that ended: start afresh.
                    agent = self._new_agent(peer, side)
                    await agent.start()
            else:
                await agent.start()
            self.agents[key] = agent
        return agent

    def _new_agent(self, peer: str, side: str) -> AgentProcess:
        return make_agent(self.specs[peer], name=f"{peer}/{side}", extra_args=self.extra_args.get(peer), keylog=self.keylog)

    async def _keep(self, key: tuple[str, str], host: Any) -> None:
        """Keep what a recycled agent left for the next agent of `key` (nothing: None)."""
        if host is not None:
            stale = self.hosts.pop(key, None)
            if stale is not None:
                await stale.close()
            self.hosts[key] = host

    async def discard(self, *peers: str) -> None:
        """Stop these peers' agents on both sides, so the next use starts them afresh.

        Whatever state a failure left in an agent (a socket stuck mid-handshake, a library's I/O
        thread gone) must not reach what runs next; after one cell, `discard_cell` stops only the
        agents that cell used.
        """
        await self._stop([k for k in self.agents if k[0] in peers])

    async def discard_side(self, peer: str, side: str) -> None:
        """Stop one agent, (peer, side): after a deviating cell, the deviating implementation's."""
        await self._stop([(peer, side)])

    async def discard_cell(self, server: str, client: str) -> None:
        """Stop the two agents a cell used, (server peer, "server") and (client peer, "client").

        As `discard`, after a failed cell; the same peers' agents on the other side took no part
        in it and are kept. A container's agent is recycled, not its container (see `_stop`).
        """
        await self._stop([(server, "server"), (client, "client")])

    async def _stop(self, keys: list[tuple[str, str]]) -> None:
        # Each agent process goes; a container stays for its successor (see AgentProcess.recycle).
        for key in keys:
            agent = self.agents.pop(key, None)
            if agent is not None:
                await self._keep(key, await agent.recycle())

    async def close(self) -> None:
        for agent in self.agents.values():
            await agent.stop()
        self.agents.clear()
        for host in self.hosts.values():
            await host.close()
        self.hosts.clear()
