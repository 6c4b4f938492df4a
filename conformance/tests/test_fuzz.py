"""The peer fuzzer: its inputs are deterministic and well formed as scenarios, its minimiser shrinks,
and its oracles catch agents that are broken on purpose (a dying agent, impl with a ProtocolBugs knob)."""

from __future__ import annotations

import asyncio
import random
import sys
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from zmtp_conformance import peers, rawcodec
from zmtp_conformance.credentials import client_mechanism, server_mechanism
from zmtp_conformance.fuzz import campaign, findings, grammar, mutate
from zmtp_conformance.fuzz.inputs import FAULTS, Context, FuzzInput
from zmtp_conformance.fuzz.minimise import minimise
from zmtp_conformance.fuzz.oracles import judge, phantom
from zmtp_conformance.fuzz.target import Played, Sanity, Target, broken_answer, process_rss
from zmtp_conformance.scenario import load_file


@pytest.mark.parametrize("mechanism", ["NULL", "PLAIN", "CURVE"])
def test_inputs_depend_only_on_the_seed(mechanism: str) -> None:
    ctx = Context(mechanism, "server", mutate.load_seeds(mechanism))
    first = [i.to_json() for i in campaign.make_inputs(7, ctx, 120)]
    again = [i.to_json() for i in campaign.make_inputs(7, ctx, 120)]
    other = [i.to_json() for i in campaign.make_inputs(8, ctx, 120)]
    assert first == again
    assert first != other


def test_every_generator_runs_and_round_trips() -> None:
    for mechanism in ("NULL", "PLAIN", "CURVE"):
        ctx = Context(mechanism, "server", mutate.load_seeds(mechanism))
        rng = random.Random(3)
        for gen, mechs, _, _ in grammar.GENERATORS:
            if mechanism not in mechs:
                continue
            for _ in range(20):
                inp = gen(rng, ctx)
                assert inp.steps, gen.__name__
                assert FuzzInput.from_json(inp.to_json()).to_json() == inp.to_json()


def test_the_seed_corpus_comes_from_the_golden_captures() -> None:
    seeds = mutate.load_seeds("NULL")
    assert seeds, "captures/ should hold NULL exchanges"
    assert all(s.startswith(b"\xff") for s in seeds)  # each a client's stream, greeting first
    families = Counter(
        campaign.make_inputs(1, Context("NULL", "server", seeds), 200)[i].family.split(".")[0] for i in range(200)
    )
    assert families["mutate"] > 20 and families["greeting"] and families["frame"]


@pytest.mark.parametrize("side", ["server", "client"])
def test_findings_are_loadable_scenarios(tmp_path: Path, side: str) -> None:
    ctx = Context("NULL", side, mutate.load_seeds("NULL"))
    for i, inp in enumerate(campaign.make_inputs(5, ctx, 40)):
        path = findings.write(
            tmp_path,
            inp,
            peer="some-peer",
            side=side,
            mechanism="NULL",
            oracle="crash",
            detail="died",
            original=inp,
            seed=5,
            index=i,
            attempts=0,
            versions={},
        )
        sc = load_file(path)
        assert sc.hostile == (side == "server")
        assert any(r.raw for r in sc.roles.values())
    loaded = findings.load(tmp_path)
    assert len(loaded["some-peer"]) == len({p.name for p in (tmp_path / "findings" / "some-peer").glob("*.json")})


def test_the_minimiser_shrinks_to_what_the_failure_needs() -> None:
    noise = bytes(range(40))
    big = FuzzInput(
        "frame.size.huge",
        "PULL",
        [("handshake", None), ("raw", noise), ("wait", 0.01), ("raw", noise + b"\x02\x7f\xff" + noise), ("wait", 0.01)],
    )
    runs = []

    async def fails(c: FuzzInput) -> bool:  # stands in for "the peer crashes"
        runs.append(c)
        return c.handshakes and b"\x7f\xff" in c.raw_bytes()

    small, attempts = asyncio.run(minimise(big, fails, max_runs=400))
    assert small.steps == [("handshake", None), ("raw", b"\x7f\xff")]
    assert attempts == len(runs) <= 400
    # And a bound is a bound.
    _, capped = asyncio.run(minimise(big, fails, max_runs=5))
    assert capped == 5


