"""pyroute2 without its package __init__: the agent's network code works, and a top-level name still imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys
from agent import leanimport
assert leanimport.install()
import agent.netsync.controller, agent.teardown
from agent.network.netns import IPRoute, setns
from pyroute2.netlink.exceptions import NetlinkError
assert leanimport.is_lean(), "something ran pyroute2's __init__"
assert "pyroute2.ndb.main" not in sys.modules
from pyroute2 import NDB, IPRoute as Top  # a top-level name: the real __init__ runs now
assert not leanimport.is_lean() and Top is IPRoute and NDB is not None
assert not leanimport.install()  # once imported, left alone
print("ok")
"""


def test_lean_pyroute2_import() -> None:
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.stdout.strip() == "ok", proc.stderr
