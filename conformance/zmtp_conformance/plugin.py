"""The matrix runner as a pytest plugin: one test item per matrix cell.

pytest collects scenario YAML files under a `scenarios` folder and makes an
item for each cell, so -k, -m, xdist (-n) and sharding (--shard i/n) all
work. Outcomes map onto pytest's: passed; failed; deviates -> xfail (a known
deviation, listed with its reason; in Allure, status unknown and a category
of its own: report/allure_results.py); unsupported and missing peers -> skip.
matrix.json and matrix.html are written at the end of the session.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from . import __version__, deviations, endpoints, matrix, peers, wire
from .cells import RAW, Cell, CellResult
from .peers import STALL_RERUNS, AgentPool, KnownStall
from .runner import run_cell
from .scenario import Scenario, ScenarioError, load_all, load_file
from .vocabulary import Outcome

RECORD_KEY = "zmtp_cell"


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("zmtp-conformance")
    g.addoption("--peers", default=None, help="comma-separated peers to pair (default: every peer in peers.yaml)")
    g.addoption("--scenario", action="append", default=[], help="scenario id, an id prefix ending at a slash, or a glob (repeatable)")
    g.addoption(
        "--pair-with",
        default=None,
        help="comma-separated peers: only cells where one side is one of them (or the raw peer)",
    )
    g.addoption("--shard", default=None, help="run only shard i of n (i/n), for splitting across CI machines")
    g.addoption(
        "--shard-by",
        default="cell",
        choices=("cell", "pairing"),
        help="how --shard splits the matrix: interleaved cells (default), or whole pairings of peers, "
        "so each shard starts few peers (zmtp-conformance images needed says which)",
    )
    g.addoption("--report-dir", default="reports", help="where matrix.json and matrix.html go (default: reports)")
    g.addoption(
        "--peer-args",
        action="append",
        default=[],
        help="extra agent arguments, PEER=ARG (e.g. impl=--bug=skip_socket_type_check)",
    )
    g.addoption("--deviations", default=None, help="deviation table to use (default: conformance/deviations.yaml)")
    g.addoption("--progress", action="store_true", help="a live progress bar (rich) instead of pytest's dots")
    g.addoption(
        "--backend",
        default=os.environ.get("ZMTP_CONFORMANCE_BACKEND", "auto"),
        choices=("auto", "docker", "local"),
        help="where peers run: docker (each peer an image from docker/versions.yaml, run by testcontainers) "
        "or local (agents on this machine, conformance/peers.yaml); default auto: docker when a Docker engine "
        "answers, local otherwise; $ZMTP_CONFORMANCE_BACKEND sets the default",
    )
    g.addoption("--registry", default=None, help="local peer registry (default: conformance/peers.yaml)")
    g.addoption(
        "--version-matrix", default=None, help="the docker backend's peers and versions (default: docker/versions.yaml)"
    )
    g.addoption(
        "--no-build", action="store_true", help="docker backend: use the images as they are, without docker build"
    )
    g.addoption(
        "--pcap",
        default="auto",
        choices=("auto", "tcpdump", "proxy", "off"),
        help="how each cell's traffic is recorded and validated: tcpdump on lo (tcp cells, needs root), "
        "a recording proxy, or off (default auto: tcpdump where it can run, the proxy elsewhere)",
    )


class State:
    """Per-process state: the agent pool and its event loop, the peers found here."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.loop = asyncio.new_event_loop()
        self.backend = resolve_backend(config)
        if self.backend == "docker":
            from .containers import images

            vm = config.getoption("version_matrix")
            self.version_matrix = Path(vm) if vm else images.MATRIX
            source = str(self.version_matrix)
            try:
                self.registry = images.registry(self.version_matrix)
            except images.ImageError as exc:
                raise pytest.UsageError(str(exc)) from None
        else:
            reg = config.getoption("registry")
            source = reg or "peers.yaml"
            self.registry = peers.load_registry(Path(reg)) if reg else peers.load_registry()
        wanted = config.getoption("peers")
        names = [p.strip() for p in wanted.split(",")] if wanted else list(self.registry)
        unknown = [p for p in names if p not in self.registry]
        if unknown:
            raise pytest.UsageError(
                f"unknown peer(s) {', '.join(unknown)} for the {self.backend} backend; "
                f"{source} has {', '.join(self.registry)}"
            )
        self.peers = names
        pair_with = config.getoption("pair_with")
        self.pair_with = {p.strip() for p in pair_with.split(",")} | {RAW} if pair_with else set()
        self.shard_keys = matrix.pairings(names, self.pair_with) if config.getoption("shard_by") == "pairing" else None
        # A peer whose agent cannot be found or built is skipped, with the reason. A shard dealt
        # whole pairings starts only its own peers: the others' images need not even be here.
        shard = config.getoption("shard")
        self.started = matrix.shard_peers(self.shard_keys, shard, self.pair_with) if self.shard_keys and shard else names
        self.missing = {n: self.registry[n].missing() or self.registry[n].ensure_built() for n in self.started}
        extra: dict[str, list[str]] = {}
        for item in config.getoption("peer_args"):
            peer, _, arg = item.partition("=")
            extra.setdefault(peer, []).append(arg)
        self.capture_mode = config.getoption("pcap")
        self.capture_dir = Path(config.getoption("report_dir")) / "captures"
        # Agents write their CURVE transient keys beside the captures, so boxes can be opened.
        self.keylog = self.capture_dir / "curve-keylog.txt" if self.capture_mode != "off" else None
        self.pool = AgentPool(self.registry, extra, keylog=self.keylog)
        path = config.getoption("deviations")
        table = Path(path) if path else deviations.TABLE
        try:
            # The controller checks that every entry names a real scenario; xdist workers would
            # each read every scenario file again just to repeat it.
            known = None if hasattr(config, "workerinput") else {sc.id for sc in load_all()}
            self.table = deviations.load(table, known)
            self.wire_table = deviations.load_wire(table, known)
        except (deviations.DeviationError, ScenarioError) as exc:
            raise pytest.UsageError(str(exc)) from None
        families = {name: spec.family or name for name, spec in self.registry.items()}
        self.deviations = deviations.for_peers(self.table, families)
        self.wire_table = deviations.for_peers(self.wire_table, families)
        self.select = config.getoption("scenario") or None
        self.sniffer: Any = None
        self.sniffer_error: str | None = None

    def capture_for(self, cell: Cell) -> Any:
        """The capture a cell runs with (None when capture is off)."""
        from . import wire

        mode = self.capture_mode
        if mode == "off":
            return None
        if cell.transport == "tcp" and mode in ("auto", "tcpdump"):
            sniffer = self._sniffer()
            if sniffer is not None:
                return wire.SnifferCapture(cell.client, sniffer, self.keylog)
            if mode == "tcpdump":
                raise pytest.UsageError(f"--pcap=tcpdump: {self.sniffer_error}")
        return wire.ProxyCapture(cell.client, self.keylog)

    def _sniffer(self) -> Any:
        if self.sniffer is None and self.sniffer_error is None:
            from .capture import sniffer

            self.sniffer_error = sniffer.usable()
            if self.sniffer_error is None:
                # This worker's servers listen in a port range of its own, so its tcpdump records
                # its own cells only (endpoints.claim_ports says why).
                s = sniffer.Sniffer(ports=endpoints.claim_ports(*worker_share(self.config)))
                try:
                    s.start()
                    self.sniffer = s
                except sniffer.SnifferError as exc:
                    self.sniffer_error = str(exc)
        return self.sniffer

    def close(self) -> None:
        self.loop.run_until_complete(self.pool.close())
        self.loop.close()
        if self.sniffer is not None:
            self.sniffer.stop()
            self.sniffer = None


