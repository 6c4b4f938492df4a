"""The cell runner against real agents, including peers broken on purpose."""

from __future__ import annotations

import asyncio

import pytest
from scenario_samples import run_one

from zmtp_conformance import peers, protocol
from zmtp_conformance.cells import Cell
from zmtp_conformance.deviations import Deviation, Signature
from zmtp_conformance.matchers import match
from zmtp_conformance.peers import AgentPool
from zmtp_conformance.rawpeer import matches
from zmtp_conformance.runner import run_cell
from zmtp_conformance.scenario import load_all
from zmtp_conformance.vocabulary import Outcome


def scenario(sid: str):
    (sc,) = [s for s in load_all() if s.id == sid]
    return sc


def run(sid: str, server: str, client: str, extra: dict | None = None, devs: list | None = None, transport="tcp"):
    async def go():
        pool = AgentPool(peers.load_registry(), extra)
        try:
            return await run_cell(Cell(scenario(sid), server, client, transport, "NULL"), pool, devs or [])
        finally:
            await pool.close()

    return asyncio.run(go())


def test_raw_pattern_matching():
    assert matches("ff ?? 7f", b"\xff\x00\x7f")
    assert matches("ff??7f", b"\xff\x12\x7f")
    assert not matches("ff ?? 7f", b"\xff\x00\x7e")
    assert not matches("ff ?? 7f", b"\xff\x00")


def test_frame_matchers():
    vars: dict[str, bytes] = {}
    assert match([{"capture": "rid"}, "hi"], [b"\x00\x01", b"hi"], vars)
    assert vars["rid"] == b"\x00\x01"
    assert match([{"ref": "rid"}, {"prefix": "h"}], [b"\x00\x01", b"hello"], vars)
    assert not match([{"ref": "rid"}], [b"other"], vars)
    assert not match(["a", "b"], [b"a"], vars)
    assert match([{"repeat": "ab", "count": 5}], [b"ababa"], vars)


def test_a_good_pair_passes():
    r = run("28/req-rep/round-trip", "impl", "libzmq")
    assert r.outcome == Outcome.PASSED, r.reason
    assert "send" in r.transcript and r.versions["client"]["libzmq"]


def test_a_cells_phases_add_up_to_its_duration():
    r = run("28/req-rep/round-trip", "impl", "impl")
    assert r.outcome == Outcome.PASSED, r.reason
    assert {"agents", "setup", "step:send", "step:expect", "teardown"} <= set(r.phases), r.phases
    assert sum(r.phases.values()) == pytest.approx(r.duration, rel=0.02, abs=0.005), r.phases
    # Each moment charged once: the agents a set-up starts are not counted in "setup" as well.
    assert r.phases["setup"] < r.duration - r.phases["agents"]


def test_a_stopwatch_charges_nested_phases_to_the_inner_one(monkeypatch):
    from zmtp_conformance import trace

    now = [0.0]
    monkeypatch.setattr(trace.time, "monotonic", lambda: now[0])
    clock = trace.Stopwatch()
    clock.switch("harness")
    with clock.phase("setup"):
        now[0] += 1
        with clock.phase("agents"):
            now[0] += 5
        now[0] += 2
    now[0] += 0.5
    clock.switch(None)
    assert clock.spent == {"harness": 0.5, "setup": 3.0, "agents": 5.0}


def test_peer_that_skips_the_socket_type_check_turns_red():
    sid = "37/socket-type/mismatch-error-command/pull-vs-sub"
    assert run(sid, "impl", "raw").outcome == Outcome.PASSED
    broken = run(sid, "impl", "raw", {"impl": ["--bug", "skip_socket_type_check"]})
    assert broken.outcome == Outcome.FAILED
    assert "ERROR" in (broken.expected or "")


def test_peer_with_a_wrong_ready_turns_red():
    broken = run("37/null/ready/pull", "impl", "raw", {"impl": ["--bug", "ready_command_name=b'READX'"]})
    assert broken.outcome == Outcome.FAILED
    assert "52 45 41 44 58" in (broken.seen or "")  # READX, in the bytes shown


def test_peer_with_an_empty_pong_turns_red():
    assert (
        run("37/heartbeat/ping-echoes-context", "impl", "raw", {"impl": ["--bug", "empty_pong"]}).outcome
        == Outcome.FAILED
    )


def test_broken_peer_fails_peer_to_peer_cells_too():
    # A client that announces the wrong socket type never gets its messages through.
    r = run("30/push-pull/in-order", "libzmq", "impl", {"impl": ["--bug", "ready_socket_type='PUB'"]})
    assert r.outcome == Outcome.FAILED


