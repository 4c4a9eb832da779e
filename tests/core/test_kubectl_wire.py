"""Real kubectl (1.20 over SPDY, 1.33 over WebSocket and over SPDY) against the protocol modules alone, and the
bytes kubectl 1.20 sent, recorded once, decoded as a test vector."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from core.streams import spdy
from tests.core.kubectlwire import StandIn
from tests.master.conftest import kubectl_path

VECTOR = Path(__file__).parent / "vectors" / "kubectl-1.20-exec-spdy.hex"
MODES = {"1.20": ("old", {}), "1.33-websocket": ("new", {}),
         "1.33-spdy": ("new", {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false"})}


@pytest.mark.parametrize("mode", list(MODES))
def test_kubectl_reads_our_frames_and_exit_code(tmp_path: Path, mode: str) -> None:
    which, extra = MODES[mode]
    standin = StandIn(tmp_path, b"hi from the stand-in\n", b"to stderr\n", 3)
    try:
        env = {**os.environ, "HOME": str(tmp_path), **extra}
        env.pop("KUBECONFIG", None)
        proc = subprocess.run([kubectl_path(which), "--kubeconfig", str(standin.kubeconfig), "exec", "x", "--",
                               "anything"], capture_output=True, timeout=60, env=env)
    finally:
        standin.stop()
    assert proc.stdout == b"hi from the stand-in\n", proc
    assert b"to stderr" in proc.stderr and proc.returncode == 3, proc
    assert standin.protocol == ("v5.channel.k8s.io" if mode == "1.33-websocket" else "v4.channel.k8s.io")
    if mode == "1.20" and os.environ.get("PIKUBE_RECORD_VECTORS"):
        VECTOR.write_text(bytes(standin.captured).hex() + "\n")


def test_recorded_kubectl_1_20_frames_decode() -> None:
    """kubectl 1.20's SYN_STREAMs as it sent them: its zlib stream (Go's compress/zlib) inflates with our dictionary."""
    wire = bytes.fromhex(VECTOR.read_text().strip())
    frames = spdy.Session().receive(wire)
    syns = [f for f in frames if isinstance(f, spdy.SynStream)]
    assert [(f.stream_id, f.header("streamtype")) for f in syns] == [(1, "error"), (3, "stdout"), (5, "stderr")]
    assert all(f.priority == 0 and not f.fin for f in syns)
