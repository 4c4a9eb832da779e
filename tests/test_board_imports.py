"""What runs on a board never loads the dev harness or the simulator, checked in a fresh interpreter.

import-linter proves it for the import graph; this checks the processes as they
start: the agent, the board supervisor, the master with its status page, and
the CLI modules that launch them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BOARD_MODULES = ("agent.main", "pikube.bootstrap.supervisor", "pikube.run.master", "pikube.cli.agent",
                 "pikube.cli.master", "pikube.cli.enable")
LEAVES = ("pikube.dev", "pikube.sim", "pikube.flash")


def loaded_after_importing(*modules: str) -> list[str]:
    script = (f"import importlib, json, sys\nfor m in {list(modules)!r}: importlib.import_module(m)\n"
              "print(json.dumps(sorted(sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT,
                          check=True)
    names: list[str] = json.loads(proc.stdout)
    return names


def test_board_processes_load_no_dev_harness() -> None:
    loaded = loaded_after_importing(*BOARD_MODULES)
    assert set(BOARD_MODULES) <= set(loaded)
    assert [m for m in loaded if m.startswith(LEAVES)] == []


def test_the_check_would_see_a_dev_module() -> None:
    """The same probe does notice the harness when something imports it."""
    loaded = loaded_after_importing("agent.main", "pikube.dev.cluster")
    assert "pikube.dev.cluster" in loaded
