"""The replica digest: a hash over every feed's entry (its head and fork proofs) and
every record id, equal on two replicas exactly when they hold the same ops and records
(protocols/ops.md §10). Entries are encoded lazily: ingest only marks a feed stale.

A mixin of `Replica` (replica.py), which owns every attribute named below.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .records import Record
    from .replica import Feed

DIGEST_DOMAIN = b"liberation-node/digest/v1"


class ReplicaDigest:
    """Feed entries and the digests over them and over the records."""

    # Owned and set by Replica (replica.py).
    feeds: dict[bytes, Feed]
    records: dict[tuple[bytes, str], Record]
    watchers: list[Callable[[bytes, str | None], None]]
    _entries: dict[bytes, bytes]
    _stale: set[bytes]
    _ops_digest: bytes | None
    _records_digest: bytes | None

    def _touch(self, author: bytes) -> None:
        # Encoding the entry is deferred to the next digest: ingest stays cheap.
        self._stale.add(author)
        self._ops_digest = None
        for watcher in self.watchers:
            watcher(author, None)

    def entries(self) -> dict[bytes, bytes]:
        """Author -> its encoded feed entry (§10.1), as hashed into the digest."""
        if self._stale:
            for author in self._stale:
                self._entries[author] = self.feeds[author].entry(author)
            self._stale.clear()
        return self._entries

    def ops_digest(self) -> bytes:
        self.entries()
        if self._ops_digest is None:
            entries = self._entries  # one update over the joined entries: the same hash
            joined = b"".join([entries[author] for author in sorted(entries)])
            self._ops_digest = hashlib.blake2b(DIGEST_DOMAIN + b"/ops" + joined,
                                               digest_size=32).digest()
        return self._ops_digest

    def records_digest(self) -> bytes:
        if self._records_digest is None:
            joined = b"".join(sorted([r.id for r in self.records.values()]))
            self._records_digest = hashlib.blake2b(DIGEST_DOMAIN + b"/records" + joined,
                                                   digest_size=32).digest()
        return self._records_digest

    def digest(self) -> bytes:
        """Equal on two replicas exactly when they hold the same ops and records."""
        return hashlib.blake2b(DIGEST_DOMAIN + self.ops_digest() + self.records_digest(),
                               digest_size=32).digest()