def worker_share(config: pytest.Config) -> tuple[int, int]:
    """(this process's index, how many processes run cells): an xdist worker's, else (0, 1)."""
    wi = getattr(config, "workerinput", None)
    if wi is None:
        return 0, 1
    return int(wi["workerid"].removeprefix("gw")), int(wi["workercount"])


def resolve_backend(config: pytest.Config) -> str:
    """docker or local: as asked, or for auto whichever this machine can run (workers follow the controller)."""
    from .containers import engine

    asked = getattr(config, "workerinput", {}).get("zmtp_backend") or config.getoption("backend", "auto")
    try:
        return engine.choose_backend(asked)
    except engine.EngineError as exc:
        raise pytest.UsageError(str(exc)) from None


def _is_matrix_run(config: pytest.Config) -> bool:
    """Whether this pytest run collects scenarios (the plugin is loaded into every pytest run)."""
    for arg in config.args:
        path = Path(str(arg).split("::")[0])
        if "scenarios" in path.resolve().parts or (path.is_dir() and (path / "scenarios").is_dir()):
            return True
    return False


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist: workers use the backend the controller chose (and built images for)."""
    st = getattr(node.config, "_zmtp_state", None)
    if st is not None:
        node.workerinput["zmtp_backend"] = st.backend


def _prepare_docker(config: pytest.Config, st: State) -> None:
    """Before any worker starts: images built (cached), and what an earlier killed run left removed."""
    from .containers import cleanup, images

    for gone in cleanup.sweep():
        print(f"zmtp-conformance: removed a container left by an earlier run: {gone}")
    if config.getoption("no_build"):
        return
    try:
        images.build_all(list(st.started), st.version_matrix, log=lambda m: print(f"zmtp-conformance: {m}"))
    except images.ImageError as exc:
        raise pytest.UsageError(str(exc)) from None
    # Images that did not exist at State() time do now.
    st.missing = {name: st.registry[name].missing() for name in st.started}


def _state(config: pytest.Config) -> State:
    st = getattr(config, "_zmtp_state", None)
    if st is None:
        st = State(config)
        config._zmtp_state = st  # type: ignore[attr-defined]
    return st


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "zmtp_cell: a ZMTP conformance matrix cell")
    config.addinivalue_line("markers", "flaky(reruns=0): how often pytest-rerunfailures may rerun a cell")
    matrix_run = _is_matrix_run(config)
    if not hasattr(config, "workerinput") and matrix_run and config.getoption("pcap", "off") != "off":
        # A run's captures and key log are its own: an earlier run's in the same report folder go, and
        # the run says so. Any other pytest run (the unit tests) never touches them.
        captures = Path(config.getoption("report_dir")) / "captures"
        if captures.is_dir():
            earlier = [p for p in (*captures.glob("*.pcap"), captures / "curve-keylog.txt") if p.exists()]
            for old in earlier:
                old.unlink()
            if earlier:
                print(f"zmtp-conformance: replacing the {len(earlier)} capture files of an earlier run in {captures}")
        captures.mkdir(parents=True, exist_ok=True)
    config.pluginmanager.register(Recorder(config), "zmtp_conformance_recorder")
    if getattr(config.option, "allure_report_dir", None) and matrix_run:
        from .report import allure_results

        # Deviations leave as their own status, not allure-pytest's "skipped" for an xfail.
        hook = allure_results.install(Path(config.option.allure_report_dir))
        config.add_cleanup(lambda: allure_results.uninstall(hook))
    if not hasattr(config, "workerinput") and matrix_run:
        st = _state(config)
        if st.backend == "docker":
            _prepare_docker(config, st)
    if config.getoption("progress") and not hasattr(config, "workerinput"):
        from . import progress

        config.pluginmanager.register(progress.make(config), "zmtp_conformance_progress")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix == ".yaml" and "scenarios" in file_path.parts:
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    def collect(self):  # type: ignore[no-untyped-def]
        st = _state(self.config)
        try:
            sc = load_file(self.path)
        except ScenarioError as exc:
            raise self.CollectError(str(exc)) from None
        if st.select and not _selected(sc, st.select):
            return
        cells = matrix.expand([sc], st.peers)
        if st.pair_with:
            cells = [c for c in cells if {c.server, c.client} & st.pair_with]
        cells = matrix.shard(cells, self.config.getoption("shard"), st.shard_keys, st.pair_with)
        for cell in cells:
            yield CellItem.from_parent(self, name=f"{sc.id}[{cell.params}]", cell=cell)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Cells of one pairing run one after another, scenario by scenario as collected.

    xdist hands each worker runs of consecutive items, and a worker keeps an agent per (peer,
    side) for as long as it lives: in pairing order a worker meets few peers, so it starts and
    keeps alive a few agents instead of one per peer and side in the matrix. A stable sort, the
    same in every worker (xdist requires identical collections).
    """
    if items and all(isinstance(i, CellItem) for i in items):
        items.sort(key=lambda i: (i.cell.server, i.cell.client))  # type: ignore[attr-defined]


