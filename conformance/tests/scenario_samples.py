"""Scenario texts shared by the harness tests."""

from __future__ import annotations

from pathlib import Path

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
