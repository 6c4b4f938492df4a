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
from ..peers import IPC_DIR, AgentProcess, last_words
from . import cleanup, engine

START_TIMEOUT = 30.0  # seconds from `docker create` to the agent's hello


class ContainerAgent(AgentProcess):
    container: Any = None  # testcontainers DockerContainer, once started
    control_port = 0  # where the harness waits for the agent's connection

    async def start(self) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        connected: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = loop.create_future()

        def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if connected.done():
                writer.close()  # one agent per listener; anyone else is turned away
            else:
                connected.set_result((reader, writer))

        server = await asyncio.start_server(on_connect, "127.0.0.1", 0, limit=1 << 26, family=socket.AF_INET)
        self.control_port = server.sockets[0].getsockname()[1]
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
        self.hello = await self.request("hello", deadline=20.0)
        return self.hello

    def _container(self) -> Any:
        engine.disable_ryuk_unless_present()
        from testcontainers.core.container import DockerContainer

        c = DockerContainer(self.spec.image)
        c.with_env("ZMTP_AGENT_CONTROL", f"127.0.0.1:{self.control_port}")
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
        # no traffic leaves loopback. No auto_remove: a container that died keeps its log (the
        # agent's last words, such as an assertion) until stop() has read it and removes it.
        c.with_kwargs(network_mode="host", labels=cleanup.labels(self.name), init=True)
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
        except Exception:  # gone already (removed)
            return False

    async def until_exited(self, grace: float = 2.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self.container is not None and loop.time() < deadline:
            if not await loop.run_in_executor(None, self._running):
                return
            await asyncio.sleep(0.05)

    @property
    def alive(self) -> bool:
        return self.writer is not None and not self.writer.is_closing() and not self.reader.at_eof()  # type: ignore[union-attr]

    @property
    def container_id(self) -> str:
        return self.container.get_wrapped_container().id if self.container is not None else ""

    epitaph = ""  # a dead agent's last words, read before stop() removed its container

    def last_words(self) -> str:
        """From the container's log, which is the agent's stderr (kept until stop() removes it)."""
        if self.container is None:
            return self.epitaph
        try:
            logs = self.container.get_wrapped_container().logs(tail=80).decode(errors="replace")
        except Exception:
            return ""
        return last_words([ln.rstrip() for ln in logs.splitlines() if ln.strip()])

    async def stop(self) -> None:
        self.stopping = True
        died = self.writer is not None and not self.alive  # before the close below makes it look so
        if self.writer is not None and not self.writer.is_closing():
            try:
                self.writer.write(protocol.dump({"id": 0, "op": "quit"}))
                await asyncio.wait_for(self.writer.drain(), 2)
            except (TimeoutError, ConnectionError):
                pass
            self.writer.close()
        if self.container is not None:
            if died:
                self.epitaph = await asyncio.get_running_loop().run_in_executor(None, self.last_words)
            container, self.container = self.container, None
            await asyncio.get_running_loop().run_in_executor(None, _remove, container)

    async def kill(self) -> None:
        """Fault: the peer's process dies at once (SIGKILL), its connections with it."""
        await asyncio.get_running_loop().run_in_executor(None, lambda: self.container.get_wrapped_container().kill())
        if self.writer is not None:
            self.writer.close()

    async def pause(self) -> None:
        """Fault: the peer stops answering anything (cgroup freezer); its sockets stay open."""
        await asyncio.get_running_loop().run_in_executor(None, lambda: self.container.get_wrapped_container().pause())

    async def unpause(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, lambda: self.container.get_wrapped_container().unpause())


def _remove(container: Any) -> None:
    import docker.errors

    try:
        container.stop()
    except docker.errors.NotFound:
        pass  # it removed itself when its agent exited
    except docker.errors.APIError as exc:
        if "already in progress" not in str(exc):
            raise
    finally:
        cleanup.untrack(container)
