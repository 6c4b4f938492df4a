"""The pause fault on the docker backend: the freezer's transient refusal is the harness's
machine, not the peer, and is tried again; anything else comes back as it was."""

from __future__ import annotations

import docker.errors
import pytest

from zmtp_conformance.containers.agent import FREEZE_ATTEMPTS, freeze

BUSY = "Cannot pause container 37f7: OCI runtime pause failed: unable to freeze: unknown"


class Container:
    def __init__(self, refusals: list[str]) -> None:
        self.refusals = refusals
        self.calls = 0
        self.paused = False

    def pause(self) -> None:
        self.calls += 1
        if self.refusals:
            raise docker.errors.APIError(self.refusals.pop(0))
        self.paused = True


def test_a_freezer_that_gives_up_once_is_asked_again():
    c = Container([BUSY])
    freeze(c)
    assert c.paused and c.calls == 2


def test_a_freezer_that_always_gives_up_is_reported_after_the_last_attempt():
    c = Container([BUSY] * (FREEZE_ATTEMPTS + 1))
    with pytest.raises(docker.errors.APIError, match="unable to freeze"):
        freeze(c)
    assert c.calls == FREEZE_ATTEMPTS and not c.paused


def test_any_other_refusal_is_not_tried_again():
    c = Container(["Container 37f7 is not running"])
    with pytest.raises(docker.errors.APIError, match="not running"):
        freeze(c)
    assert c.calls == 1