def _selected(sc: Scenario, select: list[str]) -> bool:
    import fnmatch

    return any(sc.id == p or sc.id.startswith(p.rstrip("/") + "/") or fnmatch.fnmatchcase(sc.id, p) for p in select)


class CellFailed(AssertionError):
    # An assertion, not an error: reports (Allure) show the cell as failed, not broken.
    def __init__(self, result: CellResult) -> None:
        self.result = result
        super().__init__(result.reason)


class CellItem(pytest.Item):
    def __init__(self, *, cell: Cell, **kw: Any) -> None:
        super().__init__(**kw)
        self.cell = cell
        self.add_marker("zmtp_cell")
        for tag in cell.scenario.tags:
            marker = tag.replace(":", "_").replace("-", "_").replace(".", "_")
            self.config.addinivalue_line("markers", f"{marker}: scenarios tagged {tag}")
            self.add_marker(marker)
        st = _state(self.config)
        if any(st.registry[p].provisional for p in (cell.server, cell.client) if p in st.registry):
            # A newcomer's failures are findings to triage, not flakes to retry (pytest-rerunfailures
            # reads this marker before --reruns).
            self.add_marker(pytest.mark.flaky(reruns=0))
        for side in (cell.server, cell.client):
            why = st.missing.get(side) if side != RAW else None
            if why:
                self.add_marker(pytest.mark.skip(reason=f"peer {side} is not available: {why}"))
                rec = CellResult(cell, Outcome.SKIPPED, reason=f"peer {side} is not available: {why}").record()
                self.user_properties.append((RECORD_KEY, json.dumps(rec)))
                break

    def runtest(self) -> None:
        st = _state(self.config)

        async def attempt(n: int) -> CellResult:
            capture = st.capture_for(self.cell)
            path = None
            if capture is not None:
                st.capture_dir.mkdir(parents=True, exist_ok=True)
                path = st.capture_dir / wire.file_name(self.cell.id)
                if n > 1 and path.exists():
                    # The stalled attempt's capture stays, as the evidence its rerun rests on.
                    path.replace(path.with_name(wire.stalled_file_name(path.name, n - 1)))
                earlier = getattr(self, "execution_count", 1) - 1  # runs pytest-rerunfailures made before
                if n == 1 and earlier and path.exists():
                    # A flaky cell's failed run is evidence too: its capture stays beside the rerun's.
                    path.replace(path.with_name(wire.rerun_file_name(path.name, earlier)))
            try:
                result = await run_cell(self.cell, st.pool, st.deviations, capture, path, st.wire_table)
            except Exception:
                # A harness error: whatever state it left the agents in must not reach the next cell.
                await st.pool.discard_cell(self.cell.server, self.cell.client)
                raise
            if result.outcome in (Outcome.FAILED, Outcome.DEVIATES):
                # An excused failure can leave the agent as broken as any other (JeroMQ's I/O thread
                # spins after a negative frame size): the next cell, or attempt, gets a fresh one.
                # After a deviation only the deviating implementation's agent goes: its partner did
                # what the RFCs ask, and its sockets are closed as after a passed cell. After a
                # failure nobody knows whose fault it was, and both go.
                began = time.monotonic()
                dev = result.deviation
                if result.outcome == Outcome.DEVIATES and dev is not None:
                    await st.pool.discard_side(self.cell.server if dev.side == "server" else self.cell.client, dev.side)
                else:
                    await st.pool.discard_cell(self.cell.server, self.cell.client)
                spent = time.monotonic() - began  # the cell's cost, though paid after its verdict
                result.phases["discard"] = spent
                result.duration += spent
            return result

        client = st.registry.get(self.cell.client)
        result = st.loop.run_until_complete(
            run_attempts(attempt, lambda r: wire.declared_stall(self.cell.client, r.wire, client))
        )
        rec = result.record()
        for side in ("server", "client"):
            spec = st.registry.get(rec[side]["peer"])
            if spec is not None:
                rec[side]["family"] = spec.family or spec.name
        if rec["capture"] and rec["capture"]["file"]:
            # Relative to matrix.json, so a report directory can be moved or archived whole.
            rec["capture"]["file"] = os.path.relpath(rec["capture"]["file"], st.capture_dir.parent)
        self.user_properties.append((RECORD_KEY, json.dumps(rec)))
        self._allure(result)
        if result.outcome == Outcome.PASSED:
            return
        if result.outcome == Outcome.DEVIATES:
            assert result.deviation is not None
            pytest.xfail(f"known deviation: {result.deviation.reason} ({result.reason})")
        if result.outcome == Outcome.UNSUPPORTED:
            pytest.skip(f"unsupported: {result.reason}")
        raise CellFailed(result)

    def _allure(self, result: CellResult) -> None:
        try:
            import allure
        except ImportError:
            return
        from .report import allure_results

        sc = self.cell.scenario
        clause = sc.rfc[0]
        allure.dynamic.epic(f"RFC {clause.split('/')[0]}")
        feature = next((t.split(":", 1)[1] for t in sc.tags if t.startswith(("pattern:", "area:"))), "protocol")
        allure.dynamic.feature(feature)
        allure.dynamic.story(clause)
        allure.dynamic.title(f"{sc.title} [{self.cell.params}]")
        allure.dynamic.description(
            f"{sc.requirement}\n\nScenario {sc.id} ({sc.path}); RFC clauses: {', '.join(sc.rfc)}"
        )
        for key, value in (
            ("server", self.cell.server),
            ("client", self.cell.client),
            ("transport", self.cell.transport),
            ("mechanism", self.cell.mechanism),
        ):
            allure.dynamic.parameter(key, value)
        for side, vers in result.versions.items():
            allure.dynamic.parameter(f"{side} versions", ", ".join(f"{k} {v}" for k, v in vers.items()), excluded=True)
        allure.attach(result.transcript, name="transcript", attachment_type=allure.attachment_type.TEXT)
        if result.outcome == Outcome.DEVIATES and result.deviation is not None:
            dev = result.deviation
            peer = self.cell.server if dev.side == "server" else self.cell.client
            for name, value in allure_results.deviation_labels(peer, dev.id, dev.reason):
                allure.dynamic.label(name, value)
        wire_result = result.wire
        if wire_result is not None and wire_result.file and os.path.exists(wire_result.file):
            # Embedded (bounded) only where a reader needs it, linked elsewhere: every cell's pcap
            # inside made the single-file report hundreds of MB.
            rel = os.path.relpath(wire_result.file, _state(self.config).capture_dir.parent)
            embed = result.outcome in (Outcome.FAILED, Outcome.DEVIATES)
            allure_results.attach_capture(allure, wire_result.file, wire_result.method, rel, embed)
            if wire_result.findings:
                allure.attach(
                    "\n".join(
                        str(f) + (f"\n    known: {f.deviation.reason}" if f.deviation else "")
                        for f in wire_result.findings
                    ),
                    name="wire violations",
                    attachment_type=allure.attachment_type.TEXT,
                )
        if result.outcome == Outcome.FAILED:
            allure.attach(
                f"expected: {result.expected}\nseen:     {result.seen}",
                name="expected vs seen",
                attachment_type=allure.attachment_type.TEXT,
            )

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, CellFailed):
            r = excinfo.value.result
            sc = self.cell.scenario
            return "\n".join(
                [
                    f"{sc.id}: {sc.title}",
                    f"  requirement: {sc.requirement}",
                    f"  rfc:         {', '.join(sc.rfc)}   ({sc.path})",
                    f"  cell:        server={self.cell.server} client={self.cell.client} "
                    f"transport={self.cell.transport} mechanism={self.cell.mechanism}",
                    f"  failure:     {r.reason}",
                    f"  expected:    {r.expected}",
                    f"  seen:        {r.seen}",
                    "  transcript:",
                    *("    " + line for line in r.transcript.splitlines()),
                ]
            )
        if isinstance(excinfo.value, pytest.xfail.Exception):
            # A deviating cell: its reason is the whole story, and pytest's own rendering would read
            # and parse this module's source for a traceback nobody looks at, once per such cell.
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):  # type: ignore[no-untyped-def]
        return self.path, 0, self.name


