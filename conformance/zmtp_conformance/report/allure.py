"""The Allure HTML report of a run, rendered offline with Allure 3 on Node.js.

Allure 3 is an npm package (`allure`), pinned with its lock file in
conformance/allure/ and installed there with `npm ci` on first use, so no
Java and no global install is needed. The report gets the run's
description (when, where, with which peers and versions) from matrix.json
as Allure "variables", shown at the top of the report.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from . import allure_results, allure_subset

HERE = Path(__file__).resolve().parents[2] / "allure"
CLI = HERE / "node_modules" / ".bin" / "allure"
NODE_MAJOR = 20  # Allure 3's oldest supported Node.js
# Allure 3 writes a Google Analytics tag into every index.html; a report opened from disk or from a CI
# artefact makes no request off the machine.
ANALYTICS = re.compile(
    r"<script async src=\"https://www\.googletagmanager\.com/[^\"]*\"></script>\s*"
    r"<script>\s*window\.dataLayer[^<]*</script>"
)


class ReportError(Exception):
    """The report cannot be made; the message says what to install or fix."""


def _node_version() -> int | None:
    node = shutil.which("node")
    if node is None:
        return None
    out = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    try:
        return int(out.lstrip("v").split(".")[0])
    except ValueError:
        return None


def ensure_cli() -> Path:
    """The pinned Allure command line, installed into conformance/allure on first use."""
    major = _node_version()
    if major is None or shutil.which("npm") is None:
        raise ReportError(
            "the Allure report needs Node.js and npm (Allure 3 runs on Node.js, no Java): "
            "on Debian `apt-get install nodejs npm`, then run this again"
        )
    if major < NODE_MAJOR:
        raise ReportError(f"Allure 3 needs Node.js {NODE_MAJOR} or newer; this machine has Node.js {major}")
    if CLI.exists():
        return CLI
    proc = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=HERE, capture_output=True, text=True
    )
    if proc.returncode != 0 or not CLI.exists():
        raise ReportError(f"installing Allure with npm in {HERE} failed: {proc.stderr.strip()[-800:]}")
    return CLI


def variables(meta: dict[str, Any]) -> dict[str, str]:
    """What the report says about the run it shows."""
    out = {
        "generated": str(meta.get("generated", "")),
        "project version": str(meta.get("project_version", "")),
        "backend": str(meta.get("backend", "")),
        "wall time": f"{meta.get('wall_time', '')} s",
    }
    m = meta.get("machine") or {}
    out["machine"] = (
        f"{m.get('node', '')} {m.get('platform', '')}, {m.get('cpus', '')} cpus, python {m.get('python', '')}"
    )
    for peer, vers in sorted((meta.get("peer_versions") or {}).items()):
        out[f"peer {peer}"] = ", ".join(f"{k} {v}" for k, v in vers.items())
    if meta.get("shard"):
        out["shard"] = str(meta["shard"])
    return out


def generate(
    results: Path,
    output: Path,
    meta: dict[str, Any] | None = None,
    single_file: bool = False,
    name: str = "",
    all_cells: bool = False,
) -> tuple[Path, allure_subset.Subset | None]:
    """Render `results` (an allure-results folder) into `output`: the cells a reader needs
    (allure_subset), or with `all_cells` every cell. Returns the report's index.html and, unless
    `all_cells`, what the subset holds."""
    if not results.is_dir() or not any(results.glob("*-result.json")):
        raise ReportError(f"{results} holds no Allure results; run the matrix first (zmtp-conformance run)")
    cli = ensure_cli()
    if all_cells:
        return _render(cli, results, output, variables(meta or {}), single_file, name), None
    with tempfile.TemporaryDirectory(prefix="zmtp-allure-subset-") as tmp:
        try:
            subset = allure_subset.select(results, Path(tmp))
        except ValueError as exc:
            raise ReportError(str(exc)) from exc
        index = _render(cli, Path(tmp), output, {**variables(meta or {}), **subset.variables()}, single_file, name)
    return index, subset


def _render(cli: Path, results: Path, output: Path, shown: dict[str, str], single_file: bool, name: str) -> Path:
    output = output.resolve()
    config = {
        "name": name or "ZMTP conformance",
        "output": str(output),
        "variables": shown,
        # Deviations by peer, unsupported cells: each a category of its own (report/allure_results.py).
        "categories": allure_results.categories(),
        "plugins": {
            "awesome": {
                "options": {
                    "reportName": name or "ZMTP conformance",
                    "singleFile": single_file,
                    # The tree a reader walks: RFC, then pattern or area, then clause (set per cell by the plugin).
                    "groupBy": ["epic", "feature", "story"],
                }
            }
        },
    }
    with tempfile.TemporaryDirectory(prefix="zmtp-allure-") as tmp:
        # Allure reads its configuration from the working directory.
        Path(tmp, "allurerc.json").write_text(json.dumps(config))
        if output.exists():
            shutil.rmtree(output)
        env = {**os.environ, "NO_COLOR": "1"}
        proc = subprocess.run(
            [str(cli), "generate", str(results.resolve())], cwd=tmp, capture_output=True, text=True, env=env
        )
    index = output / "index.html"
    if proc.returncode != 0 or not index.exists():
        raise ReportError(f"allure generate failed ({proc.returncode}): {(proc.stderr or proc.stdout).strip()[-800:]}")
    strip_analytics(index)
    return index


def strip_analytics(index: Path) -> bool:
    """Removes Allure's analytics tag from a report's index.html; whether there was one."""
    text = index.read_text(encoding="utf-8")
    cleaned, n = ANALYTICS.subn("", text)
    if n:
        index.write_text(cleaned, encoding="utf-8")
    return bool(n)
