"""zmtp-conformance: run the matrix, list scenarios, find peers.

zmtp-conformance run [--peers impl,libzmq] [--scenario ID]... [-n auto] [--shard i/n]
zmtp-conformance peers
zmtp-conformance list [--scenario ID]...
zmtp-conformance validate [FILE]...
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import sys
from pathlib import Path

from . import peers
from .scenario import SCENARIO_DIR, ScenarioError, load_all, load_file
from .vocabulary import Outcome

MATRIX_INI = Path(__file__).resolve().parent / "matrix.ini"


def backend_registry(args: argparse.Namespace) -> tuple[str, dict[str, peers.PeerSpec]] | None:
    """The backend chosen by --backend and its peers (images built first, unless --no-build); None after an error."""
    from .containers import engine, images

    try:
        backend = engine.choose_backend(args.backend)
        if backend == "local":
            return backend, peers.load_registry()
        matrix = Path(args.version_matrix) if args.version_matrix else images.MATRIX
        if not args.no_build:
            images.build_all(None, matrix)
        return backend, images.registry(matrix)
    except (engine.EngineError, images.ImageError) as exc:
        print(f"zmtp-conformance: {exc}", file=sys.stderr)
        return None


def cmd_peers(args: argparse.Namespace) -> int:
    chosen = backend_registry(args)
    if chosen is None:
        return 2
    backend, registry = chosen
    print(f"backend: {backend}")

    async def probe_all() -> list[tuple[str, dict[str, str] | None, str | None]]:
        return [(name, *await peers.probe(spec)) for name, spec in registry.items()]

    found = 0
    for name, versions, why in asyncio.run(probe_all()):
        if versions is not None:
            found += 1
            print(f"{name:<13} available  {', '.join(f'{k} {v}' for k, v in versions.items())}")
        else:
            print(f"{name:<13} missing    {why}")
    return 0 if found else 1


def cmd_list(args: argparse.Namespace) -> int:
    try:
        scenarios = load_all(Path(args.dir), args.scenario or None)
    except ScenarioError as exc:
        print(exc, file=sys.stderr)
        return 2
    for sc in scenarios:
        print(f"{sc.id:<50} {sc.level:<6} {sc.title}")
    print(f"{len(scenarios)} scenarios", file=sys.stderr)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    files = [Path(f) for f in args.files] or sorted(Path(args.dir).rglob("*.yaml"))
    bad = 0
    for f in files:
        try:
            load_file(f)
        except ScenarioError as exc:
            bad += 1
            print(exc, file=sys.stderr)
    print(f"{len(files) - bad} of {len(files)} scenario files are valid", file=sys.stderr)
    return 1 if bad else 0


def cmd_run(args: argparse.Namespace, extra: list[str]) -> int:
    import pytest

    report = Path(args.report_dir)
    scenarios = Path(args.dir).resolve()
    argv = [
        str(args.dir),
        # The matrix's own configuration, not the unit tests' (see matrix.ini); the root stays the folder
        # above the scenarios (the checkout), so test ids and Allure's history ids stay what they were.
        "-c",
        str(MATRIX_INI),
        "--rootdir",
        str(scenarios.parent),
        "--report-dir",
        str(report),
        "-q",
        "-p",
        "no:cacheprovider",
        # The matrix has no async tests; pytest-asyncio, where installed (the dev extra), would warn that
        # matrix.ini leaves its options unset.
        "-p",
        "no:asyncio",
        # Nor property tests: Hypothesis's plugin costs each worker 0.4 s of imports (and trio's) at start.
        "-p",
        "no:hypothesispytest",
        "-o",
        "testpaths=",
        "--junitxml",
        str(report / "junit.xml"),
    ]
    if args.peers:
        argv += ["--peers", args.peers]
    if args.pair_with:
        argv += ["--pair-with", args.pair_with]
    for sc in args.scenario:
        argv += ["--scenario", sc]
    if args.shard:
        argv += ["--shard", args.shard, "--shard-by", args.shard_by]
    if args.workers:
        argv += ["-n", args.workers]
    if args.progress or (args.progress is None and sys.stderr.isatty()):
        argv += ["--progress"]
    if not args.no_allure:
        # Looked up, not imported: a plugin imported before pytest starts cannot have its asserts rewritten,
        # and pytest warns about it.
        if importlib.util.find_spec("allure_pytest") is not None:
            argv += ["--alluredir", str(report / "allure-results")]
        else:
            print("allure-pytest is not installed: no allure results (pip install allure-pytest)", file=sys.stderr)
    for pa in args.peer_args:
        argv += ["--peer-args", pa]
    argv += ["--pcap", args.pcap, "--backend", args.backend]
    if args.version_matrix:
        argv += ["--version-matrix", args.version_matrix]
    if args.no_build:
        argv += ["--no-build"]
    # `run ... -- ARGS` hands ARGS to pytest as options, not as paths to collect.
    extra = [a for a in extra if a != "--"]
    return int(pytest.main(argv + extra))


def cmd_images(args: argparse.Namespace) -> int:
    from .containers import cleanup, engine, images

    matrix = Path(args.version_matrix) if args.version_matrix else images.MATRIX
    try:
        if args.action == "list":
            for name, spec in images.load(matrix).images.items():
                state = engine.image_missing(spec.image) or "built"
                print(f"{name:<13} {spec.image:<32} {spec.family:<8} {state}")
        elif args.action == "build":
            images.build_all(args.peers or None, matrix)
        elif args.action == "clean":
            for gone in cleanup.sweep(everything=True):
                print(f"removed {gone}")
        elif args.action == "needed":
            # One name per line, for a CI job to load only the images its shard starts.
            from . import matrix as cells_matrix
            from .cells import RAW

            names = args.peers or list(images.load(matrix).images)
            pair_with = {p.strip() for p in args.pair_with.split(",")} | {RAW} if args.pair_with else None
            keys = cells_matrix.pairings(names, pair_with)
            needed = cells_matrix.shard_peers(keys, args.shard, pair_with) if args.shard else sorted(names)
            print(json.dumps(needed) if args.json else "\n".join(needed))
        elif args.action == "save":
            images.save(args.peers or list(images.load(matrix).images), args.dir, matrix)
        elif args.action == "load":
            images.load_saved(args.peers or list(images.load(matrix).images), args.dir, matrix)
    except (engine.EngineError, images.ImageError, ValueError) as exc:
        print(f"zmtp-conformance images: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    import asyncio

    from . import golden, protocol, replay
    from .capture.pcap import PcapError

    manifest = golden.load_manifest(args.manifest) if args.manifest else None
    if manifest is None and (golden.CAPTURES / "manifest.yaml").exists():
        manifest = golden.load_manifest()
    if manifest is None:
        manifest = {}
    near = args.file.parent / "manifest.yaml"
    if args.file.name not in manifest and near.exists():
        manifest = golden.load_manifest(near)
    keys = {}
    for kv in args.curve_key:
        name, _, value = kv.partition("=")
        if name not in ("server_public", "server_secret", "client_public", "client_secret") or len(value) != 40:
            print(f"zmtp-conformance replay: --curve-key {kv!r}: expected NAME=<40 Z85 characters>", file=sys.stderr)
            return 2
        keys[name] = value
    try:
        report = asyncio.run(
            replay.replay(
                args.file, args.against, args.play, args.stream, manifest.get(args.file.name), keys, keylog=args.keylog
            )
        )
    except (replay.ReplayError, PcapError, OSError, protocol.AgentError) as exc:
        print(f"zmtp-conformance replay: {exc}", file=sys.stderr)
        return 2
    print(report.to_json() if args.json else report.text())
    return 0 if report.ok else 1


def cmd_bench(args: argparse.Namespace) -> int:
    import asyncio
    import json

    from . import bench, benchclaims, peers
    from .peers import AgentPool
    from .report import html, jsonfile

    if args.compare_only is not None:
        doc = json.loads(args.compare_only.read_text())
    else:
        try:
            import matplotlib  # noqa: F401  (the plots; checked before minutes of measuring, not after)
        except ImportError:
            print(
                "zmtp-conformance bench: the plots need matplotlib: pip install 'zmtp-conformance[bench]'",
                file=sys.stderr,
            )
            return 2
        registry = peers.load_registry()
        names = args.peers.split(",") if args.peers else list(registry)
        usable = [n for n in names if not (registry[n].missing() or registry[n].ensure_built())]
        if bench.REFERENCE not in usable:
            print(f"zmtp-conformance bench: {bench.REFERENCE} is the reference and must run here", file=sys.stderr)
            return 2
        plan = bench.full_plan(usable) if args.full else bench.Plan(usable)
        if args.quick:
            plan.transports, plan.reps, plan.budget, plan.rtt_count = ["tcp"], 1, 8 << 20, 1000
        if args.transport:
            plan.transports = args.transport
        if args.mechanism:
            plan.mechanisms = args.mechanism
        if args.sizes:
            plan.sizes = plan.secure_sizes = [int(x) for x in args.sizes.split(",")]
        if args.reps:
            plan.reps = args.reps

        def progress(i: int, n: int, row: bench.Row) -> None:
            print(
                f"[{i + 1}/{n}] {row.kind} {row.pattern} {row.client}->{row.server} "
                f"{row.transport} {row.mechanism} {row.size} B",
                file=sys.stderr,
            )

        async def go() -> dict:
            pool = AgentPool(registry)
            try:
                return await bench.run(plan, pool, progress)
            finally:
                await pool.close()

        doc = asyncio.run(go())
        doc["claims"] = benchclaims.table(doc)
        files = bench.write(doc, args.report_dir)
        if (args.report_dir / "matrix.json").exists():  # so matrix.html links the benchmarks
            meta, records = jsonfile.read(args.report_dir / "matrix.json")
            html.write(args.report_dir / "matrix.html", meta, records)
        print("wrote " + ", ".join(str(f) for f in files))
        rows = bench.load_rows(doc)
        meta = doc["meta"]
        print(f"reference ({meta['reference']}): {meta['reference_is']}; wall time {meta['wall_time']} s")
        for peer, loop in sorted(meta["loops"].items()):
            print(f"  {peer}: {loop}")
        q = bench.ratios(rows, meta["reference"])
        for r in sorted(rows, key=lambda r: r.key):
            if r.key in q and (r.server, r.client) != (meta["reference"], meta["reference"]):
                print(
                    f"  {r.kind} {r.pattern} {r.client} -> {r.server} {r.transport} {r.mechanism} "
                    f"{r.size} B: {q[r.key]:.2f}x"
                )
        print(f"published claims against this run (ratios to {meta['reference']}, higher is better):")
        print("\n".join(benchclaims.text(doc["claims"])))
        noted: dict[str, int] = {}
        for r in rows:
            for note in r.notes:
                noted[note] = noted.get(note, 0) + 1
        for note, n in noted.items():
            print(f"  note ({n} row{'s' if n > 1 else ''}): {note}")
        for r in rows:
            if r.error:
                print(f"  error: {r.key.replace('|', ' ')}: {r.error}", file=sys.stderr)
    if args.baseline is not None:
        flagged = bench.compare(doc, json.loads(args.baseline.read_text()))
        for line in flagged:
            print(f"regression: {line}")
        if flagged:
            return 1
        print(f"no regression beyond the measured noise against {args.baseline}")
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from .report.merge import MergeError, merge

    try:
        meta, records = merge(args.dirs, args.output)
    except (MergeError, SystemExit) as exc:
        print(f"zmtp-conformance merge: {exc}", file=sys.stderr)
        return 2
    counts: dict[str, int] = {}
    for r in records:
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
    print(
        f"merged {len(args.dirs)} folders, {len(records)} cells into {args.output}: "
        + ", ".join(f"{o} {n}" for o, n in sorted(counts.items()))
    )
    # The build fails on a cell that neither passed nor deviates in a documented way. Unsupported
    # cells (a peer that lacks a feature, and says so) are listed, not fatal.
    provisional = set(meta.get("provisional_peers") or {})
    bad = [
        r
        for r in records
        if r["outcome"] in (Outcome.FAILED, Outcome.SKIPPED)
        and not (r["outcome"] == Outcome.FAILED and {r["server"]["peer"], r["client"]["peer"]} & provisional)
    ]
    for r in bad:
        print(f"  {r['outcome']}: {r['id']}: {r['reason']}", file=sys.stderr)
    # Shards each see part of an entry's cells; the merged whole says whether an entry still excuses anything.
    from . import deviations

    table = deviations.load()
    stale = deviations.stale(table, records, provisional)
    for entry, why in stale.items():
        print(f"  stale deviation entry {entry}: {why}", file=sys.stderr)
    for entry, why in deviations.stale_provisional(table, records, provisional).items():
        print(f"  stale deviation entry {entry}, for provisional peers only (not gating): {why}", file=sys.stderr)
    if stale:
        return 1
    for r in records:
        if r["outcome"] == Outcome.UNSUPPORTED:
            print(f"  unsupported: {r['id']}: {r['reason']}", file=sys.stderr)
    return 1 if bad else 0


def cmd_flaky(args: argparse.Namespace) -> int:
    """Flaky cells across several runs, oldest first; with --require N, fail unless the last N
    runs in a row had none (issue 18 asks for three)."""
    from .report import flakiness

    try:
        runs = [flakiness.read_run(d) for d in args.dirs]
    except SystemExit as exc:
        print(f"zmtp-conformance flaky: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(flakiness.summary(runs), indent=1))
    else:
        print("\n".join(flakiness.trend(runs)))
    if args.require is not None:
        streak = flakiness.clean_streak(runs)
        if streak < args.require:
            print(f"{streak} clean run(s) in a row at the end, {args.require} required", file=sys.stderr)
            return 1
    return 0


def cmd_findings(args: argparse.Namespace) -> int:
    """The distinct failures of each implementation in a run (matrix.json), for its maintainers."""
    from .report import findings, jsonfile

    path = args.source if args.source.suffix == ".json" else args.source / "matrix.json"
    from .fuzz import findings as fuzz_findings

    fuzzed = fuzz_findings.load(args.fuzz or path.parent / "fuzz")
    if args.implementation:
        fuzzed = {k: v for k, v in fuzzed.items() if k in args.implementation}
    if fuzzed and not path.exists():  # a fuzz run without a matrix run
        print(findings.fuzz_text(fuzzed))
        return 0
    meta, records = jsonfile.read(path)
    found = findings.collect(records, meta)
    if args.implementation:
        found = {k: v for k, v in found.items() if k in args.implementation}
    if args.propose:
        print(findings.propose(found), end="")
        return 0
    if args.json:
        print(json.dumps({k: [f.to_dict() for f in v] for k, v in found.items()}, indent=1))
    from .report import claims

    # Judged once: for the text here and for the page below.
    judged = claims.judge(claims.load(), records, load_all())
    if not args.json:
        print(findings.text(found))
        rates = findings.stall_rates(records, meta, args.implementation)
        if rates:
            print("\nstalls before the greeting (attempts where the peer connected and sent nothing):")
            print("\n".join(f"  {rate}" for rate in rates))
        verdicts = [
            v
            for v in judged
            if (v.counts or v.lacks) and (not args.implementation or v.claim.implementation in args.implementation)
        ]
        if verdicts:
            print("\nwhat each README claims, held against this run:")
            print(claims.text(verdicts))
    if fuzzed and not args.json and not args.propose:
        print("\nthe peer fuzzer's findings (zmtp-conformance fuzz):")
        print(findings.fuzz_text(fuzzed))
    html_path = path.parent / "findings.html"
    findings.write_html(html_path, found, meta, records, claim_verdicts=judged)
    if not args.json:
        print(f"\n{html_path}")
    return 0


def cmd_coverage(args: argparse.Namespace) -> int:
    """Requirement coverage per RFC; writes coverage.json and coverage.html; --check gates uncovered MUST/SHALL."""
    import json

    from . import coverage, requirements
    from .report import coveragepage, jsonfile

    try:
        inventory = requirements.load()
        overrides = requirements.Overrides.load()
        scenarios = load_all(Path(args.dir))
    except (requirements.InventoryError, ScenarioError) as exc:
        print(exc, file=sys.stderr)
        return 2
    report_dir = Path(args.report_dir)
    matrix = report_dir / "matrix.json"
    records = jsonfile.read(matrix)[1] if matrix.exists() else None
    cov = coverage.collect(inventory, scenarios, overrides.known_gaps, records)
    doc = cov.to_dict()
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "coverage.json").write_text(json.dumps(doc, indent=1) + "\n")
    coveragepage.write(report_dir / "coverage.html", doc)
    if args.json:
        print(json.dumps(doc, indent=1))
    else:
        print(coverage.text(cov))
        print(f"\n{report_dir / 'coverage.html'}")
    if args.check and doc["problems"]:
        print(f"\ncoverage gate: {len(doc['problems'])} problems", file=sys.stderr)
        for problem in doc["problems"]:
            print(f"  {problem}", file=sys.stderr)
        return 1
    return 0


def cmd_kill_matrix(args: argparse.Namespace) -> int:
    """Every ProtocolBugs knob of impl switched on in turn: which cells catch it; exit 1 if one goes undetected."""
    import json

    from . import killmatrix

    try:
        knobs = killmatrix.load()
    except killmatrix.KillMatrixError as exc:
        print(f"zmtp-conformance kill-matrix: {exc}", file=sys.stderr)
        return 2
    if args.knob:
        knobs = [k for k in knobs if k.name in args.knob]
    counterparts = killmatrix.available_counterparts(args.against.split(","))
    print(f"impl against raw{''.join(', ' + c for c in counterparts)}: {len(knobs)} knobs")
    results = killmatrix.run(knobs, counterparts)
    args.report_dir.mkdir(parents=True, exist_ok=True)
    (args.report_dir / "kill-matrix.json").write_text(json.dumps(killmatrix.record(results), indent=1))
    killmatrix.write_html(args.report_dir / "kill-matrix.html", results)
    undetected = [r.knob.name for r in results if r.verdict == "UNDETECTED"]
    print(
        f"{args.report_dir / 'kill-matrix.html'}: {len(results) - len(undetected)} of {len(results)} knobs caught or legal"
    )
    if undetected:
        print(f"undetected: {', '.join(undetected)}", file=sys.stderr)
        return 1
    return 0


def parse_budget(text: str) -> tuple[int | None, float | None]:
    """`500` is a number of inputs, `60s` (or `5m`) a number of seconds."""
    try:
        if text.endswith("s"):
            return None, float(text[:-1])
        if text.endswith("m"):
            return None, float(text[:-1]) * 60
        return int(text), None
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number of inputs (500) or seconds (60s)") from None


def cmd_fuzz(args: argparse.Namespace) -> int:
    """Hostile inputs against peers: exit 1 when a campaign has a finding (unless --exit-zero)."""
    from . import protocol
    from .fuzz import campaign

    chosen = backend_registry(args)
    if chosen is None:
        return 2
    _, registry = chosen
    extra: dict[str, list[str]] = {}
    for item in args.peer_args:
        name, _, arg = item.partition("=")
        extra.setdefault(name, []).append(arg)
    names = list(registry) if args.peer == "all" else args.peer.split(",")
    fail_on = set(names if args.fail_on is None else args.fail_on.split(","))
    sides = args.side.split(",")
    unknown = [n for n in {*names, *fail_on} if n not in registry]
    if unknown or not set(sides) <= {"server", "client"}:
        print(
            f"zmtp-conformance fuzz: unknown side(s) in {args.side!r} (server, client) or "
            f"peer(s) {', '.join(unknown)}; known peers: {', '.join(registry)}",
            file=sys.stderr,
        )
        return 2

    async def main() -> int:
        pool = peers.AgentPool(registry, extra)
        found = 0
        try:
            if args.replay:
                failures = await campaign.replay(args.replay, pool, names[0])
                for f in failures:
                    print(f"{f.oracle}: {f.detail}")
                print("every oracle passed" if not failures else f"{len(failures)} oracle(s) failed")
                return 1 if failures else 0
            for name in names:
                why = registry[name].missing()
                if why:
                    print(f"{name}: skipped: {why}", file=sys.stderr)
                    continue
                for side, mechanism in [(d, m) for d in sides for m in args.mechanism.split(",")]:
                    settings = campaign.Settings(
                        peer=name,
                        side=side,
                        mechanism=mechanism,
                        inputs=args.budget[0],
                        seconds=args.budget[1],
                        seed=args.seed,
                        out=args.out,
                        rss_limit=args.rss_limit_mb << 20,
                        minimise_runs=args.minimise_runs,
                    )
                    print(f"fuzz {name} {mechanism} as {side}, seed {args.seed}")
                    try:
                        summary = await campaign.Campaign(settings, pool).run()
                    except (ValueError, protocol.AgentError) as exc:
                        # The peer lacks the mechanism or socket type, or its agent would not start.
                        print(f"  {name} {mechanism}: skipped: {exc}", file=sys.stderr)
                        await pool.discard(name)
                        continue
                    print(summary.line())
                    for key, path in summary.distinct.items():
                        print(f"  {key}: {path}")
                    found += len(summary.distinct) if name in fail_on else 0
                    await pool.discard(name)
        finally:
            await pool.close()
        return 1 if found and not args.exit_zero else 0

    return asyncio.run(main())


def cmd_report(args: argparse.Namespace) -> int:
    from .report import allure, jsonfile

    meta = {}
    if (args.report_dir / "matrix.json").exists():
        meta, _ = jsonfile.read(args.report_dir / "matrix.json")
    output = args.output or args.report_dir / ("allure-report-single" if args.single_file else "allure-report")
    try:
        index, subset = allure.generate(
            args.report_dir / "allure-results", output, meta, single_file=args.single_file, all_cells=args.all_cells
        )
    except allure.ReportError as exc:
        print(f"zmtp-conformance report: {exc}", file=sys.stderr)
        return 2
    print(f"Allure report: {index} ({index.stat().st_size / 1e6:.1f} MB)")
    if subset is not None:
        print(
            f"it holds the {sum(subset.shown.values()):,} failed, broken and deviating cells of the run's "
            f"{sum(subset.cells.values()):,}; every cell is in matrix.html, --all-cells renders them all"
        )
    if output.resolve().parent != args.report_dir.resolve():
        # The plugin links passing cells' captures as ../captures/..., from a report inside the report folder.
        print(f"note: {output} is not directly inside {args.report_dir}: links to captures will not resolve")
    if args.open:
        from .report import serve

        try:
            serve.serve(index, args.report_dir, args.port, open_browser=not args.no_browser)
        except OSError as exc:
            print(f"zmtp-conformance report: cannot serve on 127.0.0.1:{args.port}: {exc}", file=sys.stderr)
            return 2
        print("stopped")
    elif not args.single_file:
        print("browsers open this form only from a web server: `zmtp-conformance report --open` serves it")
    return 0


def cmd_golden(args: argparse.Namespace) -> int:
    import asyncio

    from . import golden
    from .capture.sniffer import SnifferError

    try:
        problems = asyncio.run(golden.record(args.out or golden.CAPTURES, tuple(args.peers.split(",")), args.only))
    except SnifferError as exc:
        print(f"zmtp-conformance golden record: {exc}", file=sys.stderr)
        return 2
    for p in problems:
        print(f"violation: {p}", file=sys.stderr)
    return 1 if problems else 0


def curve_keys(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """CurveKeys from --keylog (or a curve-keylog.txt beside the file) and --curve-key, or None."""
    from zmtp.keys import parse_key

    from .capture.curvebox import CurveKeys
    from .capture.keylog import KeylogError, read

    path = args.keylog
    if path is None and (args.file.parent / "curve-keylog.txt").exists():
        path = args.file.parent / "curve-keylog.txt"
    given = dict(kv.partition("=")[::2] for kv in args.curve_key)
    if path is None and not given:
        return None
    bad = set(given) - {"server_public", "server_secret"}
    if bad:
        raise ValueError(f"--curve-key takes server_public or server_secret, not {', '.join(sorted(bad))}")
    try:
        transient = read(path) if path is not None else {}
    except KeylogError as exc:
        raise ValueError(str(exc)) from None
    return CurveKeys(
        transient,
        parse_key(given["server_public"]) if "server_public" in given else None,
        parse_key(given["server_secret"]) if "server_secret" in given else None,
    )


def cmd_dissect(args: argparse.Namespace) -> int:
    import json

    from .capture import pcap, transcript

    try:
        streams = transcript.load_streams(args.file, args.port)
    except (OSError, pcap.PcapError) as exc:
        print(f"zmtp-conformance dissect: {exc}", file=sys.stderr)
        return 2
    try:
        keys = curve_keys(args)
    except ValueError as exc:
        print(f"zmtp-conformance dissect: {exc}", file=sys.stderr)
        return 2
    violations = transcript.check(streams) if args.check else None
    if args.json:
        print(json.dumps(transcript.to_json(streams, violations, keys), indent=1))
    else:
        print(transcript.render(streams, violations, keys) or f"{args.file}: no TCP streams")
    if args.check:
        n = sum(len(v) for v in violations.values())  # type: ignore[union-attr]
        print(
            f"{n} violation{'s' if n != 1 else ''} in {len(streams)} stream{'s' if len(streams) != 1 else ''}",
            file=sys.stderr,
        )
        return 1 if n else 0
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="zmtp-conformance", description="ZMTP conformance and interop harness")
    ap.add_argument("--dir", default=str(SCENARIO_DIR), help="scenario folder (default: the project's scenarios/)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run the matrix (extra arguments go to pytest)")
    run.add_argument("--peers", help="comma-separated peers (default: all in peers.yaml)")
    run.add_argument("--scenario", action="append", default=[], help="scenario id, an id prefix ending at a slash (28/req-rep), or a glob (28/req*); repeatable")
    run.add_argument(
        "--pair-with",
        help="comma-separated peers: keep only cells where one side is one of them (or the raw peer), "
        "so N peers cost N pairings each instead of N squared",
    )
    run.add_argument("--shard", help="i/n: run one shard of the matrix")
    run.add_argument(
        "--shard-by",
        choices=("cell", "pairing"),
        default="cell",
        help="deal --shard out by cell (default) or by whole pairings, so each shard starts few peers",
    )
    run.add_argument("-n", "--workers", help="parallel workers (pytest-xdist), e.g. auto")
    run.add_argument("--report-dir", default="reports")
    run.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="live progress bar (default: when stderr is a terminal)",
    )
    run.add_argument("--no-allure", action="store_true")
    run.add_argument("--peer-args", action="append", default=[], help="PEER=ARG passed to that peer's agent")
    run.add_argument(
        "--pcap",
        choices=("auto", "tcpdump", "proxy", "off"),
        default="auto",
        help="record each cell's traffic to REPORT_DIR/captures and validate it "
        "(auto: tcpdump on lo as root for tcp, a recording proxy otherwise)",
    )
    pe = sub.add_parser("peers", help="list the peers found on this machine, with versions")
    im = sub.add_parser("images", help="the docker backend's images: build them, list them, remove leftover containers")
    im.add_argument("action", choices=("build", "list", "clean", "needed", "save", "load"))
    im.add_argument("peers", nargs="*", help="only these (names from docker/versions.yaml); default all")
    im.add_argument("--shard", help="needed: the peers shard i/n of a run sharded by pairing starts")
    im.add_argument("--pair-with", help="needed: as `run --pair-with`")
    im.add_argument("--json", action="store_true", help="needed: print a JSON list (for a CI job matrix)")
    im.add_argument("--dir", type=Path, default=Path("images"), help="save/load: folder of <peer>.tar.gz files")
    im.add_argument("--version-matrix", help="default: docker/versions.yaml")
    for p in (run, pe):
        p.add_argument(
            "--backend",
            choices=("auto", "docker", "local"),
            default=os.environ.get("ZMTP_CONFORMANCE_BACKEND", "auto"),
            help="docker: every peer an image from docker/versions.yaml; local: agents on this machine "
            "(conformance/peers.yaml); auto (default, or $ZMTP_CONFORMANCE_BACKEND): docker when a Docker engine answers",
        )
        p.add_argument("--version-matrix", help="the docker backend's peers (default: docker/versions.yaml)")
        p.add_argument("--no-build", action="store_true", help="docker backend: use the images as they are")
    ls = sub.add_parser("list", help="list scenarios")
    ls.add_argument("--scenario", action="append", default=[])
    val = sub.add_parser("validate", help="check scenario files against the schema")
    val.add_argument("files", nargs="*")
    rp = sub.add_parser("replay", help="play one side of a capture against a live peer and compare the other")
    rp.add_argument("file", type=Path, help="a pcap or pcapng capture")
    rp.add_argument("--against", required=True, help="the live peer (a name from peers.yaml)")
    rp.add_argument("--play", choices=("client", "server"), default="client", help="the side the harness plays")
    rp.add_argument("--stream", type=int, default=None, help="which TCP stream (default: the first)")
    rp.add_argument("--manifest", type=Path, default=None, help="manifest naming the capture's keys and types")
    rp.add_argument(
        "--curve-key",
        action="append",
        default=[],
        metavar="NAME=Z85",
        help="a CURVE key for a capture not in a manifest: server_public, server_secret, client_public, client_secret",
    )
    rp.add_argument(
        "--keylog", type=Path, default=None, help="CURVE transient keys, to replay the messages after a CURVE handshake"
    )
    rp.add_argument("--json", action="store_true")
    bn = sub.add_parser("bench", help="throughput and latency of the peers, as ratios to libzmq driven from C")
    bn.add_argument("--peers", help="comma-separated peers (default: every peer that runs here)")
    bn.add_argument("--quick", action="store_true", help="tcp only, one repetition, a smaller budget")
    bn.add_argument(
        "--full",
        action="store_true",
        help="every pairing, tcp and ipc, NULL/PLAIN/CURVE, all sizes, DEALER/ROUTER (default: each peer with "
        "itself, tcp, the rows of issue 17 and the published claims, under 10 minutes)",
    )
    bn.add_argument("--transport", action="append", choices=("tcp", "ipc"), default=None)
    bn.add_argument("--mechanism", action="append", choices=("NULL", "PLAIN", "CURVE"), default=None)
    bn.add_argument("--sizes", help="comma-separated PUSH/PULL message sizes in bytes (default: 64,1024,65536)")
    bn.add_argument("--reps", type=int, default=None, help="repetitions per row (default 3, 1 with --quick)")
    bn.add_argument("--report-dir", type=Path, default=Path("reports"))
    bn.add_argument("--baseline", type=Path, default=None, help="a saved bench.json: flag rows that regressed")
    bn.add_argument("--compare-only", type=Path, default=None, metavar="BENCH_JSON", help="no run: compare this file")
    mg = sub.add_parser("merge", help="merge the report folders of several shards into one matrix")
    mg.add_argument("dirs", nargs="+", type=Path, help="report folders (each with a matrix.json)")
    mg.add_argument("--output", type=Path, default=Path("reports/merged"))
    fl = sub.add_parser("flaky", help="cells that needed a rerun, across several runs (oldest first)")
    fl.add_argument("dirs", nargs="+", type=Path, help="report folders or matrix.json files, one per run")
    fl.add_argument("--json", action="store_true")
    fl.add_argument("--require", type=int, metavar="N", help="exit 1 unless the last N runs had no flaky cell")
    km = sub.add_parser("kill-matrix", help="switch on each of impl's ProtocolBugs knobs and show which cells catch it")
    km.add_argument("--knob", action="append", help="only this knob (repeatable)")
    km.add_argument("--against", default="libzmq", help="peers impl meets besides the raw peer (default libzmq)")
    km.add_argument("--report-dir", type=Path, default=Path("reports"))
    fz = sub.add_parser("fuzz", help="hostile inputs against peers: oracles, minimised reproducers (docs/fuzzing.md)")
    fz.add_argument("--peer", required=True, help="peer name(s), comma-separated, or all (every peer of the backend)")
    fz.add_argument("--side", default="server", help="the side the peer plays: server, client, or server,client")
    fz.add_argument(
        "--fail-on", default=None, help="only these peers' findings make the exit status 1 (default: every peer's)"
    )
    fz.add_argument("--mechanism", default="NULL", help="NULL, PLAIN, CURVE, or several comma-separated")
    fz.add_argument("--budget", type=parse_budget, default=(200, None), help="inputs (500) or seconds (60s)")
    fz.add_argument("--seed", type=int, default=0)
    fz.add_argument("--backend", choices=["local", "docker", "auto"], default="local")
    fz.add_argument("--version-matrix", default=None, help=argparse.SUPPRESS)
    fz.add_argument("--no-build", action="store_true", help="docker backend: do not build images first")
    fz.add_argument("--out", type=Path, default=Path("reports/fuzz"))
    fz.add_argument("--rss-limit-mb", type=int, default=256, help="growth of the agent's memory that is a finding")
    fz.add_argument("--minimise-runs", type=int, default=40, help="attempts to shrink each finding (0: none)")
    fz.add_argument("--peer-args", action="append", default=[], help="PEER=ARG passed to that peer's agent")
    fz.add_argument("--replay", type=Path, default=None, help="play one finding's JSON record once, with the oracles")
    fz.add_argument("--exit-zero", action="store_true", help="exit 0 even when there are findings")
    fnd = sub.add_parser("findings", help="each implementation's distinct failures in a run, with how to reproduce")
    fnd.add_argument("source", nargs="?", type=Path, default=Path("reports"), help="a report folder or its matrix.json")
    fnd.add_argument("--implementation", action="append", help="only this implementation (family); repeatable")
    fnd.add_argument("--json", action="store_true")
    fnd.add_argument("--propose", action="store_true", help="print deviation entries for the open findings, to review")
    fnd.add_argument("--fuzz", type=Path, default=None, help="the fuzzer's --out folder (default: SOURCE/fuzz)")
    cov = sub.add_parser("coverage", help="which RFC requirements the scenarios check; coverage.json and coverage.html")
    cov.add_argument("--report-dir", default="reports", help="where to write them (and read matrix.json, if there)")
    cov.add_argument("--check", action="store_true", help="exit 1 on an uncovered MUST/SHALL not listed as a known gap")
    cov.add_argument("--json", action="store_true", help="print coverage.json instead of the summary")
    rpt = sub.add_parser("report", help="render the Allure HTML report of a run (Allure 3 on Node.js)")
    rpt.add_argument("--report-dir", type=Path, default=Path("reports"), help="the run's report folder")
    rpt.add_argument("--output", type=Path, default=None, help="default: REPORT_DIR/allure-report")
    rpt.add_argument("--single-file", action="store_true", help="one self-contained index.html, for CI artifacts")
    rpt.add_argument(
        "--all-cells",
        action="store_true",
        help="every cell, passed and unsupported ones too (default: the failed, broken and deviating cells, "
        "which keeps a full matrix's single file small enough to open; matrix.html lists every cell)",
    )
    rpt.add_argument(
        "--open",
        action="store_true",
        help="then serve the report folder on http://127.0.0.1 and open the report in a browser (Ctrl-C stops)",
    )
    rpt.add_argument("--port", type=int, default=0, help="--open: the port (default: any free one)")
    rpt.add_argument("--no-browser", action="store_true", help="--open: print the URL, do not start a browser")
    gold = sub.add_parser("golden", help="record the golden captures in captures/ (root: uses tcpdump)")
    gold_sub = gold.add_subparsers(dest="golden_cmd", required=True)
    rec = gold_sub.add_parser("record", help="record libzmq and czmq exchanges and write captures/manifest.yaml")
    rec.add_argument("--out", type=Path, default=None, help="directory (default: captures/ in the checkout)")
    rec.add_argument("--peers", default="libzmq,czmq")
    rec.add_argument("--only", default="", help="only plans whose name contains this")
    dis = sub.add_parser(
        "dissect", help="decode the ZMTP in a pcap or pcapng file, optionally checking it against the RFCs"
    )
    dis.add_argument("file", type=Path)
    dis.add_argument("--json", action="store_true", help="machine-readable output")
    dis.add_argument(
        "--keylog",
        type=Path,
        default=None,
        help="CURVE transient keys (ZMTP_CURVE_KEYLOG format) to open boxes with "
        "(default: curve-keylog.txt beside the file, if there is one)",
    )
    dis.add_argument(
        "--curve-key",
        action="append",
        default=[],
        metavar="NAME=Z85",
        help="server_public (needed with a client's transient key) or server_secret",
    )
    dis.add_argument(
        "--check", action="store_true", help="validate every byte; exit 1 when something violates the RFCs"
    )
    dis.add_argument("--port", type=int, help="only streams to or from this TCP port")
    args, extra = ap.parse_known_args(argv)
    if args.cmd != "run" and extra:
        ap.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.cmd == "images":
        return cmd_images(args)
    if args.cmd == "peers":
        return cmd_peers(args)
    if args.cmd == "list":
        return cmd_list(args)
    if args.cmd == "validate":
        return cmd_validate(args)
    if args.cmd == "replay":
        return cmd_replay(args)
    if args.cmd == "golden":
        return cmd_golden(args)
    if args.cmd == "merge":
        return cmd_merge(args)
    if args.cmd == "bench":
        return cmd_bench(args)
    if args.cmd == "report":
        return cmd_report(args)
    if args.cmd == "coverage":
        return cmd_coverage(args)
    if args.cmd == "findings":
        return cmd_findings(args)
    if args.cmd == "flaky":
        return cmd_flaky(args)
    if args.cmd == "kill-matrix":
        return cmd_kill_matrix(args)
    if args.cmd == "fuzz":
        return cmd_fuzz(args)
    if args.cmd == "dissect":
        return cmd_dissect(args)
    return cmd_run(args, extra)


if __name__ == "__main__":
    sys.exit(main())
