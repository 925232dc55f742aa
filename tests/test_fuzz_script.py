"""A short run of scripts/fuzz.py (issue 9): mutated frames into real sessions of an engine,
malformed signaling requests into a live daemon. No crash, memory bounded, every
refusal counted. The full run (1,000,000 frames, 10,000 requests) is the script's."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "fuzz.py"


def fuzz() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fuzz_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fuzz_script"] = module
    spec.loader.exec_module(module)
    return module


def test_mutated_frames_never_crash_the_engine() -> None:
    result = fuzz().fuzz_frames(3_000, seed=11)
    assert result["frames"] == 3_000 and result["crashes"] == 0, result["crash_examples"]
    assert result["sessions"] > 100  # most mutations end their session, as they should
    assert result["verdicts"].get("closed: protocol_error", 0) > 100
    assert sum(result["refused_inputs"].values()) > 0
    assert result["rss_end_mb"] - result["rss_start_mb"] < 50


def test_malformed_signaling_never_crashes_a_live_node() -> None:
    result = fuzz().fuzz_requests(300, seed=3)
    assert result["alive"] and result["crashes"] == 0, result
    assert result["tracebacks_in_log"] == 0
    assert set(result["statuses"]) <= {"400", "403", "404", "405", "413", "415", "429", "503",
                                       "204", "200", "408", "431"} | {
        s for s in result["statuses"] if s.startswith("no answer")}
    assert result["rss_end_mb"] - result["rss_start_mb"] < 50