async def run_attempts(
    attempt: Callable[[int], Awaitable[CellResult]],
    stall_of: Callable[[CellResult], KnownStall | None],
    reruns: int = STALL_RERUNS,
) -> CellResult:
    """Run a cell (attempt 1, 2, ...) until it ends otherwise than failed by a declared stall, at
    most 1 + `reruns` times; the last attempt is the verdict, and a stall is never excused: every
    attempt stalling leaves the cell failed. A loop here, not pytest-rerunfailures: whether to
    rerun is known only once the capture is judged (rerunfailures decides from markers and the
    error's text), these reruns must not hang on --reruns or on the flaky(reruns=0) marker that
    provisional peers get, and the stalled attempts are recorded apart from flaky cells."""
    stalled: list[tuple[KnownStall, CellResult]] = []
    for n in range(1, reruns + 2):
        result = await attempt(n)
        stall = stall_of(result) if result.outcome == Outcome.FAILED else None
        if stall is None:
            break
        stalled.append((stall, result))
    if not stalled:
        return result
    known = stalled[0][0]
    result.stall, result.attempts, result.stalled_attempts = known.id, n, len(stalled)
    earlier = []
    # The last stalled attempt's capture is the cell's own when no rerun followed it.
    for i, (_, r) in enumerate(stalled[:-1] if stall is not None else stalled, 1):
        kept = f" ({wire.stalled_file_name(Path(r.wire.file).name, i)})" if r.wire and r.wire.file else ""
        earlier.append(f"attempt {i}: {r.reason}{kept}")
    before = "; ".join(earlier)
    if stall is not None:
        result.reason = f"{result.reason} (all {n} attempts stalled: known stall {known.id}, {known.upstream})"
        if before:
            result.reason += f"; {before}"
    elif result.outcome == Outcome.PASSED:
        result.reason = f"passed on attempt {n} after the known stall {known.id} ({known.upstream}); {before}"
    else:
        result.reason = f"{result.reason} (after the known stall {known.id}; {before})"
    return result


