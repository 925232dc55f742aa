"""Between the replica and its store: rebuild one from the other, and persist results.

The replica says what changed (`Ingested.applied` / `.excluded`, the records it
took or pruned); `persist` writes exactly that, one batch per call. On start,
`open_replica` re-applies the stored ops in storage order, a causal order
(protocols/ops.md §5), so every op applies at once and the rebuilt replica has
the digest the old one had (§10).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..core.contents import Change, Retention
from ..core.errors import Rejection
from ..core.ingested import Ingested
from ..core.ops import DEFAULT_GENESIS_MS, Op, content_problem, op_id
from ..core.records import Record, decode_record
from ..core.replica import Replica
from .base import CorruptRow, Store, StoreError

NETWORK_KEY = "network"
GENESIS_KEY = "genesis"


async def bind_network(store: Store, network: str, genesis: int | None = None) -> int:
    """Tie the store to one network and its genesis on first use, and refuse any other
    after; returns the genesis (the stored one when `genesis` is None).

    Ops carry their network and are signed over it (protocols/ops.md §4): a
    store from another network would not even decode. The genesis is part of the
    network's definition (ops.md §14): ops stored under one might be invalid under
    another, so it cannot change under a store either.
    """
    held = await store.meta_get(NETWORK_KEY)
    if held is None:
        await store.meta_set(NETWORK_KEY, network)
    elif held != network:
        raise StoreError(f"this store holds network {held!r}, not {network!r}; "
                         "use the data directory made for that network")
    return await _bind_genesis(store, network, genesis, write=True)


async def _bind_genesis(store: Store, network: str, genesis: int | None, *, write: bool) -> int:
    held = await store.meta_get(GENESIS_KEY)
    if held is None:
        chosen = DEFAULT_GENESIS_MS if genesis is None else genesis
        if write:
            await store.meta_set(GENESIS_KEY, str(chosen))
        return chosen
    if genesis is not None and int(held) != genesis:
        raise StoreError(f"this store holds network {network!r} with genesis {held}, not "
                         f"{genesis} (protocols/ops.md §14: the genesis is part of the "
                         "network); set genesis back, or use a new data directory")
    return int(held)


async def open_replica(store: Store, network: str, *, now: int | None = None,
                       read_only: bool = False, genesis: int | None = None) -> Replica:
    """Build the replica a store holds. With `now` (ms), expired records are left out
    (and deleted from the store unless `read_only`). `genesis` is the network's (ops.md
    §14); None takes the one the store holds. Raises `StoreError` for a store that does
    not rebuild."""
    if read_only:
        held = await store.meta_get(NETWORK_KEY)
        if held is not None and held != network:
            raise StoreError(f"this store holds network {held!r}, not {network!r}")
        chosen = await _bind_genesis(store, network, genesis, write=False)
    else:
        chosen = await bind_network(store, network, genesis)
    replica = Replica(network, genesis=chosen)
    wires = await store.load_ops()
    for index, wire in enumerate(wires, 1):
        try:
            replica.load((wire,))
        except Rejection as exc:
            raise StoreError(f"stored op {index} (id {op_id(wire).hex()}) no longer decodes: "
                             f"{exc}") from exc
    if len(replica.ops) != len(wires):
        # The store holds exactly the held ops; any left out means the two parted.
        missing = next(op_id(w) for w in wires if op_id(w) not in replica.ops)
        raise StoreError(f"{len(wires) - len(replica.ops)} stored ops did not re-apply "
                         f"(first: {missing.hex()}); the store is inconsistent")
    expired: list[Record] = []
    for index, wire in enumerate(await store.load_records(), 1):
        try:
            record = decode_record(wire, network, now=None)
        except Rejection as exc:
            raise StoreError(f"stored record {index} no longer decodes: {exc}") from exc
        if now is not None and record.expires <= now:
            expired.append(record)
        else:
            replica.add_record(record)
    if expired and not read_only:
        await store.write((), dropped_records=expired)
    await _load_contents(store, replica, read_only)
    return replica


async def _load_contents(store: Store, replica: Replica, read_only: bool) -> None:
    """Hold the stored post contents. A content whose hash is not its header's is damage
    (refused, like a corrupt row); one whose op is not held, or whose post is retracted,
    is left over and deleted (ops.md §12.6)."""
    stale: list[Change] = []
    for n, (author, seq, oid, content) in enumerate(await store.load_contents(), 1):
        op = replica.ops.get(oid)
        if op is None or oid in replica.contents.retracted:
            stale.append((author, seq, oid, None))
            continue
        problem = content_problem(op, content)
        if problem is None and (author, seq) != (op.author, op.seq):
            # Kept, it would outlive its post's retraction: deletes find rows by place.
            problem = f"it is stored at seq {seq} of {author.hex()[:16]}, not at its op's"
        if problem is not None:
            raise CorruptRow(f"contents row {n} (op {oid.hex()}) is corrupt: {problem}; "
                             "restore the store from a backup or delete it to resync from "
                             "peers")
        replica.contents.load(oid, content)
    if stale and not read_only:
        await store.write((), contents=stale)


async def apply_retention(store: Store, replica: Replica, policy: Retention | None,
                          now: int) -> int:
    """Set the node's retention policy and drop, and delete from the store, what it no
    longer keeps (after a smaller budget, say); returns how many contents went."""
    changes = replica.retain(policy, now)
    if changes:
        await store.write((), contents=changes)
    return len(changes)


async def persist(store: Store, results: Iterable[Ingested], records: Sequence[Record] = (),
                  dropped_records: Sequence[Record] = ()) -> None:
    """Write what a run of ingests changed as one batch (one transaction).

    `results` must be in the order the replica produced them: the stored order
    of ops is the order they appear in `applied` across the results.
    """
    applied: list[Op] = []
    excluded: list[Op] = []
    contents: list[Change] = []
    for result in results:
        applied.extend(result.applied)
        excluded.extend(result.excluded)
        contents.extend(result.contents)
    await store.write(applied, excluded, records, dropped_records, contents=contents)