def test_event_checks_turn_red_when_the_handshake_fails():
    sid = "27/zap/allowed-peer-handshakes"
    assert run(sid, "impl", "libzmq").outcome == Outcome.PASSED
    # The server sees a PUB where it expects REQ: no handshake_succeeded ever comes.
    broken = run(sid, "impl", "impl", {"impl": ["--bug", "ready_socket_type='PUB'"]})
    assert broken.outcome == Outcome.FAILED
    assert "handshake_succeeded" in broken.reason and "handshake_failed" in (broken.seen or "")


def test_a_deviation_excuses_only_the_failure_it_describes():
    import re
    from dataclasses import replace

    bug = {"impl": ["--bug", "ready_socket_type='PUB'"]}
    failed = run("28/req-rep/round-trip", "libzmq", "impl", bug, [])
    assert failed.outcome == Outcome.FAILED and failed.step and failed.action
    sig = Signature(step=failed.step, action=failed.action, expected=re.compile(re.escape(failed.expected or "")))
    dev = Deviation("pretend", "impl", "client", ("28/req-rep/round-trip",), sig, "pretend", "37/ZMTP", "nowhere")
    r = run("28/req-rep/round-trip", "libzmq", "impl", bug, [dev])
    assert r.outcome == Outcome.DEVIATES and r.deviation is dev
    # The same entry with another step in its signature excuses nothing: the cell fails.
    elsewhere = replace(dev, fails=replace(sig, step="99"))
    assert run("28/req-rep/round-trip", "libzmq", "impl", bug, [elsewhere]).outcome == Outcome.FAILED
    seen_else = replace(dev, fails=replace(sig, seen=re.compile("^something never seen$")))
    assert run("28/req-rep/round-trip", "libzmq", "impl", bug, [seen_else]).outcome == Outcome.FAILED


def test_impl_answering_unsupported_is_a_failure():
    from dataclasses import replace

    from zmtp_conformance.scenario import Role

    sc = scenario("30/push-pull/in-order")
    roles = dict(sc.roles)
    roles["server"] = Role("server", "server", "PULL", options={"no_such_option": 1})
    r = run_one(replace(sc, roles=roles))
    assert r.outcome == Outcome.FAILED and "no_such_option" in r.reason and "impl claims" in r.reason


def test_unsupported_option_is_unsupported_not_failed():
    # libzmq's agent has no equivalent of allow_legacy.
    from dataclasses import replace

    from zmtp_conformance.scenario import Role

    sc = scenario("30/push-pull/in-order")
    roles = dict(sc.roles)
    roles["server"] = Role("server", "server", "PULL", options={"allow_legacy": False})
    r = run_one(replace(sc, roles=roles), server="libzmq")
    assert r.outcome == Outcome.UNSUPPORTED and "allow_legacy" in r.reason


@pytest.mark.parametrize("peer", ["impl", "libzmq", "czmq"])
def test_agent_protocol_errors(peer):
    spec = peers.load_registry()[peer]
    if spec.missing():
        pytest.skip(f"{peer} is not available here: {spec.missing()}")

    async def go():
        agent = peers.AgentProcess(spec)
        await agent.start()
        try:
            assert agent.hello["protocol"] == protocol.PROTOCOL_VERSION
            with pytest.raises(protocol.AgentError) as e:
                await agent.request("teleport")
            assert e.value.kind == protocol.UNSUPPORTED
            with pytest.raises(protocol.AgentError) as e:
                await agent.request("socket", type="CLIENTX")
            assert e.value.kind == protocol.UNSUPPORTED
            s = (await agent.request("socket", type="PULL"))["socket"]
            await agent.request("bind", socket=s, endpoint="tcp://127.0.0.1:0")
            with pytest.raises(protocol.AgentError) as e:
                await agent.request("recv", socket=s, timeout=0.1)
            assert e.value.kind == protocol.TIMEOUT
            with pytest.raises(protocol.AgentError) as e:
                await agent.request("send", socket=s, frames=["00"])
            assert e.value.kind == protocol.FAILED  # PULL cannot send
            with pytest.raises(protocol.AgentError) as e:
                await agent.request("recv", socket="nope")
            assert e.value.kind == protocol.INVALID
            events = (await agent.request("events", socket=s))["events"]
            assert [e["event"] for e in events] == ["listening"]
            with pytest.raises(protocol.AgentError) as e:
                await agent.request("events", socket=s, until="accepted", timeout=0.1)
            assert e.value.kind == protocol.TIMEOUT
        finally:
            await agent.stop()

    asyncio.run(go())