def test_the_phantom_oracle() -> None:
    wire = Played(wire=b"\x00\x03abc\x00\x03xyz")
    assert phantom([[b"abc"]], [wire], "NULL") is None
    assert phantom([[b"abc"], [b"xyz"]], [wire], "NULL") is None
    assert "never written" in (phantom([[b"hello"]], [wire], "NULL") or "")
    assert "received 2 times" in (phantom([[b"abc"], [b"abc"]], [wire], "NULL") or "")
    boxed = Played(boxed=[[b"one"]])
    assert phantom([[b"one"]], [boxed], "CURVE") is None
    assert phantom([[b"one"], [b"one"]], [boxed], "CURVE")  # a replayed box delivered twice
    assert phantom([[b"plaintext"]], [Played(wire=b"plaintext")], "CURVE")  # unboxed after CURVE


def test_judge_names_each_oracle() -> None:
    ok = Sanity(True, [])
    common = dict(rss_baseline=100 << 20, rss_limit=256 << 20, evidence=[], mechanism="NULL", received=[])
    assert judge(alive=True, exit_detail="", hung=False, sanity=ok, rss=110 << 20, played=Played(), **common) == []
    died = judge(
        alive=False, exit_detail="status -6", hung=False, sanity=Sanity(False, [], "x"), rss=0, played=None, **common
    )
    assert [f.oracle for f in died] == ["crash"]
    fat = judge(alive=True, exit_detail="", hung=False, sanity=ok, rss=900 << 20, played=None, **common)
    assert [f.oracle for f in fat] == ["rss"]
    stayed = judge(alive=True, exit_detail="", hung=False, sanity=ok, rss=0, played=Played(stayed_open=True), **common)
    assert [f.oracle for f in stayed] == ["must-close"]
    hung = judge(
        alive=False,
        exit_detail="",
        hung=True,
        sanity=Sanity(False, [], "no answer to recv"),
        rss=0,
        played=None,
        **common,
    )
    assert [f.oracle for f in hung] == ["hang"]


def test_process_rss_counts_a_live_process() -> None:
    import os

    assert process_rss(os.getpid()) > 1 << 20
    assert process_rss(2**22 + 12345) == 0


# -- against live agents --------------------------------------------------------------------

DYING_AGENT = textwrap.dedent(
    """
    # impl's agent, except that a frame header announcing 2^63-1 octets kills the process at once,
    # as zmq.rs aborts on one: the crash oracle must notice and the campaign restart the agent.
    import os
    import zmtp.frame

    feed = zmtp.frame.FrameDecoder.feed

    def dying_feed(self, data):
        if b"\\x7f\\xff\\xff\\xff\\xff\\xff\\xff\\xff" in bytes(data):
            os._exit(7)
        return feed(self, data)

    zmtp.frame.FrameDecoder.feed = dying_feed
    from zmtp_conformance.agents.impl_agent import main
    main()
    """
)


def _pool(tmp_path: Path, **specs: list[str]) -> peers.AgentPool:
    registry = peers.load_registry()
    for name, command in specs.items():
        registry[name] = peers.PeerSpec(name=name, command=command, family="impl")
    return peers.AgentPool(registry)


def test_the_crash_oracle_catches_a_dying_agent_and_restarts_it(tmp_path: Path) -> None:
    script = tmp_path / "dying_agent.py"
    script.write_text(DYING_AGENT)
    pool = _pool(tmp_path, dying=[sys.executable, str(script)])
    huge = FuzzInput(
        "frame.size.huge", "PULL", [("handshake", None), ("raw", b"\x02" + b"\x7f" + b"\xff" * 7 + b"abc")]
    )
    harmless = FuzzInput("frame.split", "PULL", [("handshake", None), ("raw", b"\x00\x03abc")])

    async def go() -> tuple[list, list, int, list]:
        c = campaign.Campaign(campaign.Settings(peer="dying", out=tmp_path), pool, log=lambda _: None)
        try:
            before = await c.execute(harmless, random.Random(0))
            crash = await c.execute(huge, random.Random(0))
            restarts = c.target.restarts
            after = await c.execute(harmless, random.Random(0))
            return before, crash, restarts, after
        finally:
            await c.target.close()
            await pool.close()

    before, crash, restarts, after = asyncio.run(go())
    assert before == [] and after == []
    assert [f.oracle for f in crash] == ["crash"]
    assert "status 7" in crash[0].detail
    assert restarts == 1


