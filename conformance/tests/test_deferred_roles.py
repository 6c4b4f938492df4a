"""Deferred roles: a raw client that connects at its own step (`deferred: true` + `connect`), when
the order of connections is what a scenario is about (31/pair/second-peer-refused), and a peer
server that binds at its own step (`deferred: true` + `bind`), its clients having connected to an
endpoint where nothing listened yet (37/socket-semantics/connect-before-bind)."""

from __future__ import annotations

import pytest
from scenario_samples import run_one, write

from zmtp_conformance.scenario import ScenarioError, load_file
from zmtp_conformance.vocabulary import Outcome

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

LATE = """\
id: 99/test/late-server
title: a server that binds late
rfc: ["37/ZMTP#socket-semantics"]
requirement: a connect to an endpoint where nothing listens yet succeeds, and the message gets through later
roles:
  server: {side: server, type: PULL, deferred: true}
  client: {side: client, type: PUSH, options: {reconnect_ivl: 0.1}}
steps:
  - client.send: [early]
  - wait: 0.2
  - server.bind: true
  - server.expect: {message: [early], timeout: 3}
"""


def test_a_deferred_raw_client_loads_with_its_connect_step(tmp_path):
    sc = load_file(write(tmp_path, BASE))
    assert sc.roles["intruder"].deferred and not sc.roles["client"].deferred
    assert [s.action for s in sc.steps if s.role == "intruder"] == ["connect", "send_raw"]


@pytest.mark.parametrize(
    "base,change,where,message",
    [
        (
            BASE,
            ("client: {side: client, type: PAIR}", "client: {side: client, type: PAIR, deferred: true}"),
            "roles.client.deferred",
            "only a raw client (which then connects at its connect step) or a peer server",
        ),
        (BASE, ("  - intruder.connect: true\n", ""), "roles.intruder.deferred", "first step must be intruder.connect"),
        (
            BASE,
            ("raw: true, deferred: true}", "raw: true}"),
            "steps[2]",
            "'intruder' connects at set-up; give the role `deferred: true`",
        ),
        (LATE, ("  - server.bind: true\n", ""), "roles.server.deferred", "first step must be server.bind"),
        (
            LATE,
            ("type: PULL, deferred: true}", "type: PULL}"),
            "steps[2]",
            "'server' binds at set-up; give the role `deferred: true` to bind here",
        ),
        (
            LATE,
            ("server: {side: server, type: PULL, deferred: true}", "server: {side: server, raw: true, deferred: true}"),
            "roles.server.deferred",
            "only a raw client",
        ),
    ],
)
def test_a_misused_deferral_is_a_load_error_naming_the_place(tmp_path, base, change, where, message):
    path = write(tmp_path, base.replace(*change))
    with pytest.raises(ScenarioError) as err:
        load_file(path)
    assert where in str(err.value) and message in str(err.value) and str(path) in str(err.value)




def test_a_deferred_peer_server_loads_with_its_bind_step(tmp_path):
    sc = load_file(write(tmp_path, LATE))
    assert sc.roles["server"].deferred and sc.roles["server"].deferred_step == "bind"
    assert [s.action for s in sc.steps if s.role == "server"] == ["bind", "expect"]




@pytest.mark.parametrize("transport", ["tcp", "ipc"])
def test_clients_connect_where_nothing_listens_and_the_server_binds_there_later(tmp_path, transport):

    r = run_one(load_file(write(tmp_path, LATE)), transport=transport)
    assert r.outcome == Outcome.PASSED, r.reason + "\n" + r.transcript
    lines = r.transcript.splitlines()
    reserved = next(i for i, ln in enumerate(lines) if " reserve " in ln)
    connected = next(i for i, ln in enumerate(lines) if " connect " in ln)
    bound = next(i for i, ln in enumerate(lines) if " bind " in ln)
    assert reserved < connected < bound
    # The server bound exactly the endpoint its client had been given.
    endpoint = lines[reserved].split("reserve", 1)[1].split(",")[0].strip()
    assert endpoint in lines[bound] and endpoint in lines[connected]


def test_a_second_bind_fails_the_cell(tmp_path):

    r = run_one(load_file(write(tmp_path, LATE + "  - server.bind: true\n")))
    assert r.outcome == Outcome.FAILED and "server is bound already" in r.reason, r.reason