def test_a_failed_cells_agents_are_started_afresh():
    async def go():
        pool = AgentPool(peers.load_registry())
        try:
            first = await pool.get("impl", "server")
            other = await pool.get("libzmq", "client")
            await pool.discard("impl")
            assert not first.alive and other.alive
            again = await pool.get("impl", "server")
            assert again is not first and again.alive
            assert await pool.get("libzmq", "client") is other
        finally:
            await pool.close()

    asyncio.run(go())


def test_a_failed_cell_restarts_only_the_agents_it_used():
    async def go():
        pool = AgentPool(peers.load_registry())
        try:
            used_server = await pool.get("impl", "server")
            used_client = await pool.get("libzmq", "client")
            # The same peers on the other side, kept by another pairing (libzmq serving impl).
            idle_client = await pool.get("impl", "client")
            idle_server = await pool.get("libzmq", "server")
            await pool.discard_cell("impl", "libzmq")
            assert not used_server.alive and not used_client.alive
            assert idle_client.alive and idle_server.alive
            assert await pool.get("impl", "client") is idle_client
            server_now = await pool.get("impl", "server")
            assert server_now is not used_server
            # A raw side has no agent to stop; the other side's is stopped alone.
            await pool.discard_cell("raw", "impl")
            assert not idle_client.alive and server_now.alive
        finally:
            await pool.close()

    asyncio.run(go())


def test_the_raw_peer_catches_what_impl_gets_wrong_in_its_own_core():
    # The raw peer has its own codec: a bug switched on in impl's core (here its READY names the
    # wrong socket type) is caught by the raw peer instead of being shared with it.
    good = run("28/rep/envelope-returned", "impl", "raw")
    assert good.outcome == Outcome.PASSED, good.reason
    bad = run("28/rep/envelope-returned", "impl", "raw", {"impl": ["--bug", "ready_socket_type='PUB'"]})
    assert bad.outcome == Outcome.FAILED and "PUB" in bad.reason, bad.reason


def test_the_raw_peer_imports_nothing_from_impl():
    import ast
    from pathlib import Path

    import zmtp_conformance

    root = Path(zmtp_conformance.__file__).parent
    # Everything that judges bytes or plays a side against the peer under test: the raw peer, the
    # matchers, the capture readers, dissector and validator, and replay.
    judges = ["rawcodec.py", "rawpeer.py", "matchers.py"]
    judges += [str(f.relative_to(root)) for sub in ("capture", "replay") for f in sorted((root / sub).glob("*.py"))]
    assert "replay/session.py" in judges and "capture/validator.py" in judges
    for name in judges:
        tree = ast.parse((root / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith("zmtp") or node.module.startswith("zmtp_conformance"), (
                    name,
                    node.module,
                )
            if isinstance(node, ast.Import):
                assert not any(a.name == "zmtp" or a.name.startswith("zmtp.") for a in node.names), name


def test_the_run_summary_ranks_the_phases_over_every_cell():
    from zmtp_conformance.plugin import where_time_went

    records = [
        {"phases": {"step:wait": 3.0, "agents": 1.0}},
        {"phases": {"step:wait": 1.0, "step:expect": 2.0, "teardown": 0.5}},
        {"outcome": "skipped"},  # no phases: a peer that was not there
    ]
    line = where_time_went(records, top=2)
    assert line == "cell time 8 worker-seconds: step:wait 4s (53%), step:expect 2s (27%), other 2s"
    assert where_time_went([{"outcome": "skipped"}]) == ""


def test_matrix_html_says_where_the_time_went():
    from zmtp_conformance.report.html import time_section

    records = [
        {"id": "a[x]", "scenario": "a", "outcome": "passed", "duration": 4.0, "phases": {"step:wait": 3.0, "agents": 1.0}},
        {"id": "b[x]", "scenario": "b", "outcome": "deviates", "duration": 2.0, "phases": {"step:expect": 2.0}},
    ]
    text = "\n".join(time_section(records))
    assert "6 worker-seconds over 2 cells" in text
    assert "<tr><td>step:wait</td><td>3</td><td>50%</td><td>3</td><td>0</td></tr>" in text
    assert text.index("<td>a</td>") < text.index("<td>b</td>")  # the costlier scenario first
    assert time_section([{"id": "c", "outcome": "skipped"}]) == []
