"""Scenario texts shared by the harness tests, and running one as a single cell."""

from __future__ import annotations

from pathlib import Path
from typing import Any

GOOD = """\
id: 99/test/ok
title: a test scenario
rfc: ["37/ZMTP#framing"]
requirement: something that must hold for this test
roles:
  server: {side: server, type: PULL}
  client: {side: client, type: PUSH}
steps:
  - client.send: [hi]
  - server.expect: [hi]
"""


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def push_pull(name: str, steps: str) -> str:
    """A scenario text: a PULL server and a PUSH client that reconnects quickly, over tcp, with
    `steps` (YAML list lines); `name` goes into its id and title."""
    return f"""\
id: 99/test/{name}
title: {name} under test
rfc: ["37/ZMTP#error-handling"]
requirement: whatever the steps below require of the peers
level: interop
transports: [tcp]
roles:
  server: {{side: server, type: PULL}}
  client: {{side: client, type: PUSH, options: {{reconnect_ivl: 0.1}}}}
steps:
{steps}"""


def run_one(sc: Any, server: str = "impl", client: str = "impl", transport: str = "tcp", mechanism: str = "NULL") -> Any:
    """One cell of scenario `sc` with the local agents, its pool closed afterwards: the CellResult."""
    import asyncio

    from zmtp_conformance.cells import Cell
    from zmtp_conformance.peers import AgentPool, load_registry
    from zmtp_conformance.runner import run_cell

    async def go() -> Any:
        pool = AgentPool(load_registry())
        try:
            return await run_cell(Cell(sc, server, client, transport, mechanism), pool, [])
        finally:
            await pool.close()

    return asyncio.run(go())