def run_campaign(settings: campaign.Settings, peer_args: dict[str, list[str]] | None = None) -> campaign.Summary:
    """One quiet campaign against local agents (started with `peer_args`), agents closed after."""
    pool = peers.AgentPool(peers.load_registry(), peer_args or {})

    async def go() -> campaign.Summary:
        try:
            return await campaign.Campaign(settings, pool, log=lambda _: None).run()
        finally:
            await pool.close()

    return asyncio.run(go())


def test_a_campaign_writes_minimised_reproducers(tmp_path: Path) -> None:
    """impl told to leave Socket-Type out of its READY: the sanity exchange (the raw peer checks the
    socket type) fails even for the clean control exchange; that is reported once, as its finding."""
    settings = campaign.Settings(peer="impl", inputs=3, seed=2, out=tmp_path, minimise_runs=0)
    summary = run_campaign(settings, {"impl": ["--bug", "ready_omit_socket_type"]})
    # Every clean control exchange fails, so no hostile input is sent: its failures would say nothing more.
    assert summary.inputs == 0
    assert summary.failures == {}
    assert any(sig.startswith("sanity:") for sig in summary.baseline)
    assert list(summary.distinct) == ["sanity control.clean"]
    written = findings.load(tmp_path)["impl"]
    assert written[0]["oracle"] == "sanity"
    assert "socket" in written[0]["detail"].lower()
    assert (tmp_path / "fuzz-impl-null-server.json").exists()


def test_a_short_campaign_against_impl_has_no_finding(tmp_path: Path) -> None:
    settings = campaign.Settings(peer="impl", inputs=60, seed=11, out=tmp_path, minimise_runs=0)
    summary = run_campaign(settings)
    assert summary.inputs == 60
    assert summary.distinct == {}, summary.line()


@pytest.mark.parametrize("mechanism", ["PLAIN", "CURVE"])
def test_client_side_inputs_play_a_server(mechanism: str) -> None:
    """Against a PLAIN or CURVE client the raw peer is the server: no client HELLO/INITIATE is sent,
    broken WELCOME/READY answers are, and CURVE-only faults stay under CURVE."""
    ctx = Context(mechanism, "client", mutate.load_seeds(mechanism, side="client"))
    inputs = campaign.make_inputs(5, ctx, 300)
    families = Counter(i.family for i in inputs)
    assert not [f for f in families if f.startswith(("handshake.plain.", "handshake.curve."))]
    served = [i for i in inputs if i.steps[0][0] == "serve"]
    assert len({(i.steps[0][1]["stage"], i.steps[0][1]["fault"]) for i in served}) > 12
    faults = {i.steps[0][1]["fault"] for i in served}
    assert ("wrong_key" in faults) == (mechanism == "CURVE")
    for inp in inputs:
        assert FuzzInput.from_json(inp.to_json()).to_json() == inp.to_json()
        for kind, arg in inp.steps:
            if kind == "raw" and arg[:1] == b"\xff" and len(arg) >= 64:
                assert arg[32] == 1 or inp.family.startswith(("greeting.", "mutate.")), inp.family  # as-server
    # The server's side of the golden captures: WELCOME comes from the server.
    assert any(b"WELCOME" in s for s in ctx.seeds)


