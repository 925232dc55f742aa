"""Between the replica and its store: rebuild one from the other, and persist results.

The replica says what changed (`Ingested.applied` / `.excluded`, the records it
took or pruned); `persist` writes exactly that, one batch per call. On start,
`open_replica` re-applies the stored ops in storage order, a causal order
(protocols/ops.md §5), so every op applies at once and the rebuilt replica has
the digest the old one had (§10).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..core.errors import Rejection
from ..core.ops import Op, op_id
from ..core.records import Record, decode_record
from ..core.replica import Ingested, Replica
from .base import Store, StoreError

NETWORK_KEY = "network"


async def bind_network(store: Store, network: str) -> None:
    """Tie the store to one network on first use, and refuse any other network after.

    Ops carry their network and are signed over it (protocols/ops.md §4): a
    store from another network would not even decode.
    """
    held = await store.meta_get(NETWORK_KEY)
    if held is None:
        await store.meta_set(NETWORK_KEY, network)
    elif held != network:
        raise StoreError(f"this store holds network {held!r}, not {network!r}; "
                         "use the data directory made for that network")


async def open_replica(store: Store, network: str, *, now: int | None = None,
                       read_only: bool = False) -> Replica:
    """Build the replica a store holds. With `now` (ms), expired records are left out
    (and deleted from the store unless `read_only`). Raises `StoreError` for a store
    that does not rebuild."""
    if read_only:
        held = await store.meta_get(NETWORK_KEY)
        if held is not None and held != network:
            raise StoreError(f"this store holds network {held!r}, not {network!r}")
    else:
        await bind_network(store, network)
    replica = Replica(network)
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
    return replica


async def persist(store: Store, results: Iterable[Ingested], records: Sequence[Record] = (),
                  dropped_records: Sequence[Record] = ()) -> None:
    """Write what a run of ingests changed as one batch (one transaction).

    `results` must be in the order the replica produced them: the stored order
    of ops is the order they appear in `applied` across the results.
    """
    applied: list[Op] = []
    excluded: list[Op] = []
    for result in results:
        applied.extend(result.applied)
        excluded.extend(result.excluded)
    await store.write(applied, excluded, records, dropped_records)
