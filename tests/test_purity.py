"""The core is sans-IO (DESIGN §1, STYLE rule 1): no event loop, sockets, clock or randomness.

Checked twice: statically (no banned import statement anywhere under
liberation_node/core) and dynamically (importing every core module in a fresh
interpreter loads none of the banned modules, even indirectly).
"""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import liberation_node.core

BANNED = {"asyncio", "aiortc", "aioice", "zeroconf", "aiosqlite", "aiohttp", "time", "random",
          "socket", "uvloop", "secrets", "threading", "subprocess"}
CORE = Path(liberation_node.core.__file__).parent


def core_modules() -> list[str]:
    return sorted(f"liberation_node.core.{m.name}"
                  for m in pkgutil.walk_packages([str(CORE)]))


def test_no_banned_import_statements() -> None:
    offenders = []
    for path in sorted(CORE.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in BANNED]
    assert offenders == []


def test_importing_the_core_loads_no_io_module() -> None:
    modules = core_modules()
    assert "liberation_node.core.replica" in modules
    # Modules the bare interpreter already has (e.g. `time`, via site) cannot be
    # seen here; the static check above covers those.
    code = (
        "import sys, json\n"
        "before = set(sys.modules)\n"
        f"for m in {modules!r}: __import__(m)\n"
        f"print(json.dumps(sorted((set(sys.modules) - before) & set({sorted(BANNED)!r}))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
