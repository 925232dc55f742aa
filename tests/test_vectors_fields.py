"""protocols/README.md describes every field of every vector file (issue 9, spec item):
a second implementation is written from the spec alone, so a field named nowhere is a
guess. Each key found in a file must be named, in backquotes, in that file's paragraph
of "Every field, file by file" (or in the rest of the README's part on vectors, which
covers the fields all files share, or in the paragraph of a file it says it is "as").
Keys that are data, not field names, are skipped: ids and authors in hex, step labels,
frame type names, and the inside of values whose keys the spec defines elsewhere (a
frame's `fields`, an op's or a record's `body`, an SDP `message`, a typed `value`, TXT
`pairs`)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

PROTOCOLS = Path(__file__).resolve().parents[1] / "protocols"
SECTION = "### Every field, file by file"
DATA_VALUES = frozenset({"fields", "body", "message", "value", "pairs"})
DATA_KEY = re.compile(r"[0-9a-f]{16,}|[A-Z_]+|.*[ #].*")


def paragraphs() -> tuple[str, dict[str, str]]:
    """The vectors' part of the README without the files' paragraphs, and those."""
    vectors = (PROTOCOLS / "README.md").read_text().split("## Test vectors", 1)[1]
    vectors = vectors.split("\n## ", 1)[0]
    opening, by_file = vectors, {}
    for block in re.split(r"\n(?=\*\*)", vectors.split(SECTION, 1)[1]):
        head = re.match(r"\*\*([a-z_.]+\.json(?: and [a-z_.]+\.json)*)\.\*\*", block)
        if head:
            opening = opening.replace(block, "")
            for name in head.group(1).split(" and "):
                by_file[name] = block
    return opening, by_file


def named(text: str) -> set[str]:
    """Every word inside backquotes (`{author, seq, id}` names three)."""
    return {word for quoted in re.findall(r"`([^`]*)`", text)
            for word in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", quoted)}


def keys(value: Any, out: set[str]) -> set[str]:
    if isinstance(value, dict):
        for key, inner in value.items():
            if DATA_KEY.fullmatch(key):
                keys(inner, out)
                continue
            out.add(key)
            if key not in DATA_VALUES:
                keys(inner, out)
    elif isinstance(value, list):
        for inner in value:
            keys(inner, out)
    return out


FILES = sorted(p.name for p in (PROTOCOLS / "vectors").glob("*.json"))


@pytest.mark.parametrize("name", FILES)
def test_every_field_of_a_vector_file_is_described(name: str) -> None:
    opening, by_file = paragraphs()
    assert name in by_file, f"{name} has no paragraph under {SECTION!r}"
    text = by_file[name] + opening
    for other in re.findall(r"as in\s+([a-z_]+\.json)", by_file[name]):
        text += by_file.get(other, "")
    found = keys(json.loads((PROTOCOLS / "vectors" / name).read_text()), set())
    missing = sorted(found - named(text))
    assert not missing, f"{name}: fields not described in protocols/README.md: {missing}"
