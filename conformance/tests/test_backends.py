"""The docker backend: the version matrix, images, containers, cleanup, and
that it reaches the same verdicts as the local backend for the same cells."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from zmtp_conformance.containers import cleanup, engine, images

ROOT = Path(__file__).resolve().parents[2]
NO_ENGINE = engine.available()
needs_docker = pytest.mark.skipif(NO_ENGINE is not None, reason=f"no Docker engine: {NO_ENGINE}")


def write_matrix(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "versions.yaml"
    path.write_text(text)
    return path


def test_version_matrix_names_images_families_and_keylogs():
    vm = images.load()
    assert {"impl", "libzmq-4.3.4", "libzmq-4.3.5", "czmq-4.2.1"} <= set(vm.images)
    assert vm.images["libzmq-4.3.4"].family == "libzmq"
    assert vm.images["libzmq-4.3.4"].image == "zmtp-conformance/libzmq:4.3.4"
    reg = images.registry()
    assert reg["czmq-4.2.1"].backend == "docker" and reg["czmq-4.2.1"].keylog == "sodium"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("peers:\n  impl: {family: impl}\n", "needs at least an image"),
        ("peers:\n  nosuch: {image: 'x:1'}\n", "has no Dockerfile"),
        ("peers:\n  impl: {image: 'x:1', colour: red}\n", "unknown key"),
        ("peers: {}\n", "names no peers"),
        ("peers: [\n", "cannot read the version matrix"),
    ],
)
def test_bad_version_matrix_is_refused_with_the_file_and_reason(tmp_path, text, error):
    path = write_matrix(tmp_path, text)
    with pytest.raises(images.ImageError, match=error) as info:
        images.load(path)
    assert str(path) in str(info.value)


def test_unknown_image_peer_is_refused(tmp_path):
    with pytest.raises(images.ImageError, match="no image for ghost"):
        images.build_all(["ghost"])


def test_choose_backend():
    assert engine.choose_backend("local") == "local"
    assert engine.choose_backend("auto") == ("local" if NO_ENGINE else "docker")
    if NO_ENGINE:
        with pytest.raises(engine.EngineError, match="--backend docker"):
            engine.choose_backend("docker")


def test_an_engine_that_does_not_answer_is_reported(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    engine.client.cache_clear()
    try:
        why = engine.available()
        assert why is not None and "/nonexistent/docker.sock" in why
    finally:
        engine.client.cache_clear()


def run_matrix(backend: str, peers: str, out: Path, *scenarios: str) -> dict:
    cmd = [sys.executable, "-m", "zmtp_conformance.cli", "run", "--backend", backend, "--peers", peers]
    for sc in scenarios:
        cmd += ["--scenario", sc]
    cmd += ["--report-dir", str(out), "--no-progress", "--no-allure", "--pcap", "off"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert (out / "matrix.json").exists(), proc.stdout[-2000:] + proc.stderr[-2000:]
    return json.loads((out / "matrix.json").read_text())


@needs_docker
@pytest.mark.timeout(1200)  # the first run on a machine builds the images from nothing
def test_local_and_docker_backends_agree_on_the_same_cells(tmp_path):
    # libzmq-4.3.5 in its image is the libzmq that pyzmq's wheel bundles here, and impl is impl.
    scenarios = ("28/req-rep", "37/socket-type/mismatch-error-command/pull-vs-sub", "37/greeting")
    local = run_matrix("local", "impl,libzmq", tmp_path / "local", *scenarios)
    docker = run_matrix("docker", "impl,libzmq-4.3.5", tmp_path / "docker", *scenarios)
    assert local["meta"]["backend"] == "local" and docker["meta"]["backend"] == "docker"

    def outcomes(m: dict) -> dict[str, str]:
        return {r["id"].replace("libzmq-4.3.5", "libzmq"): r["outcome"] for r in m["cells"]}

    lo, do = outcomes(local), outcomes(docker)
    assert set(lo) == set(do) and len(lo) > 20
    assert {k: (lo[k], do[k]) for k in lo if lo[k] != do[k]} == {}
    assert {"passed", "deviates"} <= set(lo.values())
    versions = {r["server"]["peer"]: r["server"]["versions"] for r in docker["cells"]}
    assert versions["libzmq-4.3.5"]["libzmq"] == "4.3.5"


KILLED_HARNESS = """
import asyncio, sys
from zmtp_conformance.containers import images
from zmtp_conformance.peers import make_agent

