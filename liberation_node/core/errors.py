"""Why an input was refused (protocols/ops.md §7 lists every reason).

Two families, kept apart as in h11: `Rejection` is about input from the network
(the peer misbehaved, or relayed something bad) and lowers its score;
`LocalError` is about our own misuse (a bug or a bad local request).
"""

from __future__ import annotations

import enum


class Reason(enum.StrEnum):
    """Stable, wire-visible rejection reasons. Values never change once published."""

    # Decoding (protocols/ops.md §3)
    OVERSIZE = "oversize"
    UNDECODABLE = "undecodable"
    NON_CANONICAL = "non_canonical"
    MALFORMED = "malformed"
    UNSUPPORTED_FORMAT = "unsupported_format"
    # Authenticity (§4)
    BAD_SIGNATURE = "bad_signature"
    WRONG_NETWORK = "wrong_network"
    # Kind and body (§6)
    UNKNOWN_KIND = "unknown_kind"
    BAD_BODY = "bad_body"
    # A detached content that is not the one its header signs (§12.4)
    BAD_CONTENT = "bad_content"
    # Feed structure (§5)
    BAD_DEPS = "bad_deps"
    TIMESTAMP_REGRESSION = "timestamp_regression"
    FROM_THE_FUTURE = "from_the_future"
    FORKED_AUTHOR = "forked_author"
    NOT_AUTHORS_POST = "not_authors_post"
    # The network's definition (§14)
    BEFORE_GENESIS = "before_genesis"
    # Records (§8)
    RECORD_EXPIRED = "record_expired"
    RECORD_TTL_TOO_LONG = "record_ttl_too_long"


class Void(enum.StrEnum):
    """Why a stored op has no ledger effect (protocols/ops.md §6.2).

    A void op is still part of its author's feed: it is stored, replicated and
    counted in the digest. Only its effect on balances and the pool is nil.
    """

    NOT_REGISTERED = "not_registered"
    ALREADY_REGISTERED = "already_registered"
    ALREADY_CLAIMED = "already_claimed"
    WEEK_OUT_OF_RANGE = "week_out_of_range"
    OVERDRAFT = "overdraft"
    FORKED = "forked"


class Rejection(Exception):
    """Input from the network was refused; `reason` is stable, `detail` is for humans."""

    def __init__(self, reason: Reason, detail: str = "") -> None:
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.reason.value}: {self.detail}" if self.detail else self.reason.value


class LocalError(Exception):
    """We asked for something impossible (bad local request or a bug of ours)."""


class NotWritable(LocalError):
    """Local writes are paused for now (the own feed is being checked, or the store
    cannot commit); the same request may succeed later. The API answers 503."""
