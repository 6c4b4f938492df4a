"""The matrix: every scenario x every applicable pairing of peers x transport x mechanism."""

from __future__ import annotations

from .cells import RAW, Cell
from .scenario import Scenario


def expand(scenarios: list[Scenario], peers: list[str]) -> list[Cell]:
    """Cells for the peers available here. A side played only by raw roles is "raw"."""
    cells = []
    for sc in scenarios:
        sides = sc.sides()
        choices = {}
        for side in ("server", "client"):
            if side not in sides:
                choices[side] = [RAW]  # no role on that side: nothing to pair
            elif sides[side]:
                choices[side] = [RAW]
            else:
                allowed = sc.peers.get(side)
                choices[side] = [p for p in peers if allowed is None or p in allowed]
        for server in choices["server"]:
            for client in choices["client"]:
                for transport in sc.transports:
                    for mechanism in sc.mechanisms:
                        cells.append(Cell(sc, server, client, transport, mechanism))
    return cells


def shard(cells: list[Cell], spec: str | None) -> list[Cell]:
    """`i/n`: the i-th of n interleaved slices (1-based), stable for a given scenario set."""
    if not spec:
        return cells
    try:
        i, n = (int(x) for x in spec.split("/"))
    except ValueError:
        raise ValueError(f"--shard expects i/n such as 2/4, got {spec!r}") from None
    if not 1 <= i <= n:
        raise ValueError(f"--shard {spec}: i must be between 1 and n")
    ordered = sorted(cells, key=lambda c: c.id)
    return [c for k, c in enumerate(ordered) if k % n == i - 1]