async def main():
    agent = make_agent(images.registry()["impl"], name="impl/test")
    await agent.start()
    print(agent.container_id, flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""


def agent_containers() -> dict[str, object]:
    return {c.id: c for c in engine.client().containers.list(all=True, filters={"label": f"{images.LABEL}=agent"})}


@needs_docker
@pytest.mark.timeout(600)
def test_a_killed_harness_leaves_no_container(tmp_path):
    images.build_all(["impl"])
    proc = subprocess.Popen([sys.executable, "-c", KILLED_HARNESS], stdout=subprocess.PIPE, text=True)
    try:
        cid = proc.stdout.readline().strip()
        assert cid in agent_containers()
    finally:
        proc.kill()  # SIGKILL: no atexit, no cleanup of its own
        proc.wait()
    # The agent reads end-of-file on its control connection, exits, and the container removes itself.
    deadline = time.monotonic() + 20
    while cid in agent_containers() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert cid not in agent_containers()


@needs_docker
@pytest.mark.timeout(600)
def test_sweep_removes_containers_whose_harness_is_gone():
    images.build_all(["impl"])
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    labels = {**cleanup.labels("impl/orphan"), cleanup.OWNER: f"{os.uname().nodename}:{dead.stdout.strip()}"}
    mine = engine.client().containers.create(images.load().images["impl"].image, command=["sleep", "60"], labels=labels)
    alive = engine.client().containers.create(
        images.load().images["impl"].image, command=["sleep", "60"], labels=cleanup.labels("impl/alive")
    )
    try:
        removed = cleanup.sweep()
        assert any(mine.name in r for r in removed)
        assert mine.id not in agent_containers() and alive.id in agent_containers()
    finally:
        for c in (mine, alive):
            try:
                c.remove(force=True)
            except Exception:
                pass


@needs_docker
@pytest.mark.timeout(600)
def test_a_container_agent_that_dies_is_reported_with_its_stderr():
    """The relay sends the agent's stderr to the harness, so a container that removes itself as its
    agent dies still leaves the reason in the failure (here argparse's complaint; a panic or an
    assertion in the matrix)."""
    import asyncio

    from zmtp_conformance import protocol
    from zmtp_conformance.peers import make_agent

    images.build_all(["impl"])

    async def go() -> str:
        agent = make_agent(images.registry()["impl"], name="impl/dying", extra_args=["--no-such-option"])
        try:
            await agent.start()
        except protocol.AgentError as exc:
            return str(exc)
        finally:
            await agent.stop()
        return "started"

    reason = asyncio.run(go())
    assert "agent stderr:" in reason and "unrecognized arguments: --no-such-option" in reason, reason


@needs_docker
@pytest.mark.timeout(600)
def test_a_recycled_container_agent_is_a_fresh_process_in_the_same_container():
    """After a deviating cell the pool recycles the agent, and after a kill fault it replaces it: in
    both, the relay starts a new process in the same container (no container start)."""
    import asyncio

    from zmtp_conformance.peers import AgentPool

    images.build_all(["impl"])

    async def go() -> None:
        pool = AgentPool(images.registry())
        try:
            first = await pool.get("impl", "server")
            cid = first.container_id
            assert (await first.request("socket", type="PUSH", options={}))["socket"] == "s1"
            assert (await first.request("socket", type="PUSH", options={}))["socket"] == "s2"
            await pool.discard_side("impl", "server")
            assert not first.alive and ("impl", "server") in pool.hosts
            second = await pool.get("impl", "server")
            assert second is not first and second.container_id == cid
            # a new process: its socket table starts again
            assert (await second.request("socket", type="PUSH", options={}))["socket"] == "s1"
            # a kill fault kills the agent's processes, not the container, whose relay starts the next
            await second.kill()
            assert not second.alive
            third = await pool.get("impl", "server")
            assert third.alive and third.container_id == cid
            assert (await third.request("socket", type="PUSH", options={}))["socket"] == "s1"
        finally:
            await pool.close()
        mine = engine.client().containers.list(all=True, filters={"label": f"{cleanup.OWNER}={cleanup.labels('x')[cleanup.OWNER]}"})
        assert [c for c in mine if c.status == "running"] == []

    asyncio.run(go())


@needs_docker
@pytest.mark.timeout(600)
def test_a_kill_whose_processes_are_out_of_sight_kills_the_container(monkeypatch):
    import asyncio

    from zmtp_conformance.containers import agent as container_agent
    from zmtp_conformance.peers import AgentPool

    images.build_all(["impl"])
    monkeypatch.setattr(container_agent, "_kill_agent_processes", lambda container: False)

    async def go() -> None:
        pool = AgentPool(images.registry())
        try:
            first = await pool.get("impl", "client")
            cid = first.container_id
            await first.kill()
            assert not first.alive
            second = await pool.get("impl", "client")
            assert second.alive and second.container_id not in ("", cid)
        finally:
            await pool.close()

    asyncio.run(go())


def test_a_container_that_exits_while_being_removed_is_removed_as_a_stopped_one():
    # The engine answers a forced remove with 500 when the container exited between its look and its
    # kill; a run must not end in a harness error for that (seen in an every-pairing docker run).
    import docker.errors

    from zmtp_conformance.containers import agent

    removed = []

    class Wrapped:
        def remove(self, **kw):
            removed.append(kw)

    class Exited:
        def stop(self):
            raise docker.errors.APIError(
                "500 Server Error: Could not kill running container 3291, cannot remove - Container 3291 is not"
                " running"
            )

        def get_wrapped_container(self):
            return Wrapped()

    agent._remove(Exited())
    assert removed == [{"v": True}]

    class Broken(Exited):
        def stop(self):
            raise docker.errors.APIError("500 Server Error: no space left on device")

    with pytest.raises(docker.errors.APIError, match="no space"):
        agent._remove(Broken())
