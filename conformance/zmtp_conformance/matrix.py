"""The matrix: every scenario x every applicable pairing of peers x transport x mechanism."""

from __future__ import annotations

import functools

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


def _spec(spec: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in spec.split("/"))
    except ValueError:
        raise ValueError(f"--shard expects i/n such as 2/4, got {spec!r}") from None
    if not 1 <= i <= n:
        raise ValueError(f"--shard {spec}: i must be between 1 and n")
    return i, n


def pairing(cell: Cell) -> tuple[str, ...]:
    """The peers a cell starts, raw aside: ('impl', 'libzmq-4.3.5'), or ('impl',) against raw or itself."""
    return tuple(sorted({cell.server, cell.client} - {RAW}))


def pairings(peers: list[str], pair_with: set[str] | None = None) -> list[tuple[str, ...]]:
    """Every pairing key the matrix of these peers can have (as `pairing` gives them), in a
    stable order; with `pair_with`, only those where one side is one of its peers (a peer's cells
    against raw always run)."""
    keys = {(p,) for p in peers}
    for a in peers:
        for b in peers:
            if a < b and (not pair_with or {a, b} & pair_with):
                keys.add((a, b))
    return sorted(keys)


def deal(keys: list[tuple[str, ...]], n: int, pair_with: set[str] | None = None) -> list[list[tuple[str, ...]]]:
    """Pairing keys dealt to n shards so that each shard starts few peers: the keys are grouped
    by the peer they exist for (the side that is not one of `pair_with`, which every shard may
    start), and whole groups go, largest first, to the shard with the fewest keys so far."""
    return [list(s) for s in _deal(tuple(keys), n, frozenset(pair_with or ()))]


@functools.lru_cache(maxsize=8)
def _deal(
    keys: tuple[tuple[str, ...], ...], n: int, anchors: frozenset[str]
) -> tuple[tuple[tuple[str, ...], ...], ...]:
    # Cached: the plugin shards each scenario file's cells against the same keys.
    if not anchors:
        # Every pairing: grouping by peer would give the last peer's group every pairing of it
        # and leave shards empty once there are more shards than peers. Runs of keys in sorted
        # order, as even as can be, keep the balance; a run is one peer's pairings with a stretch
        # of the others, so a shard still starts a few peers, not all.
        ordered = sorted(keys)
        size, extra = divmod(len(ordered), n)
        cuts = [i * size + min(i, extra) for i in range(n + 1)]
        return tuple(tuple(ordered[cuts[i] : cuts[i + 1]]) for i in range(n))
    groups: dict[str, list[tuple[str, ...]]] = {}
    for key in keys:
        others = [p for p in key if p not in anchors]
        groups.setdefault(max(others or key), []).append(key)
    shards: list[list[tuple[str, ...]]] = [[] for _ in range(n)]
    for _, group in sorted(groups.items(), key=lambda g: (-len(g[1]), g[0])):
        min(shards, key=len).extend(group)
    return tuple(tuple(s) for s in shards)


def shard(
    cells: list[Cell], spec: str | None, keys: list[tuple[str, ...]] | None = None, pair_with: set[str] | None = None
) -> list[Cell]:
    """`i/n`: the i-th of n interleaved slices (1-based), stable for a given scenario set.

    With `keys` (from `pairings`), whole pairings are dealt out instead of cells (`deal`), so
    that a shard starts few peers: on a CI runner, that is few images to load."""
    if not spec:
        return cells
    i, n = _spec(spec)
    if keys is not None:
        mine = set(deal(keys, n, pair_with)[i - 1])
        return [c for c in cells if pairing(c) in mine]
    ordered = sorted(cells, key=lambda c: c.id)
    return [c for k, c in enumerate(ordered) if k % n == i - 1]


def shard_peers(keys: list[tuple[str, ...]], spec: str, pair_with: set[str] | None = None) -> list[str]:
    """The peers shard `spec` of a matrix sharded by pairing starts."""
    i, n = _spec(spec)
    return sorted({p for key in deal(keys, n, pair_with)[i - 1] for p in key})
