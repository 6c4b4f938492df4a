"""Pairs with no ZMTP version in common: a 2.0-only peer and a ZMTP 3 peer that declares it does
not downgrade have nothing to test, so their cells are unsupported, not failed; undeclared, they run."""

from __future__ import annotations

import pytest

from zmtp_conformance.runner import no_common_version

OLD = {"zmtp": ["2.0"]}


@pytest.mark.parametrize("new", [{"zmtp": ["3.0"], "downgrades": []}, {"downgrades": ["1.0"]}])
def test_a_2_0_peer_and_a_peer_that_does_not_downgrade_to_it_share_nothing(new):
    why = no_common_version("jeromq-0.3.6", OLD, "zmq4", new)
    assert why and "jeromq-0.3.6 speaks ZMTP 2.0 only and zmq4 does not downgrade" in why and "RFC 23" in why
    # Either order: the server may be the old peer or the new one.
    assert no_common_version("zmq4", new, "jeromq-0.3.6", OLD) == why


@pytest.mark.parametrize(
    "one, other",
    [
        (OLD, {"downgrades": ["1.0", "2.0"]}),  # impl, libzmq
        (OLD, {}),  # not declared: the cell runs and its outcome says
        (OLD, OLD),  # two 2.0 peers
        ({"zmtp": ["3.0"], "downgrades": []}, {}),  # two ZMTP 3 peers
    ],
)
def test_peers_with_a_version_in_common_or_undeclared_are_left_to_run(one, other):
    assert no_common_version("a", one, "b", other) is None