def _served(mechanism: str, stage: str) -> tuple[Any, Any, bytes]:
    """A raw server and client mechanism that shook hands, and the server's honest answer at `stage`."""
    client = rawcodec.Codec("PUSH", as_server=False, mechanism=client_mechanism(mechanism))
    server = rawcodec.Codec("PULL", as_server=True, mechanism=server_mechanism(mechanism))
    answers = []
    honest = server.mech.on_command

    def spy(name: str, data: bytes) -> bytes:
        out = honest(name, data)
        answers.append((name, out))
        return out

    server.mech.on_command = spy  # type: ignore[method-assign]
    for _ in range(6):
        server.receive(client.data_to_send())
        client.receive(server.data_to_send())
    assert client.ready and server.ready
    want = "HELLO" if stage == "welcome" else "INITIATE"
    return server.mech, client.mech, next(out for name, out in answers if name == want)


@pytest.mark.parametrize("mechanism", ["PLAIN", "CURVE"])
@pytest.mark.parametrize("stage", ["welcome", "ready"])
def test_every_server_fault_changes_the_answer(mechanism: str, stage: str) -> None:
    ctx = Context(mechanism, "client")
    rng = random.Random(4)
    offered = {
        inp.steps[0][1]["fault"]
        for inp in (grammar.server_answer(rng, ctx) for _ in range(400))
        if inp.steps[0][1]["stage"] == stage
    }
    assert offered and offered <= set(FAULTS)
    for fault in sorted(offered):
        server, _, answer = _served(mechanism, stage)
        broken = broken_answer(server, answer, fault, random.Random(fault))
        assert broken != answer, (mechanism, stage, fault)


@pytest.mark.parametrize("stage,fault", [("welcome", "wrong_key"), ("welcome", "flipped"), ("ready", "wrong_key")])
def test_the_raw_client_refuses_a_curve_box_the_fault_broke(stage: str, fault: str) -> None:
    """The fault is the one it says: the client that opened the honest answer cannot open the broken one."""
    server, client, answer = _served("CURVE", stage)
    name, body = rawcodec.FrameReader().feed(answer)[0].command()
    if stage == "welcome":
        assert client.on_command(name, body)  # the honest WELCOME opens (and INITIATE follows)
    bad_name, bad_body = (
        rawcodec.FrameReader().feed(broken_answer(server, answer, fault, random.Random(1)))[0].command()
    )
    with pytest.raises(rawcodec.CodecError, match="does not open"):
        client.on_command(bad_name, bad_body)


@pytest.mark.parametrize("mechanism", ["PLAIN", "CURVE"])
def test_a_short_client_side_campaign_against_impl_has_no_finding(tmp_path: Path, mechanism: str) -> None:
    settings = campaign.Settings(
        peer="impl", side="client", mechanism=mechanism, inputs=40, seed=5, out=tmp_path, minimise_runs=0
    )
    summary = run_campaign(settings)
    assert summary.inputs == 40 and len(summary.digests) > 30
    assert summary.families["server"] > 5
    assert summary.distinct == {}, summary.line()


def test_the_container_memory_comes_from_its_cgroup(tmp_path: Path) -> None:
    """cgroup v1 (cgroupfs driver) reports total_rss, v2 anon; page cache is not counted; a container
    whose cgroup cannot be found has none."""
    from zmtp_conformance.fuzz.target import cgroup_memory_file, cgroup_rss

    v1 = tmp_path / "memory" / "docker" / "abc123"
    v1.mkdir(parents=True)
    (v1 / "memory.stat").write_text("cache 999999\nrss 5\ntotal_cache 999999\ntotal_rss 4096\n")
    found = cgroup_memory_file(2**22 + 1, "abc123", root=tmp_path)
    assert found == v1 / "memory.stat" and cgroup_rss(found) == 4096
    v2 = tmp_path / "system.slice" / "docker-def456.scope"
    v2.mkdir(parents=True)
    (v2 / "memory.stat").write_text("anon 8192\nfile 777777\n")
    found = cgroup_memory_file(2**22 + 1, "def456", root=tmp_path)
    assert found is not None and cgroup_rss(found) == 8192
    assert cgroup_memory_file(2**22 + 1, "other", root=tmp_path) is None
    assert cgroup_rss(tmp_path / "gone" / "memory.stat") == 0


