"""Agent starts overlapped with the cell instead of waited for: a killed agent's successor starts at
the kill, and both sides' agents start side by side. What the cell sees must not change."""

from __future__ import annotations

import asyncio
import re
import sys

import pytest
from scenario_samples import push_pull, write

from zmtp_conformance import deviations, peers
from zmtp_conformance.cells import Cell
from zmtp_conformance.peers import AgentPool, PeerSpec
from zmtp_conformance.runner import CellRun, name_the_dead, run_cell
from zmtp_conformance.scenario import load_file
from zmtp_conformance.vocabulary import Outcome


class CountingPool(AgentPool):
    """Counts the agents each (peer, side) had to start."""

    def __init__(self, specs: dict[str, PeerSpec]) -> None:
        super().__init__(specs)
        self.starts: dict[tuple[str, str], int] = {}

    async def get(self, peer: str, side: str) -> peers.AgentProcess:
        before = self.agents.get((peer, side))
        agent = await super().get(peer, side)
        if agent is not before:
            self.starts[peer, side] = self.starts.get((peer, side), 0) + 1
        return agent


def sample(tmp_path, steps: str):
    return load_file(write(tmp_path, push_pull("agent-starts", steps)))


def test_a_killed_agents_successor_starts_at_the_kill_and_serves_the_restart(tmp_path):
    sc = sample(tmp_path, "  - server.fault: kill\n  - server.fault: restart\n")

    async def go() -> None:
        pool = CountingPool(peers.load_registry())
        run = CellRun(Cell(sc, "impl", "impl", "tcp", "NULL"), pool)
        try:
            await run.setup()
            killed = run.agents["server"]
            await run.step(sc.steps[0])
            successor = run.respawn["server"]  # already on its way before any restart step
            await run.step(sc.steps[1])
            assert run.respawn == {}
            assert run.agents["server"] is successor.result() is not killed
            assert pool.starts == {("impl", "server"): 2, ("impl", "client"): 1}
        finally:
            await run.teardown()
            await pool.close()

    asyncio.run(go())


def test_a_cell_that_ends_between_kill_and_restart_leaves_its_successor_in_the_pool(tmp_path):
    sc = sample(tmp_path, "  - server.fault: kill\n  - server.expect_numbered: {count: 1}\n")

    async def go() -> None:
        pool = CountingPool(peers.load_registry())
        try:
            r = await run_cell(Cell(sc, "impl", "impl", "tcp", "NULL"), pool, [])
            assert r.outcome == Outcome.FAILED and "killed and not restarted" in r.reason
            # Nothing left running unowned into the next cell: the successor is the pool's.
            starting = [t for t in asyncio.all_tasks() if t.get_coro().__qualname__.endswith("Pool.get")]
            assert starting == []
            assert pool.agents["impl", "server"].alive and pool.starts["impl", "server"] == 2
        finally:
            await pool.close()

    asyncio.run(go())


def test_both_sides_start_together_and_a_failed_start_fails_the_cell_as_before(tmp_path):
    registry = peers.load_registry()
    # An agent that exits at once, before its hello.
    registry["dead"] = PeerSpec(name="dead", command=[sys.executable, "-c", "pass"])
    sc = sample(tmp_path, "  - client.send_numbered: {count: 1}\n  - server.expect_numbered: {count: 1}\n")

    async def go() -> None:
        pool = CountingPool(registry)
        try:
            r = await run_cell(Cell(sc, "dead", "impl", "tcp", "NULL"), pool, [])
            assert r.outcome == Outcome.FAILED and "agent exited during hello" in r.reason, r.reason
            assert r.step == "setup"
            # The client's agent started beside the server's failed one, and serves the next cell.
            assert pool.starts == {("impl", "client"): 1} and pool.agents["impl", "client"].alive
            ok = await run_cell(Cell(sc, "impl", "impl", "tcp", "NULL"), pool, [])
            assert ok.outcome == Outcome.PASSED, ok.reason
            assert pool.starts == {("impl", "client"): 1, ("impl", "server"): 1}
        finally:
            await pool.close()

    asyncio.run(go())


