"""Shrinking a failing input: fewest steps, then fewest octets, while the same oracle still fails.

Greedy, in the manner of delta debugging: drop each step in turn, then cut chunks out of each raw
write, halving the chunk size down to one octet. Every attempt is a real run against the peer, so the
number of attempts is bounded.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace

from .inputs import FuzzInput

Check = Callable[[FuzzInput], Awaitable[bool]]


async def minimise(inp: FuzzInput, still_fails: Check, max_runs: int = 40) -> tuple[FuzzInput, int]:
    """The smallest input found that `still_fails`, and how many attempts it took."""
    runs = 0
    best = inp

    async def attempt(candidate: FuzzInput) -> bool:
        nonlocal runs
        if runs >= max_runs or not candidate.steps:
            return False
        runs += 1
        return await still_fails(candidate)

    # Steps: waits and whole writes that the failure does not need.
    i = len(best.steps) - 1
    while i >= 0 and runs < max_runs:
        if len(best.steps) > 1:
            candidate = replace(best, steps=best.steps[:i] + best.steps[i + 1 :])
            if await attempt(candidate):
                best = candidate
        i -= 1
    # Octets: chunks of each write.
    for index in range(len(best.steps)):
        kind, data = best.steps[index]
        if kind != "raw":
            continue
        chunk = max(len(data) // 2, 1)
        while chunk >= 1 and runs < max_runs:
            start = 0
            while start < len(data) and runs < max_runs:
                smaller = data[:start] + data[start + chunk :]
                if not smaller:
                    start += chunk
                    continue
                steps = list(best.steps)
                steps[index] = ("raw", smaller)
                candidate = replace(best, steps=steps)
                if await attempt(candidate):
                    best, data = candidate, smaller
                else:
                    start += chunk
            if chunk == 1:
                break
            chunk //= 2
    return best, runs
