"""Bootstrap benchmark: `enable-master` to a Ready master, `enable-worker` to a Ready node.

Boards are network namespaces on a test LAN (`pikube.dev.boards`), pods run in
a private Docker engine (or `--docker-host`); every command is the one a Pi
runs, `--init none`, in its board. Printed, from one run:

- enable-master → master node Ready (the command's own wall clock: it returns
  once its node is Ready), `--rounds` times (each round resets the master board);
- enable-worker → node Ready, `--workers` boards per round (one after another,
  so they do not share the CPU); target ≤ 10 s (k3s: about 50 s);
- as a same-run anchor, the start-up floor of any pikube command (`python -m
  pikube --version`), so the ratio shows what the bootstrap costs beyond
  starting Python on this machine.

    .venv/bin/python -m bench.bootstrap [--rounds 3] [--workers 3] [--docker-host unix:///...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agent.runtime import localimages as images
from pikube.dev import boards, engine, launch, naming
from pikube.dev.boards import Board, Lan


def say(text: str) -> None:
    print(f"# {text}", file=sys.stderr, flush=True)


def timed(argv: list[str], board: Board | None = None) -> float:
    start = time.perf_counter()
    proc = (boards.run_in_board(board, argv, timeout=300) if board is not None
            else subprocess.run(argv, capture_output=True, text=True, check=False))
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])} failed: {proc.stdout}{proc.stderr}")
    return elapsed


def one_round(state_dir: Path, lan: Lan, host: str) -> tuple[float, list[float]]:
    master, workers = lan.boards[0], lan.boards[1:]
    lay = launch.layout(state_dir, master.name)
    master_s = timed(launch.pikube_argv(
        "enable-master", "--init", "none", "--config-dir", str(lay.config_dir), "--data-dir", str(lay.data_dir),
        "--advertise-address", str(master.address), "--docker-host", host, "--node-name", master.name,
        "--user-kubeconfig", str(state_dir / "kubeconfig")), master)
    token = launch.join_token(state_dir, master.name)
    worker_s = []
    for board in workers:
        wl = launch.layout(state_dir, board.name)
        worker_s.append(timed(launch.pikube_argv(
            "enable-worker", str(master.address), "--token", token, "--init", "none", "--config-dir",
            str(wl.config_dir), "--data-dir", str(wl.data_dir), "--docker-host", host, "--node-name", board.name),
            board))
    problems = launch.reset_boards(state_dir, lan.boards)
    if problems:
        raise SystemExit("; ".join(problems))
    (state_dir / "kubeconfig").unlink(missing_ok=True)
    return master_s, worker_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--docker-host", default="", help="an engine to use (default: a private one)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench.bootstrap needs root (network namespaces)")
    tmp = Path(tempfile.mkdtemp(prefix="pikube-bench-bootstrap-"))
    started = None if args.docker_host else engine.start(tmp / "engine")
    host = args.docker_host or (started.host if started else "")
    run = naming.new_run_id()
    lan: Lan | None = None
    try:
        client = engine.Engine(host).client()
        try:
            images.ensure(client.api)
        finally:
            client.close()
        lan = boards.create([f"pi-{i}" for i in range(1, args.workers + 2)], run=run)
        floor = statistics.median(timed([sys.executable, "-m", "pikube", "--version"]) for _ in range(5))
        masters, workers = [], []
        for r in range(args.rounds):
            m, w = one_round(tmp, lan, host)
            say(f"round {r + 1}: enable-master {m:.2f} s, enable-worker {', '.join(f'{x:.2f}' for x in w)} s")
            masters.append(m)
            workers += w
    finally:
        if lan is not None:
            launch.reset_boards(tmp, lan.boards)
        boards.teardown(run)
        if started is not None:
            engine.stop(started)
            engine.remove_files(started.root or tmp / "engine")
    load = os.getloadavg()[0]
    print(f"load average {load:.1f}; {args.rounds} rounds, {args.workers} workers each")
    print(f"python -m pikube --version (start-up floor): {floor:.2f} s")
    print(f"enable-master -> Ready: median {statistics.median(masters):.2f} s, max {max(masters):.2f} s "
          f"({statistics.median(masters) / floor:.1f}x the floor)")
    print(f"enable-worker -> Ready: median {statistics.median(workers):.2f} s, max {max(workers):.2f} s "
          f"({statistics.median(workers) / floor:.1f}x the floor; target <= 10 s, k3s about 50 s)")


if __name__ == "__main__":
    main()