def cell_record(report: pytest.TestReport) -> dict[str, Any] | None:
    """The matrix record a cell's report carries (from its call, or its skip), if any."""
    if report.when == "call" or report.skipped:
        for key, value in reversed(report.user_properties):
            if key == RECORD_KEY:
                return json.loads(value)
    return None


class Recorder:
    """Collects one record per cell from the test reports (which xdist ships to the controller)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.records: dict[str, dict[str, Any]] = {}
        self.start = time.time()
        self.written: Path | None = None
        self.stale: dict[str, str] = {}
        self.provisional: list[str] = []
        self.stale_provisional: dict[str, str] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # With --reruns a cell reports once per attempt; the last attempt
        # counts, and an earlier failure stays visible as "flaky".
        rec = cell_record(report)
        if rec is None:
            return
        earlier = self.records.get(rec["id"])
        if earlier is not None and earlier["outcome"] != rec["outcome"]:
            rec["flaky"] = True
            rec["reason"] = f"{rec['reason']} (an earlier attempt {earlier['outcome']}: {earlier['reason']})"
        self.records[rec["id"]] = rec

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        config = self.config
        st = getattr(config, "_zmtp_state", None)
        versions = {}
        if st is not None:
            for (peer, _side), agent in st.pool.agents.items():
                versions[peer] = agent.versions
            st.close()
        if hasattr(config, "workerinput") or not self.records:
            return
        from .report import html, jsonfile

        out = Path(config.getoption("report_dir"))
        out.mkdir(parents=True, exist_ok=True)
        records = sorted(self.records.values(), key=lambda r: r["id"])
        meta = {
            "project_version": __version__,
            "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "wall_time": round(time.time() - self.start, 2),
            "machine": {
                "node": platform.node(),
                "platform": platform.platform(),
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
            },
            "backend": st.backend if st is not None else "local",
            "peer_versions": versions or _versions_from_records(records),
            "shard": config.getoption("shard"),
            "scenario_selection": config.getoption("scenario") or None,
            "pair_with": config.getoption("pair_with"),
            "scenario_set": scenario_fingerprint(config),
            "peers": sorted(st.peers) if st is not None else sorted({r["server"]["peer"] for r in records} - {RAW}),
        }
        if st is not None:
            provisional = {n for n in st.peers if st.registry[n].provisional}
            self.stale = deviations.stale(st.deviations, records, provisional)
            meta["stale_deviations"] = self.stale
            self.stale_provisional = deviations.stale_provisional(st.deviations, records, provisional)
            if self.stale_provisional:
                meta["stale_provisional_deviations"] = self.stale_provisional
            if self.stale and not config.getoption("shard"):
                # A shard sees only part of an entry's cells; merge judges the whole.
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
            failed = [r for r in records if r["outcome"] == Outcome.FAILED]
            self.provisional = [r["id"] for r in failed if {r["server"]["peer"], r["client"]["peer"]} & provisional]
            meta["provisional_peers"] = {n: st.registry[n].provisional for n in sorted(provisional)}
            # Which peers declared a stall, so findings can show a rate of zero once it is fixed.
            meta["known_stalls"] = {
                n: [s.id for s in st.registry[n].known_stalls] for n in sorted(st.peers) if st.registry[n].known_stalls
            }
            if failed and len(self.provisional) == len(failed) and not self.stale:
                # Every failure involves a provisional peer: reported (matrix, findings), not gating.
                session.exitstatus = pytest.ExitCode.OK
        jsonfile.write(out / "matrix.json", meta, records)
        from .report import findings

        found = findings.collect(records, meta)
        findings.write_html(out / "findings.html", found, meta, records)
        html.write(out / "matrix.html", meta, records)
        self.written = out

    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
        if not self.records or hasattr(config, "workerinput"):
            return
        counts: dict[str, int] = {}
        for r in self.records.values():
            counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
        tr = terminalreporter
        tr.section("ZMTP conformance matrix")
        tr.write_line("  ".join(f"{o}: {counts.get(o, 0)}" for o in tuple(Outcome)))
        for line in pairing_table(list(self.records.values())):
            tr.write_line(line)
        tr.write_line(f"cells: {len(self.records)}   wall time: {time.time() - self.start:.1f}s")
        spent = where_time_went(list(self.records.values()))
        if spent:
            tr.write_line(spent)
        flaky = sorted(i for i, r in self.records.items() if r.get("flaky"))
        for cell in flaky:
            tr.write_line(f"flaky (its outcome changed on rerun): {cell}", yellow=True)
        # Counted apart from flaky cells: a declared upstream stall, run again (never excused).
        stalled = sorted((i, r) for i, r in self.records.items() if r.get("stall"))
        for cell, r in stalled:
            how = "passed after a known stall" if r["outcome"] == Outcome.PASSED else f"{r['outcome']}, known stall"
            tr.write_line(
                f"{how} ({r['stall']}, {r.get('stalled_attempts')} of {r.get('attempts')} attempts stalled): {cell}",
                yellow=True,
            )
        if stalled:
            rescued = sum(r["outcome"] == Outcome.PASSED for _, r in stalled)
            every = sum(r.get("stalled_attempts") == r.get("attempts") for _, r in stalled)
            tr.write_line(
                f"known stalls: {len(stalled)} cell(s) stalled, {rescued} passed on a rerun, "
                f"{every} stalled on every attempt"
            )
        if self.provisional:
            tr.write_line(
                f"{len(self.provisional)} failed cell(s) involve provisional peers (findings being triaged; "
                "they do not fail the run): see findings.html"
            )
        for entry, why in self.stale.items():
            tr.write_line(f"stale deviation entry {entry} (conformance/deviations.yaml): {why}", red=True)
        for entry, why in self.stale_provisional.items():
            tr.write_line(f"stale deviation entry {entry}, for provisional peers only (not gating): {why}", yellow=True)
        if self.written:
            tr.write_line(f"reports: {self.written / 'matrix.json'}  {self.written / 'matrix.html'}")


def scenario_fingerprint(config: pytest.Config) -> dict[str, Any]:
    """Which scenarios this run covers, shard aside: the ids and a hash of the files, so that
    `zmtp-conformance merge` can tell shards of one run from runs of different scenario sets."""
    import hashlib

    select = config.getoption("scenario") or None
    files: set[Path] = set()
    for arg in config.args:
        p = Path(arg.split("::")[0])
        if p.is_dir():
            files.update(f for f in p.rglob("*.yaml") if "scenarios" in f.resolve().parts)
        elif p.suffix == ".yaml":
            files.add(p)
    digest = hashlib.sha256()
    count = 0
    for f in sorted(files, key=lambda f: str(f.resolve())):
        try:
            sc = load_file(f)
        except ScenarioError:
            continue
        if select and not _selected(sc, select):
            continue
        count += 1
        digest.update(sc.id.encode() + b"\0" + hashlib.sha256(f.read_bytes()).digest())
    return {"scenarios": count, "sha256": digest.hexdigest()}


def where_time_went(records: list[dict[str, Any]], top: int = 8) -> str:
    """The phases the cells spent their time in, summed over the run (worker-seconds), largest first."""
    from .report.html import phase_totals

    ranked = list(phase_totals(records).items())
    whole = sum(seconds for _, seconds in ranked)
    if whole <= 0:
        return ""
    shown = [f"{phase} {seconds:.0f}s ({seconds / whole:.0%})" for phase, seconds in ranked[:top]]
    if len(ranked) > top:
        shown.append(f"other {sum(s for _, s in ranked[top:]):.0f}s")
    return f"cell time {whole:.0f} worker-seconds: " + ", ".join(shown)


def pairing_table(records: list[dict[str, Any]]) -> list[str]:
    """Rows are server peers, columns client peers; each cell 'passed/total' and what did not pass."""
    servers = sorted({r["server"]["peer"] for r in records})
    clients = sorted({r["client"]["peer"] for r in records})
    cells: dict[tuple[str, str], str] = {}
    for s in servers:
        for c in clients:
            rs = [r for r in records if r["server"]["peer"] == s and r["client"]["peer"] == c]
            if not rs:
                cells[s, c] = "-"
                continue
            n = {o: sum(1 for r in rs if r["outcome"] == o) for o in tuple(Outcome)}
            text = f"{n[Outcome.PASSED]}/{len(rs)}"
            extra = [f"{n[o]}{o[0].upper()}" for o in tuple(Outcome)[1:] if n[o]]
            cells[s, c] = text + (" " + " ".join(extra) if extra else "")
    width = max([len(v) for v in cells.values()] + [len(c) for c in clients] + [6]) + 2
    head = "server \\ client".ljust(16) + "".join(c.rjust(width) for c in clients)
    lines = [head]
    for s in servers:
        lines.append(s.ljust(16) + "".join(cells[s, c].rjust(width) for c in clients))
    lines.append("(passed/total; F failed, D deviates, U unsupported, S skipped)")
    return lines


def _versions_from_records(records: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for r in records:
        for side in ("server", "client"):
            if r[side]["versions"]:
                out[r[side]["peer"]] = r[side]["versions"]
    return out
