#!/usr/bin/env python3
"""Generate the protocol test vectors in protocols/vectors/ from the implementation.

    .venv/test/bin/python scripts/make_vectors.py           # (re)write the files
    .venv/test/bin/python scripts/make_vectors.py --check   # exit 1 if any would change

The output is deterministic: identities come from fixed seeds (bytes([i]) * 32),
timestamps are constants, nothing reads a clock or a random source, and Ed25519
signatures are deterministic. The vectors illustrate protocols/ops.md,
protocols/sync.md, protocols/transport.md and protocols/discovery.md; the tests
(tests/test_vectors.py, tests/test_frames_vectors.py,
tests/transport/test_binding_vectors.py, tests/test_discovery_vectors.py) read them
back and check the implementation against every case without running this
generator. Each file is built by a module of scripts/vectorgen/, registered in
vectorgen.build_all.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from vectorgen import build_all  # scripts/vectorgen/, beside this file

VECTORS = Path(__file__).resolve().parent.parent / "protocols" / "vectors"


def render(content: dict[str, Any]) -> str:
    return json.dumps(content, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if regenerating would change a file")
    parser.add_argument("--out", type=Path, default=VECTORS, help="the vectors directory")
    args = parser.parse_args(argv)
    wanted = {name: render(content) for name, content in build_all().items()}
    if args.check:
        stale = [name for name, text in wanted.items()
                 if not (args.out / name).is_file()
                 or (args.out / name).read_text(encoding="utf-8") != text]
        extra = sorted(p.name for p in args.out.glob("*.json") if p.name not in wanted)
        for name in stale:
            print(f"{args.out / name}: out of date (run scripts/make_vectors.py)")
        for name in extra:
            print(f"{args.out / name}: not produced by scripts/make_vectors.py")
        return 1 if stale or extra else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in wanted.items():
        path = args.out / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
