"""Bringing a dev cluster's boards to life with the very commands a Pi runs.

Board 0 runs `enable-master --init none`, the others `enable-worker MASTER
--token T --init none` (in parallel), each inside its board's network
namespace and with its own config and data directories under
`DIR/boards/<board>/`, so no board touches the machine's `/etc` or
`/var/lib`. The master's admin kubeconfig is written to `DIR/kubeconfig`
(enable-master's copy for the user), whose server is the master board's LAN
address, reachable from the root namespace through the LAN bridge. `dev down`
runs `pikube reset --yes` on every board first, again the real code path.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from core import processes
from pikube.bootstrap import supervisor
from pikube.bootstrap.layout import Layout
from pikube.dev import boards
from pikube.dev.boards import Board
from pikube.dev.errors import DevError
from pikube.dev.naming import MASTER
from pikube.dev.state import LOG_DIR, ProcessRecord

BOARDS_DIR = "boards"
ENABLE_TIMEOUT = 240.0


def layout(state_dir: Path, board: str) -> Layout:
    base = state_dir / BOARDS_DIR / board
    return Layout(config_dir=base / "config", data_dir=base / "data")


def pikube_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "pikube", *args]


def _run(state_dir: Path, board: Board, name: str, argv: list[str]) -> str:
    """Run `argv` in `board`, log its output to `DIR/logs/<board>-<name>.log`; DevError with its last line."""
    log = state_dir / LOG_DIR / f"{board.name}-{name}.log"
    log.parent.mkdir(exist_ok=True)
    try:
        proc = boards.run_in_board(board, argv, timeout=ENABLE_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise DevError(f"{name} on board {board.name} took more than {ENABLE_TIMEOUT:.0f} s.") from None
    log.write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        last = (proc.stderr.strip() or proc.stdout.strip() or f"exit status {proc.returncode}").splitlines()[-1]
        raise DevError(f"{name} failed on board {board.name}: {last.rstrip('.')} (see {log}).")
    return proc.stdout


def supervisor_record(state_dir: Path, board: str) -> ProcessRecord | None:
    """The supervisor a board's enable-* left running, as the dev state records processes."""
    lay = layout(state_dir, board)
    pid = supervisor.running_pid(lay.supervised_units)
    if pid is None:
        return None
    return ProcessRecord(board=board, name="supervisor", pid=pid, argv=tuple(processes.cmdline(pid)),
                         log=str(lay.logs / "supervisor.log"))


def enable_master(state_dir: Path, board: Board, docker_host: str, backend: str, kubeconfig: Path,
                  extra: Sequence[str] = ()) -> str:
    lay = layout(state_dir, board.name)
    return _run(state_dir, board, "enable-master", pikube_argv(
        "enable-master", "--init", "none", "--config-dir", str(lay.config_dir), "--data-dir", str(lay.data_dir),
        "--advertise-address", str(board.address), "--backend", backend, "--docker-host", docker_host,
        "--node-name", board.name, "--user-kubeconfig", str(kubeconfig), *extra))


def master_token(state_dir: Path, master: Board) -> str:
    """A new token on the master board that may add masters (valid for an hour)."""
    lay = layout(state_dir, master.name)
    out = _run(state_dir, master, "master-token", pikube_argv(
        "token", "--config-dir", str(lay.config_dir), "create", "--master", "--ttl", "1h",
        "--description", "pikube dev up: its other masters"))
    return out.splitlines()[0].strip()


def join_master(state_dir: Path, board: Board, first: Board, token: str, docker_host: str, backend: str) -> str:
    """`enable-master --join` on `board`: one more master of the cluster `first` started with --cluster-init."""
    lay = layout(state_dir, board.name)
    return enable_master(state_dir, board, docker_host, backend, lay.config_dir / "kubectl.kubeconfig",
                         ("--join", f"https://{first.address}:6443", "--token", token))


def join_token(state_dir: Path, master: str = MASTER) -> str:
    """The join token the master board's enable-master printed (and kept in its config dir)."""
    return layout(state_dir, master).join_token.read_text().strip()


def enable_worker(state_dir: Path, board: Board, master: Board, docker_host: str) -> str:
    lay = layout(state_dir, board.name)
    return _run(state_dir, board, "enable-worker", pikube_argv(
        "enable-worker", str(master.address), "--token", join_token(state_dir, master.name), "--init", "none",
        "--config-dir", str(lay.config_dir), "--data-dir", str(lay.data_dir), "--docker-host", docker_host,
        "--node-name", board.name))


def enable_workers(state_dir: Path, workers: list[Board], master: Board, docker_host: str) -> list[str]:
    """enable-worker on every worker board at once; the first failure is raised after all have finished."""
    if not workers:
        return []
    with ThreadPoolExecutor(max_workers=len(workers)) as pool:
        futures = [pool.submit(enable_worker, state_dir, b, master, docker_host) for b in workers]
        return [f.result() for f in futures]


def reset_boards(state_dir: Path, all_boards: tuple[Board, ...]) -> list[str]:
    """`pikube reset --yes` on every board that was set up; the problems, one line each."""
    def reset(board: Board) -> str | None:
        lay = layout(state_dir, board.name)
        if not lay.record.exists() and not lay.supervised_units.exists():
            return None
        argv = pikube_argv("reset", "--yes", "--init", "none", "--config-dir", str(lay.config_dir),
                           "--data-dir", str(lay.data_dir))
        try:
            proc = boards.run_in_board(board, argv, timeout=120)
        except subprocess.TimeoutExpired:
            return f"pikube reset on board {board.name} timed out"
        if proc.returncode != 0:
            return f"pikube reset on board {board.name} failed: {(proc.stderr or proc.stdout).strip()[-300:]}"
        return None

    with ThreadPoolExecutor(max_workers=max(1, len(all_boards))) as pool:
        return [p for p in pool.map(reset, all_boards) if p]
