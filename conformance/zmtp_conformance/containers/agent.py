"""A peer's agent in a container, started and stopped by testcontainers.

The image's entry point (docker/agent-relay) puts the agent's stdin and
stdout on a TCP connection to the harness, which listens on loopback for
exactly that one connection. Requests then travel as they do to a local
agent (docs/agent-protocol.md). The container shares the host's network and
the ipc:// directory, and writes CURVE key logs into the run's capture folder.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from .. import protocol
from ..endpoints import IPC_DIR
from ..peers import AgentProcess, last_words
from . import cleanup, engine

START_TIMEOUT = 30.0  # seconds from `docker create` to the agent's hello


class ContainerAgent(AgentProcess):
    container: Any = None  # testcontainers DockerContainer, once started
    control_port = 0  # where the harness waits for the agent's connection
    stderr_port = 0  # where the relay sends the agent's stderr (docker/agent-relay)

    async def start(self) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        connected: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = loop.create_future()

        def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if connected.done():
                writer.close()  # one agent per listener; anyone else is turned away
            else:
                connected.set_result((reader, writer))

        def on_stderr(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if self._stderr_task is not None:
                writer.close()
            else:
                self._stderr_task = loop.create_task(self._drain_stderr(reader))

        server = await asyncio.start_server(on_connect, "127.0.0.1", 0, limit=1 << 26, family=socket.AF_INET)
        self.control_port = server.sockets[0].getsockname()[1]
        stderr_server = await asyncio.start_server(on_stderr, "127.0.0.1", 0, family=socket.AF_INET)
        self.stderr_port = stderr_server.sockets[0].getsockname()[1]
        try:
            self.container = self._container()
            await loop.run_in_executor(None, self.container.start)
            cleanup.track(self.container)
            try:
                self.reader, self.writer = await asyncio.wait_for(self._until_connected(connected), START_TIMEOUT)
            except TimeoutError:
                await self.stop()
                raise protocol.AgentError(
                    protocol.FAILED,
                    f"the container of {self.spec.image} did not connect within {START_TIMEOUT:g}s{self._stderr_hint()}",
                    self.name,
                ) from None
        finally:
            server.close()
        try:
            self.hello = await self.request("hello", deadline=20.0)
        finally:
            stderr_server.close()  # the relay connects it before it starts the agent
        return self.hello

    def _container(self) -> Any:
        engine.disable_ryuk_unless_present()
        from testcontainers.core.container import DockerContainer

        c = DockerContainer(self.spec.image)
        c.with_env("ZMTP_AGENT_CONTROL", f"127.0.0.1:{self.control_port}")
        c.with_env("ZMTP_AGENT_STDERR", f"127.0.0.1:{self.stderr_port}")
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
        # no traffic leaves loopback. The container removes itself when its agent exits; the
        # agent's stderr has come to us as it was written.
        c.with_kwargs(network_mode="host", auto_remove=True, labels=cleanup.labels(self.name), init=True)
        return c

    async def _until_connected(
        self, connected: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]]
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        # An agent that dies before it connects would leave us waiting: look at the container too.
        while True:
            done, _ = await asyncio.wait({connected}, timeout=0.5)
            if done:
                return connected.result()
            if not await asyncio.get_running_loop().run_in_executor(None, self._running):
                raise protocol.AgentError(
                    protocol.FAILED, f"the container of {self.spec.image} exited{self._stderr_hint()}", self.name
                )

    def _running(self) -> bool:
        try:
            self.container.get_wrapped_container().reload()
            return self.container.get_wrapped_container().status in ("created", "running")
        except Exception:  # gone already (auto_remove)
            return False

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
        self.stopping = True
        if self.writer is not None and not self.writer.is_closing():
            try:
                self.writer.write(protocol.dump({"id": 0, "op": "quit"}))
                await asyncio.wait_for(self.writer.drain(), 2)
            except (TimeoutError, ConnectionError):
                pass
            self.writer.close()
        if self.container is not None:
            container, self.container = self.container, None
            await asyncio.get_running_loop().run_in_executor(None, _remove, container)

    # The faults act on the container while there is one: an agent stopped meanwhile (a request
    # that timed out stops it) has nothing left to kill, pause or thaw.
    async def kill(self) -> None:
        """Fault: the peer's process dies at once (SIGKILL), its connections with it."""
        if self.container is not None:
            container = self.container.get_wrapped_container()
            await asyncio.get_running_loop().run_in_executor(None, container.kill)
        if self.writer is not None:
            self.writer.close()

    async def pause(self) -> None:
        """Fault: the peer stops answering anything (cgroup freezer); its sockets stay open."""
        if self.container is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.container.get_wrapped_container().pause)

    async def unpause(self) -> None:
        if self.container is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.container.get_wrapped_container().unpause)


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
