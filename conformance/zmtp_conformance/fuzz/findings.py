"""Minimised reproducers on disk: one scenario YAML (the format of scenarios/, ready to become a
regression scenario) and one JSON record (the input itself, the oracle, what was seen) per finding,
under <out>/findings/<peer>/.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from .inputs import FuzzInput

REQUIREMENT = {
    "crash": "Hostile input from one connection must not end the peer's process.",
    "hang": "Hostile input must not stop the peer's application from being served.",
    "sanity": "After hostile input on one connection, a fresh connection is still served.",
    "rss": "A hostile peer must not make the implementation allocate memory it was never sent.",
    "phantom": "The application receives only messages the wire carried, each as often as it was carried.",
    "must-close": "Where the RFC says the peer MUST close the connection, it closes it.",
}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")


def scenario(inp: FuzzInput, *, peer: str, side: str, mechanism: str, oracle: str) -> dict[str, Any]:
    """The input as a scenario (scenarios/ format); CURVE boxes and broken server answers made at run
    time cannot be written as octets and are left out (the JSON record replays them)."""
    probe_side = "client" if side == "server" else "server"
    roles: dict[str, Any] = {"probe": {"side": probe_side, "raw": True}}
    roles["peer"] = {"side": side, "type": inp.socket_type}
    steps: list[Any] = []
    for kind, arg in inp.steps:
        if kind == "handshake":
            steps.append({"probe.handshake": {"type": inp.partner}})
        elif kind == "raw":
            steps.append({"probe.send_raw": arg.hex(" ")})
        elif kind == "wait":
            steps.append({"wait": arg})
    if oracle == "must-close":
        steps.append({"probe.expect_close": 2})
    else:
        steps.append({"wait": 0.2})
    return {
        "id": f"{inp.clause.split('/')[0]}/fuzz/{_slug(peer)}/{oracle}/{_slug(inp.family)}-{inp.digest()}",
        "title": f"Fuzz finding against {peer}: {oracle} after {inp.family}",
        "rfc": [inp.clause],
        "requirement": REQUIREMENT[oracle],
        "level": "MUST" if oracle == "must-close" else "interop",
        "tags": ["area:hostile", "fuzz"],
        # The runner's sanity exchange needs the peer on the server side.
        "hostile": side == "server",
        "mechanisms": [mechanism],
        "transports": ["tcp"],
        "roles": roles,
        "steps": steps,
    }


def write(
    out: Path,
    inp: FuzzInput,
    *,
    peer: str,
    side: str,
    mechanism: str,
    oracle: str,
    detail: str,
    original: FuzzInput,
    seed: int,
    index: int,
    attempts: int,
    versions: dict[str, str],
) -> Path:
    """Write the finding's YAML and JSON; returns the YAML's path."""
    folder = out / "findings" / _slug(peer)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{mechanism.lower()}-{side}-{oracle}-{_slug(inp.family)}-{inp.digest()}"
    boxes = any(kind in ("curve", "serve") for kind, _ in inp.steps)
    needs_replay = boxes or (mechanism != "NULL" and inp.handshakes)
    header = [
        f"# Found by `zmtp-conformance fuzz --peer {peer} --side {side} --mechanism {mechanism} --seed {seed}`",
        f"# (input {index}, minimised in {attempts} attempts). Oracle: {oracle}: {detail}",
        f"# Input: {inp.summary()}",
        f"# Replay it with all the oracles: zmtp-conformance fuzz --peer {peer} --replay {stem}.json",
    ]
    if needs_replay:
        header.append(
            "# Not complete as a scenario: the matrix's raw handshake is NULL only, and run-time CURVE boxes "
            "and broken server answers have no octets to write; the JSON record replays it."
        )
    body = yaml.safe_dump(
        scenario(inp, peer=peer, side=side, mechanism=mechanism, oracle=oracle), sort_keys=False, width=120
    )
    path = folder / f"{stem}.yaml"
    path.write_text("\n".join(header) + "\n" + body)
    record = {
        "peer": peer,
        "versions": versions,
        "side": side,
        "mechanism": mechanism,
        "oracle": oracle,
        "detail": detail,
        "family": inp.family,
        "seed": seed,
        "index": index,
        "attempts": attempts,
        "summary": inp.summary(),
        "octets": inp.raw_bytes().hex(),
        "input": inp.to_json(),
        "original": original.to_json(),
        "scenario": path.name,
    }
    (folder / f"{stem}.json").write_text(json.dumps(record, indent=1) + "\n")
    return path


def load(out: Path) -> dict[str, list[dict[str, Any]]]:
    """Every finding record under <out>/findings, by peer."""
    found: dict[str, list[dict[str, Any]]] = {}
    base = out / "findings"
    if not base.is_dir():
        return found
    for path in sorted(base.glob("*/*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        record["file"] = str(path.with_suffix(".yaml"))
        found.setdefault(record.get("peer", path.parent.name), []).append(record)
    return found
