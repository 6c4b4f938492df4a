"""A peer's agent in a container, started and stopped by testcontainers.

The image's entry point (docker/agent-relay) puts the agent's stdin and
stdout on a TCP connection to the harness, which listens on loopback for
exactly that one connection. Requests then travel as they do to a local
agent (docs/agent-protocol.md). The container shares the host's network and
the ipc:// directory, and writes CURVE key logs into the run's capture folder.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from pathlib import Path
from typing import Any

import docker.errors

from .. import protocol
from ..endpoints import IPC_DIR
from ..peers import AgentProcess, last_words
from . import cleanup, engine

START_TIMEOUT = 30.0  # seconds from `docker create` to the agent's hello
RESPAWN_TIMEOUT = 10.0  # seconds for the relay's next agent to connect once the last one quit


class Host:
    """A container and the loopback listeners its relay connects to, for the container's life.

    The relay (docker/agent-relay, with ZMTP_AGENT_RESPAWN set) runs the image's agent and, when
    that agent exits, a fresh one, which connects again. An agent recycled after a deviating cell
    so costs a process start instead of a container's: the engine spent about 0.1 s of CPU on
    each container, and a run recycles a thousand agents. What one agent process leaves behind
    dies with it (its sockets, its library's threads); the container holds no other state.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.container: Any = None  # testcontainers DockerContainer, once started
        self.control_port = 0  # where the relay connects each agent's stdin and stdout
        self.stderr_port = 0  # where the relay sends the agents' stderr, one connection in all
        self.current: ContainerAgent | None = None  # the agent whose stderr arrives now
        self._connections: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
        self._servers: list[asyncio.Server] = []
        self._stderr_task: asyncio.Task[None] | None = None
        self.closed = False

    async def listen(self) -> None:
        def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self._connections.put_nowait((reader, writer))

        def on_stderr(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if self._stderr_task is not None:
                writer.close()
            else:
                self._stderr_task = asyncio.get_running_loop().create_task(self._drain_stderr(reader))

        control = await asyncio.start_server(on_connect, "127.0.0.1", 0, limit=1 << 26, family=socket.AF_INET)
        stderr = await asyncio.start_server(on_stderr, "127.0.0.1", 0, family=socket.AF_INET)
        self._servers = [control, stderr]
        self.control_port = control.sockets[0].getsockname()[1]
        self.stderr_port = stderr.sockets[0].getsockname()[1]

    async def _drain_stderr(self, reader: asyncio.StreamReader) -> None:
        while line := await reader.readline():
            agent = self.current
            if agent is not None:
                agent.stderr_tail = [*agent.stderr_tail[-80:], line.decode(errors="replace").rstrip()]

    async def take(self, timeout: float) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """The next agent's control connection; AgentError if none comes or the container ends."""
        # An agent that dies before it connects would leave us waiting: look at the container too.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                return await asyncio.wait_for(self._connections.get(), min(0.5, max(deadline - loop.time(), 0.01)))
            except TimeoutError:
                pass
            if not await loop.run_in_executor(None, self._running):
                raise protocol.AgentError(protocol.FAILED, f"the container of {self.name} exited", self.name)
            if loop.time() >= deadline:
                raise protocol.AgentError(
                    protocol.FAILED, f"no agent of {self.name} connected within {timeout:g}s", self.name
                )

    def _running(self) -> bool:
        try:
            self.container.get_wrapped_container().reload()
            return self.container.get_wrapped_container().status in ("created", "running")
        except Exception:  # gone already (auto_remove)
            return False

    async def close(self, remove: bool = True) -> None:
        """Stop listening (the relay's next connect fails and it ends) and remove the container."""
        self.closed = True
        for server in self._servers:
            server.close()
        while not self._connections.empty():
            _, writer = self._connections.get_nowait()
            writer.close()  # an agent started but never used reads end-of-file and exits
        if self.container is not None:
            container, self.container = self.container, None
            if remove:
                await asyncio.get_running_loop().run_in_executor(None, _remove, container)
            else:
                cleanup.untrack(container)


class ContainerAgent(AgentProcess):
    host: Host | None = None  # the container this agent process runs in

    @property
    def container(self) -> Any:
        return self.host.container if self.host is not None else None

    async def start(self) -> dict[str, Any]:
        """A new container, and its first agent."""
        self.host = Host(self.name)
        await self.host.listen()
        self.host.container = self._container()
        try:
            await asyncio.get_running_loop().run_in_executor(None, self.host.container.start)
            cleanup.track(self.host.container)
        except BaseException:
            await self.stop()
            raise
        return await self._attach(START_TIMEOUT)

    async def _attach(self, timeout: float) -> dict[str, Any]:
        assert self.host is not None
        if self.host.current is None:
            self.host.current = self  # a first agent's dying words come before its connection
        try:
            self.reader, self.writer = await self.host.take(timeout)
        except protocol.AgentError as exc:
            await self.stop()
            raise protocol.AgentError(exc.kind, f"{exc.message}{self._stderr_hint()}", self.name) from None
        self.host.current = self
        self.hello = await self.request("hello", deadline=20.0)
        return self.hello

    async def succeed(self, host: Host) -> dict[str, Any]:
        """Take the next agent `host`'s relay started, in place of a start."""
        self.host = host
        return await self._attach(RESPAWN_TIMEOUT)

    async def recycle(self) -> Host | None:
        """Quit this agent but keep its container for a successor; None if the container went too."""
        host = self.host
        if self.killed and host is not None and not host.closed:
            self.host = None  # killed inside its container: the relay is starting the successor
            return host
        if host is None or host.closed or not self.alive:
            await self.stop()
            return None
        self.stopping = True
        assert self.reader is not None
        try:
            await self._ask_to_quit()
            # Its end-of-file: the process is gone, and the relay starts the next one.
            while await asyncio.wait_for(self.reader.read(1 << 16), 2):
                pass
        except (TimeoutError, ConnectionError):
            await self.stop()  # an agent that will not quit takes its container with it
            return None
        self.writer.close()  # type: ignore[union-attr]
        self.host = None
        return host

    async def _ask_to_quit(self) -> None:
        assert self.writer is not None
        self.writer.write(protocol.dump({"id": 0, "op": "quit"}))
        await asyncio.wait_for(self.writer.drain(), 2)

    def _container(self) -> Any:
        assert self.host is not None
        engine.disable_ryuk_unless_present()
        from testcontainers.core.container import DockerContainer

        # The API version this process's engine client settled once: without it every container's
        # client would ask the engine for it again (a round trip per agent start).
        c = DockerContainer(self.spec.image, docker_client_kw={"version": engine.client().api.api_version})
        c.with_env("ZMTP_AGENT_CONTROL", f"127.0.0.1:{self.host.control_port}")
        c.with_env("ZMTP_AGENT_STDERR", f"127.0.0.1:{self.host.stderr_port}")
        c.with_env("ZMTP_AGENT_RESPAWN", "1")
        IPC_DIR.mkdir(mode=0o1777, exist_ok=True)
        c.with_volume_mapping(str(IPC_DIR), str(IPC_DIR), "rw")
        if self.keylog is not None and self.spec.keylog:
            path = self.keylog.resolve()
            path.parent.mkdir(parents=True, exist_ok=True)
            c.with_volume_mapping(str(path.parent), str(path.parent), "rw")
            c.with_env("ZMTP_CURVE_KEYLOG", str(path))
        if self.extra_args:
            c.with_command([*(engine.image_config(self.spec.image).get("Cmd") or []), *self.extra_args])
        # Host networking: peers listen and connect on 127.0.0.1 as local agents do, and
        # no traffic leaves loopback. The container removes itself when its relay exits; the
        # agents' stderr has come to us as it was written.
        c.with_kwargs(network_mode="host", auto_remove=True, labels=cleanup.labels(self.name), init=True)
        return c

    @property
    def alive(self) -> bool:
        return self.writer is not None and not self.writer.is_closing() and not self.reader.at_eof()  # type: ignore[union-attr]

    @property
    def container_id(self) -> str:
        return self.container.get_wrapped_container().id if self.container is not None else ""

    def last_words(self) -> str:
        # An image built before its relay sent stderr to the harness left it in the container's log.
        if not self.stderr_tail and self.container is not None:
            try:
                logs = self.container.get_wrapped_container().logs(tail=80).decode(errors="replace")
            except Exception:  # removed already
                return ""
            return last_words([ln.rstrip() for ln in logs.splitlines() if ln.strip()])
        return super().last_words()

    async def stop(self) -> None:
        """This agent and its container."""
        self.stopping = True
        if self.writer is not None and not self.writer.is_closing():
            try:
                await self._ask_to_quit()
            except (TimeoutError, ConnectionError):
                pass
            self.writer.close()
        if self.host is not None:
            host, self.host = self.host, None
            await host.close()

    # The faults act on the container while there is one: an agent stopped meanwhile (a request
    # that timed out stops it) has nothing left to kill, pause or thaw.
    killed = False  # killed by a fault inside a container that lives on (see kill)

    async def kill(self) -> None:
        """Fault: the peer's process dies at once (SIGKILL), its connections with it.

        The agent's processes are killed, not the container: their sockets close as they would
        with the container (host networking: the kernel closes a dead process's sockets alike),
        and the relay starts the successor the restart takes, without a container start. Where
        the engine's processes are out of sight (an engine on another machine), the container goes.
        """
        if self.container is None:
            if self.writer is not None:
                self.writer.close()
            return
        container = self.container.get_wrapped_container()
        loop = asyncio.get_running_loop()
        if await loop.run_in_executor(None, _kill_agent_processes, container):
            self.killed = True
        else:
            await loop.run_in_executor(None, container.kill)
        if self.writer is not None:
            self.writer.close()
        if not self.killed and self.host is not None:
            host, self.host = self.host, None
            await host.close(remove=False)  # killed, it removes itself (auto_remove)

    async def pause(self) -> None:
        """Fault: the peer stops answering anything (cgroup freezer); its sockets stay open."""
        if self.container is not None:
            await asyncio.get_running_loop().run_in_executor(None, freeze, self.container.get_wrapped_container())

    async def unpause(self) -> None:
        if self.container is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.container.get_wrapped_container().unpause)


FREEZE_ATTEMPTS = 4


def freeze(container: Any, attempts: int = FREEZE_ATTEMPTS) -> None:
    """`docker pause`, tried again when the freezer gives up ("unable to freeze").

    runc waits only so long for every task of the cgroup to stop, and on a busy machine it
    sometimes gives up, leaving the container running; a matrix run at -n 12 saw it once
    in 14,786 cells. That is the harness's machine failing the fault, not the peer, so it is
    tried again; any other refusal, or the last, is raised as it came.
    """
    for attempt in range(1, attempts + 1):
        try:
            container.pause()
            return
        except docker.errors.APIError as exc:
            if attempt == attempts or "unable to freeze" not in str(exc):
                raise
            time.sleep(0.05 * attempt)


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")


def _kill_agent_processes(container: Any) -> bool:
    """SIGKILL the processes of the container's current agent (its relay's children and theirs).

    False, having killed nothing, when the container's processes are not this machine's to see:
    its init (docker-init) as the engine reports it and the relay below it must both be found.
    """
    try:
        container.reload()
        init = int(container.attrs["State"]["Pid"] or 0)
        if not init or "docker-init" not in _cmdline(init):
            return False
        relays = [p for p in _children(init) if "zmtp-agent-relay" in _cmdline(p)]
        if len(relays) != 1:
            return False
        doomed, todo = [], _children(relays[0])
        while todo:
            pid = todo.pop()
            doomed.append(pid)
            todo += _children(pid)
    except (OSError, ValueError, KeyError):
        return False
    if not doomed:
        return False
    for pid in doomed:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    # As docker's kill and the local backend's wait do, return once they are dead: a zombie has
    # closed its sockets, and the steps after a kill run against a peer that is down, not dying.
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in doomed) and time.monotonic() < deadline:
        time.sleep(0.002)
    return True


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def _remove(container: Any) -> None:
    import docker.errors

    try:
        try:
            container.stop()
        except docker.errors.APIError as exc:
            if "is not running" not in str(exc):
                raise
            # It exited between the engine's look and its kill ("Could not kill running container ...,
            # cannot remove - Container ... is not running"): what is left is a stopped container.
            container.get_wrapped_container().remove(v=True)
    except docker.errors.NotFound:
        pass  # it removed itself when its agent exited
    except docker.errors.APIError as exc:
        if "already in progress" not in str(exc):
            raise
    finally:
        cleanup.untrack(container)
