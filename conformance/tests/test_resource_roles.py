"""Roles with RFC 37 Resources: a server binds tcp://host:port/<resource>, a second one shares that
host:port (`shares_port_with`), a client asks for a resource by connecting to it, and a raw role checks
the peer's metadata (`peer_properties`). Only peers whose hello says `resource: true` play them."""

from __future__ import annotations

import pytest
from scenario_samples import run_one, write

from zmtp_conformance.scenario import ScenarioError, load_file
from zmtp_conformance.vocabulary import Outcome

SHARED = """\
id: 99/test/shared
title: two services at one port
rfc: ["37/ZMTP#new-the-resource-property"]
requirement: each client reaches the service it asks for
transports: [tcp]
roles:
  echo: {side: server, type: REP, resource: echo}
  sink: {side: server, type: PULL, resource: sink, shares_port_with: echo}
  asker: {side: client, type: REQ, resource: echo, connect: [echo]}
  pusher: {side: client, type: PUSH, resource: sink, connect: [sink]}
steps:
  - asker.send: [ping]
  - echo.expect: [ping]
  - echo.send: [pong]
  - asker.expect: [pong]
  - pusher.send: [data]
  - sink.expect: [data]
"""

ASKS = """\
id: 99/test/asks
title: a client asks for a resource
rfc: ["37/ZMTP#new-the-resource-property"]
requirement: the client's READY carries the resource it connected to
transports: [tcp]
roles:
  server: {side: server, raw: true}
  client: {side: client, type: DEALER, resource: a/b}
steps:
  - server.handshake: {type: ROUTER, peer_properties: {resource: a/b}}
  - client.send: [hello]
  - server.expect: [hello]
"""


@pytest.mark.parametrize(
    "base,change,where,message",
    [
        (SHARED, ("transports: [tcp]\n", ""), "transports", "over tcp only"),
        (SHARED, ("transports: [tcp]", "transports: [tcp, ipc]"), "transports", "over tcp only"),
        (
            SHARED,
            ("type: PULL, resource: sink, shares_port_with: echo", "type: PULL, shares_port_with: echo"),
            "roles.sink",
            "shares_port_with is for a server role with a resource",
        ),
        (
            SHARED,
            ("shares_port_with: echo}", "shares_port_with: asker}"),
            "roles.sink",
            "'asker' is not an earlier peer server role",
        ),
        (
            SHARED.replace("  sink: {side: server, type: PULL, resource: sink, shares_port_with: echo}\n", "").replace(
                "  echo: {side: server", "  sink: {side: server, type: PULL, resource: sink, shares_port_with: echo}\n"
                "  echo: {side: server"
            ),
            ("", ""),
            "roles.sink",
            "'echo' is not an earlier peer server role",
        ),
        (ASKS, ("server: {side: server, raw: true}", "server: {side: server, raw: true, resource: x}"),
         "roles.server", "a raw role asks for a resource in its handshake"),
        (ASKS, ("resource: a/b}", "resource: a//b}"), "roles.client.resource", "does not match"),
    ],
)
def test_a_misused_resource_is_a_load_error_naming_the_place(tmp_path, base, change, where, message):
    path = write(tmp_path, base.replace(*change))
    with pytest.raises(ScenarioError) as err:
        load_file(path)
    assert where in str(err.value) and message in str(err.value) and str(path) in str(err.value), str(err.value)


@pytest.mark.parametrize("mechanism", ["NULL", "CURVE"])
def test_two_services_share_one_port_and_each_client_reaches_its_own(tmp_path, mechanism):
    r = run_one(load_file(write(tmp_path, SHARED)), mechanism=mechanism)
    assert r.outcome == Outcome.PASSED, r.reason + "\n" + r.transcript
    binds = [ln.split(" bind ", 1)[1].strip() for ln in r.transcript.splitlines() if " bind " in ln]
    assert len(binds) == 2 and binds[0].endswith("/echo") and binds[1].endswith("/sink")
    assert binds[0].rsplit("/", 1)[0] == binds[1].rsplit("/", 1)[0]  # one host:port


def test_a_swapped_resource_sends_the_message_elsewhere_and_fails(tmp_path):
    # The pusher asks for echo instead: its message never reaches the PULL.
    text = SHARED.replace("type: PUSH, resource: sink", "type: PUSH, resource: echo")
    r = run_one(load_file(write(tmp_path, text)))
    assert r.outcome == Outcome.FAILED and r.action == "expect" and r.step == "5", r.reason


def test_the_raw_server_reads_the_resource_the_client_asked_for(tmp_path):
    r = run_one(load_file(write(tmp_path, ASKS)), server="raw")
    assert r.outcome == Outcome.PASSED, r.reason + "\n" + r.transcript
    wrong = ASKS.replace("peer_properties: {resource: a/b}", "peer_properties: {Resource: a/c}")
    r = run_one(load_file(write(tmp_path, wrong)), server="raw")
    assert r.outcome == Outcome.FAILED and "lacks Resource: a/c" in r.reason, r.reason
    assert r.seen and "resource: a/b" in r.seen


def test_a_peer_that_does_not_declare_resources_is_unsupported(tmp_path):
    pytest.importorskip("zmq")
    r = run_one(load_file(write(tmp_path, ASKS)), server="raw", client="libzmq")
    assert r.outcome == Outcome.UNSUPPORTED and "resource: true" in r.reason, r.reason
