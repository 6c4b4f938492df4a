"""Merging the report folders of several shards (or machines) of one run into one.

Each folder holds a matrix.json, and possibly allure-results/ and captures/.
They merge only when they ran the same scenario set (the same scenario
files, the same selection) against the same peers: the fingerprint in each
matrix.json's meta says so. A cell found in two folders is an error, not a
silent choice.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from . import findings, html, jsonfile


class MergeError(Exception):
    """The folders cannot be merged; the message names them and says why."""


def merge(sources: list[Path], out: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if not sources:
        raise MergeError("nothing to merge: give the report folders of the shards")
    runs = []
    for d in sources:
        path = d / "matrix.json"
        if not path.exists():
            raise MergeError(f"{d} has no matrix.json: is it a report folder of `zmtp-conformance run`?")
        runs.append((d, *jsonfile.read(path)))
    first_dir, first_meta, _ = runs[0]
    for d, meta, _ in runs[1:]:
        for key, what in (("scenario_set", "scenario set"), ("peers", "peers"), ("backend", "backend")):
            if meta.get(key) != first_meta.get(key):
                raise MergeError(
                    f"{d} and {first_dir} ran different {what}s ({_describe(meta.get(key))} vs "
                    f"{_describe(first_meta.get(key))}): only shards of one run merge"
                )
    cells: dict[str, dict[str, Any]] = {}
    origin: dict[str, Path] = {}
    for d, _, records in runs:
        for rec in records:
            if rec["id"] in cells:
                raise MergeError(f"cell {rec['id']} is in both {origin[rec['id']]} and {d}")
            cells[rec["id"]] = rec
            origin[rec["id"]] = d
    out.mkdir(parents=True, exist_ok=True)
    versions: dict[str, dict[str, str]] = {}
    for _, meta, _ in runs:
        for peer, v in (meta.get("peer_versions") or {}).items():
            versions.setdefault(peer, v)
    meta = {
        **{k: v for k, v in first_meta.items() if k not in ("shard", "generated", "wall_time")},
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "wall_time": max(float(m.get("wall_time") or 0) for _, m, _ in runs),
        "peer_versions": versions,
        "merged_from": [
            {"dir": str(d), "shard": m.get("shard"), "generated": m.get("generated"), "machine": m.get("machine")}
            for d, m, _ in runs
        ],
    }
    records = sorted(cells.values(), key=lambda r: r["id"])
    jsonfile.write(out / "matrix.json", meta, records)
    html.write(out / "matrix.html", meta, records)
    # matrix.html links the findings page; the merged run's is the one a maintainer reads.
    findings.write_html(out / "findings.html", findings.collect(records, meta), meta, records)
    for d, _, _ in runs:
        _copy_tree(d / "allure-results", out / "allure-results")
        _copy_tree(d / "captures", out / "captures", skip=("curve-keylog.txt",))
        log = d / "captures" / "curve-keylog.txt"
        if log.exists():
            with open(out / "captures" / "curve-keylog.txt", "a") as f:
                f.write(log.read_text())
    return meta, records


def _copy_tree(src: Path, dst: Path, skip: tuple[str, ...] = ()) -> None:
    if not src.is_dir() or src.resolve() == dst.resolve():
        return
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.is_file() and f.name not in skip:
            shutil.copy2(f, dst / f.name)


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return f"{value.get('scenarios', '?')} scenarios, {str(value.get('sha256', '?'))[:12]}"
    return repr(value)
