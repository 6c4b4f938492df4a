"""matrix.json: one record per cell, plus when, where and with what the run was made."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schema" / "matrix.schema.json"


def schema() -> dict[str, Any]:
    """matrix.json's schema, its enumerations filled from the vocabulary (outcomes, levels, ...)."""
    from .. import vocabulary

    doc = json.loads(SCHEMA_PATH.read_text())
    props = doc["$defs"]["cell"]["properties"]
    props["outcome"]["enum"] = [o.value for o in vocabulary.Outcome]
    props["level"]["enum"] = list(vocabulary.LEVELS)
    props["transport"]["enum"] = list(vocabulary.TRANSPORTS)
    props["mechanism"]["enum"] = list(vocabulary.MECHANISMS)
    return doc


def problems(doc: dict[str, Any], most: int = 5) -> list[str]:
    """Where a matrix.json document departs from its schema (empty when it conforms)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema())
    out = []
    for err in validator.iter_errors(doc):
        where = "/".join(str(p) for p in err.absolute_path)
        out.append(f"{where or '(top)'}: {err.message}")
        if len(out) >= most:
            break
    return out


def write(path: Path, meta: dict[str, Any], records: list[dict[str, Any]]) -> None:
    # The cells that needed a rerun, listed in the run's metadata whoever wrote it (a run or a
    # merge of shards), so that `zmtp-conformance flaky` can show the trend over several runs.
    # Apart from them, the cells that passed only on a rerun after a declared stall (peers.yaml
    # known_stalls), each with the stall's id: an upstream bug's rate, not the harness's flakiness.
    meta = {
        **meta,
        "flaky": sorted(r["id"] for r in records if r.get("flaky")),
        "stalls": {r["id"]: r["stall"] for r in sorted(records, key=lambda r: r["id"]) if _passed_after_stall(r)},
    }
    doc = {"schema_version": SCHEMA_VERSION, "meta": meta, "cells": records}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=False))
    tmp.replace(path)


def _passed_after_stall(record: dict[str, Any]) -> bool:
    return bool(record.get("stall")) and record["outcome"] == "passed"


def read(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"cannot read {path}: {exc}") from None
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise SystemExit(f"{path}: schema_version {doc.get('schema_version')!r}, expected {SCHEMA_VERSION}")
    bad = problems(doc)
    if bad:
        raise SystemExit(f"{path} is not a matrix.json this version writes: " + "; ".join(bad))
    return doc["meta"], doc["cells"]
