"""A raw client that connects at its own step (`deferred: true` + `connect`), when the order of
connections is what a scenario is about (31/pair/second-peer-refused)."""

from __future__ import annotations

import pytest
from scenario_samples import write

from zmtp_conformance.scenario import ScenarioError, load_file

BASE = """\
id: 99/test/deferred
title: a deferred intruder
rfc: ["31/EXPAIR"]
requirement: a PAIR takes no second peer while it has one
roles:
  server: {side: server, type: PAIR}
  client: {side: client, type: PAIR}
  intruder: {side: client, raw: true, deferred: true}
steps:
  - client.send: [first]
  - server.expect: [first]
  - intruder.connect: true
  - intruder.send_raw: {greeting: {minor: 1}}
"""


def test_a_deferred_raw_client_loads_with_its_connect_step(tmp_path):
    sc = load_file(write(tmp_path, BASE))
    assert sc.roles["intruder"].deferred and not sc.roles["client"].deferred
    assert [s.action for s in sc.steps if s.role == "intruder"] == ["connect", "send_raw"]


@pytest.mark.parametrize(
    "change,where,message",
    [
        (
            ("client: {side: client, type: PAIR}", "client: {side: client, type: PAIR, deferred: true}"),
            "roles.client.deferred",
            "only a raw client can defer",
        ),
        (("  - intruder.connect: true\n", ""), "roles.intruder.deferred", "first step must be intruder.connect"),
        (
            ("raw: true, deferred: true}", "raw: true}"),
            "steps[2]",
            "'intruder' connects at set-up; give the role `deferred: true`",
        ),
    ],
)
def test_a_misused_deferral_is_a_load_error_naming_the_place(tmp_path, change, where, message):
    path = write(tmp_path, BASE.replace(*change))
    with pytest.raises(ScenarioError) as err:
        load_file(path)
    assert where in str(err.value) and message in str(err.value) and str(path) in str(err.value)