def test_an_agent_that_dies_is_reported_with_the_line_that_says_why(tmp_path):
    # Like a Go panic: the cause first, then a stack trace longer than any "last few lines".
    script = (
        "import sys\n"
        "sys.stderr.write('panic: runtime error: makeslice: len out of range\\n')\n"
        "sys.stderr.writelines(f'\\tframe {i}\\n' for i in range(30))\n"
        "sys.exit(2)\n"
    )
    spec = PeerSpec(name="dying", command=[sys.executable, "-c", script])

    async def go() -> None:
        agent = peers.AgentProcess(spec)
        try:
            await agent.start()
        except peers.protocol.AgentError as exc:
            return str(exc)
        finally:
            await agent.stop()
        return "started"

    reason = asyncio.run(go())
    # "exited during hello", or "is not running" when it was gone before the hello was sent.
    assert re.search(
        r"agent (exited during hello|is not running); agent stderr: panic: runtime error: makeslice: len out of range$",
        reason,
    ), reason
    assert "frame 29" not in reason
    # Without such a line, the last lines are what there is to quote.
    assert peers.last_words(["starting", "listening", "bye"]) == "starting | listening | bye"


def test_a_cell_names_the_agents_that_died_on_their_own_and_not_those_a_fault_killed(tmp_path):
    sc = sample(tmp_path, "  - client.fault: kill\n")

    async def go() -> list[tuple[str, str]]:
        pool = CountingPool(peers.load_registry())
        run = CellRun(Cell(sc, "impl", "impl", "tcp", "NULL"), pool)
        try:
            await run.setup()
            await run.step(sc.steps[0])  # the client's death is the scenario's
            run.agents["server"].proc.kill()  # the server's is not, and no step has noticed it yet
            return await run.deaths()
        finally:
            await run.teardown()
            await pool.close()

    assert asyncio.run(go()) == [("impl/server", "")]


def test_a_paused_agent_is_not_asked_whether_it_died(tmp_path):
    """A paused agent cannot answer; asking it would time out and stop it under the cell's feet."""
    sc = sample(tmp_path, "  - server.fault: pause\n")

    async def go() -> tuple[list[tuple[str, str]], bool]:
        pool = CountingPool(peers.load_registry())
        run = CellRun(Cell(sc, "impl", "impl", "tcp", "NULL"), pool)
        try:
            await run.setup()
            await run.step(sc.steps[0])
            dead = await run.deaths()
            return dead, run.agents["server"].alive
        finally:
            await run.teardown()
            await pool.close()

    assert asyncio.run(go()) == ([], True)


# How a sanity exchange finds a crashed server, as two runs of the same cell reported it.
_FOUND_DEAD = "sanity exchange after hostile input failed: {peer}/server: failed: agent {how}; agent stderr: {words}"


@pytest.mark.parametrize("how", ["is not running", "exited during recv"])
@pytest.mark.parametrize(
    ("peer", "words", "entry"),
    [
        ("zmq4-0.17.0", "panic: runtime error: makeslice: len out of range", "zmq4-process-panics-on-hostile-input"),
        ("zmqrs-0.7.0", "memory allocation of 1384576509934960476 bytes failed", "zmqrs-aborts-on-huge-frame-size"),
    ],
)
def test_a_crash_is_named_the_same_way_however_the_step_found_it_out(how, peer, words, entry):
    # One run's sanity exchange found the zmq4 agent already gone and quoted its stderr in the
    # agent error; the rerun found it through a reset handshake, and the harness added the death.
    # Both must end alike, or the entry for the crash excuses one run and not the other.
    found = _FOUND_DEAD.format(peer=peer, how=how, words=words)
    reset = "sanity exchange after hostile input failed: handshake as SUB did not complete: [Errno 104] Connection reset by peer"
    died = [(f"{peer}/server", words)]
    named = [name_the_dead(found, died), name_the_dead(reset, died)]
    for reason in named:
        assert reason.endswith(f"({peer}/server died: {words})"), reason
        assert reason.count(words) == 1, reason
    table = deviations.load()
    scenario = "23/hostile/garbage-after-handshake"
    for reason in named:
        failure = deviations.Failure("sanity", "sanity", reason, "the peer serves a fresh connection", found)
        family = peer.split("-")[0]  # entries name the implementation, cells the image
        hit = deviations.find(table, scenario, family, "raw", failure, "NULL", "tcp")
        assert hit is not None and hit.id == entry, reason


def test_an_agent_that_died_silently_is_still_named():
    assert name_the_dead("step 3 failed", [("impl/server", "")]) == "step 3 failed (impl/server died: nothing on its stderr)"
    assert name_the_dead("step 3 failed", []) == "step 3 failed"
