"""Fault steps (kill, restart, pause, reopen) and numbered streams, on local agents;
the same steps run in containers in the docker matrix."""

from __future__ import annotations

import asyncio

from scenario_samples import push_pull, write

from zmtp_conformance import peers
from zmtp_conformance.cells import Cell
from zmtp_conformance.peers import AgentPool
from zmtp_conformance.runner import run_cell
from zmtp_conformance.scenario import load_all, load_file
from zmtp_conformance.vocabulary import Outcome


def run(sc, server="impl", client="impl"):
    async def go():
        pool = AgentPool(peers.load_registry())
        try:
            return await run_cell(Cell(sc, server, client, "tcp", "NULL"), pool, [])
        finally:
            await pool.close()

    return asyncio.run(go())


def sample(tmp_path, steps: str):
    return load_file(write(tmp_path, push_pull("faults", steps)))


def test_numbered_stream_passes_when_everything_arrives(tmp_path):
    r = run(sample(tmp_path, "  - client.send_numbered: {count: 20}\n  - server.expect_numbered: {count: 20}\n"))
    assert r.outcome == Outcome.PASSED, r.reason
    assert r.measurements == {"received": 20, "lost": 0}


def test_a_message_that_arrives_twice_fails(tmp_path):
    steps = (
        "  - client.send_numbered: {count: 5}\n"
        "  - client.send_numbered: {from: 3, count: 2}\n"
        "  - server.expect_numbered: {count: 7, timeout: 0.5}\n"
    )
    r = run(sample(tmp_path, steps))
    assert r.outcome == Outcome.FAILED and "out of order, twice" in r.reason


def test_a_missing_message_fails_unless_losses_are_allowed(tmp_path):
    steps = "  - client.send_numbered: {count: 5}\n  - server.expect_numbered: {count: 6, timeout: 0.3}\n"
    r = run(sample(tmp_path, steps))
    assert r.outcome == Outcome.FAILED and "received 5 of 6" in r.reason
    allowed = steps.replace("timeout: 0.3", "timeout: 0.3, may_lose: true")
    r = run(sample(tmp_path, allowed))
    assert r.outcome == Outcome.PASSED and r.measurements["lost"] == 1


def test_a_killed_peer_is_gone_until_restarted(tmp_path):
    r = run(sample(tmp_path, "  - server.fault: kill\n  - server.expect_numbered: {count: 1}\n"))
    assert r.outcome == Outcome.FAILED and "killed and not restarted" in r.reason
    r = run(sample(tmp_path, "  - server.fault: restart\n"))
    assert r.outcome == Outcome.FAILED and "still running" in r.reason


def test_restart_binds_the_same_endpoint_and_the_client_comes_back(tmp_path):
    steps = (
        "  - server.fault: kill\n"
        "  - server.fault: restart\n"
        "  - client.send_numbered: {count: 3}\n"
        "  - server.expect_numbered: {count: 3, timeout: 5}\n"
    )
    r = run(sample(tmp_path, steps), "impl", "libzmq")
    assert r.outcome == Outcome.PASSED, r.reason + r.transcript
    binds = [line for line in r.transcript.splitlines() if " bind " in line]
    assert len(binds) == 2 and binds[0].split()[-1] == binds[1].split()[-1]


def test_a_paused_peer_answers_nothing_until_unpaused(tmp_path):
    steps = (
        "  - server.fault: pause\n"
        "  - client.send_numbered: {count: 3}\n"
        "  - wait: 0.3\n"
        "  - server.fault: unpause\n"
        "  - server.expect_numbered: {count: 3}\n"
    )
    r = run(sample(tmp_path, steps))
    assert r.outcome == Outcome.PASSED, r.reason


def test_fault_scenarios_pass_between_impl_and_libzmq():
    for sc in [s for s in load_all() if "/faults/" in s.id]:
        r = run(sc, "libzmq", "impl")
        assert r.outcome == Outcome.PASSED, f"{sc.id}: {r.reason}\n{r.transcript}"
