"""matrix.json: one record per cell, plus when, where and with what the run was made."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1


def write(path: Path, meta: dict[str, Any], records: list[dict[str, Any]]) -> None:
    doc = {"schema_version": SCHEMA_VERSION, "meta": meta, "cells": records}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=False))
    tmp.replace(path)


def read(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"cannot read {path}: {exc}") from None
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise SystemExit(f"{path}: schema_version {doc.get('schema_version')!r}, expected {SCHEMA_VERSION}")
    return doc["meta"], doc["cells"]