def test_only_the_fail_on_peers_findings_fail_the_command(tmp_path: Path) -> None:
    """CI's fuzz step: impl's findings fail it, other peers' are kept; impl is made to fail here with
    a ProtocolBugs knob (READY without Socket-Type)."""
    from zmtp_conformance import cli

    base = ["fuzz", "--backend", "local", "--peer", "impl", "--budget", "2", "--minimise-runs", "0"]
    bug = ["--peer-args", "impl=--bug", "--peer-args", "impl=ready_omit_socket_type"]
    assert cli.main([*base, *bug, "--out", str(tmp_path / "a")]) == 1
    assert cli.main([*base, *bug, "--out", str(tmp_path / "b"), "--fail-on", "libzmq"]) == 0
    assert findings.load(tmp_path / "b")["impl"]  # kept all the same
    assert cli.main([*base, "--side", "sideways", "--out", str(tmp_path / "c")]) == 2


def test_the_crash_quote_is_the_line_that_says_why_not_the_last_frames(monkeypatch):

    monkeypatch.setenv("RUST_BACKTRACE", "1")
    target = Target(pool=None, peer="zmqrs", side="server", mechanism="NULL")  # type: ignore[arg-type]
    # Agents the target starts must not print backtraces that push the panic line out of the tail.
    import os

    assert os.environ["RUST_BACKTRACE"] == "0"
    frames = [f"  {i}: tokio::runtime::task::core::Core<T,S>::poll" for i in range(10, 20)]
    agent = peers.AgentProcess.__new__(peers.AgentProcess)
    agent.stderr_tail = ["memory allocation of 1099511628800 bytes failed", *frames]
    target.agent = agent
    assert target.last_words() == "memory allocation of 1099511628800 bytes failed"
    # With nothing that says why, the last lines are quoted rather than nothing.
    agent.stderr_tail = frames
    assert target.last_words().endswith("19: tokio::runtime::task::core::Core<T,S>::poll")


class _ScriptedSanity(Target):
    """A Target whose sanity exchanges give these results in turn, without any agent."""

    def __init__(self, pool: Any, side: str, results: list[Sanity]) -> None:
        super().__init__(pool=pool, peer="jeromq", side=side, mechanism="NULL")
        self.results = results
        self.tries = 0

    async def _sanity_once(self, socket_type: str) -> Sanity:
        self.tries += 1
        return self.results.pop(0)


def _pool_with_stall(declared: bool) -> Any:
    stall = peers.KnownStall("jeromq-poller-connect-race", "client", "zeromq/jeromq PR 1022", "no greeting")
    spec = peers.PeerSpec(name="jeromq", command=["true"], known_stalls=(stall,) if declared else ())
    return peers.AgentPool({"jeromq": spec})


def test_a_declared_client_stall_gets_the_sanity_exchange_again_and_nothing_else_does(monkeypatch) -> None:
    monkeypatch.setenv("RUST_BACKTRACE", "1")  # Target forces it to 0: keep that inside this test
    silent = Sanity(False, [], "sanity exchange: handshake did not complete", silent=True)
    spoke = Sanity(False, [], "the application did not receive the sanity message within 3s")
    ok = Sanity(True, [])

    target = _ScriptedSanity(_pool_with_stall(True), "client", [silent, ok])
    assert asyncio.run(target.sanity("PULL")).ok and target.tries == 2 and target.stalls == 1
    # A stall every time is still a failure: the rerun is bounded, never an excuse.
    target = _ScriptedSanity(_pool_with_stall(True), "client", [silent] * (1 + peers.STALL_RERUNS))
    assert not asyncio.run(target.sanity("PULL")).ok and target.tries == 1 + peers.STALL_RERUNS
    # A peer that spoke, a peer that declares nothing, a server-side target: one attempt, its verdict.
    for pool, side, first in (
        (_pool_with_stall(True), "client", spoke),
        (_pool_with_stall(False), "client", silent),
        (_pool_with_stall(True), "server", silent),
    ):
        target = _ScriptedSanity(pool, side, [first, ok])
        assert not asyncio.run(target.sanity("PULL")).ok and target.tries == 1 and target.stalls == 0
