"""send_until_full and expect_numbered's sent_by/must_lose: the checks turn red when the queue does not do what the step says."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from scenario_samples import run_one

from zmtp_conformance.scenario import load_all
from zmtp_conformance.vocabulary import Outcome


def run_changed(sid: str, action: str, change: dict[str, Any]):
    """Run `sid` impl against impl with the argument of its `action` step changed."""
    (sc,) = [s for s in load_all() if s.id == sid]
    steps = [replace(st, arg={**st.arg, **change}) if st.action == action else st for st in sc.steps]
    assert steps != sc.steps, f"{sid} has no {action} step"
    return run_one(replace(sc, steps=steps))


def test_a_queue_that_drops_is_not_full():
    r = run_changed("29/pub/drops-when-queue-full", "send_until_full", {"full": True})
    assert r.outcome == Outcome.FAILED and r.action == "send_until_full", r.reason
    assert "took 400 of at most 400" in r.reason


def test_a_queue_that_blocks_is_full():
    r = run_changed("30/push/blocks-when-queue-full", "send_until_full", {"full": False})
    assert r.outcome == Outcome.FAILED and r.action == "send_until_full", r.reason
    assert "would block or was refused" in r.reason


def test_the_count_is_held_to_its_bounds():
    r = run_changed("30/push/blocks-when-queue-full", "send_until_full", {"at_most": 1})
    assert r.outcome == Outcome.FAILED and "queue took" in r.reason, r.reason


def test_must_lose_fails_when_everything_arrived():
    r = run_changed("30/push/blocks-when-queue-full", "expect_numbered", {"must_lose": True})
    assert r.outcome == Outcome.FAILED and r.action == "expect_numbered", r.reason
    assert "received all" in r.reason
