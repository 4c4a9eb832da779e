"""Provisioning benchmark: wall time from nothing to three Ready boards, site.yml against `pikube provision`.

Both paths start from the same kind of fresh SSH boards (`pikube.dev.sshboards`:
network namespaces with their own sshd and overlaid /etc, /var, /opt...; x86_64
wheels), the same wheel bundle (made once, before timing) and a private Docker
engine for the pods, in the same run, alternating, `--rounds` times each. Timed:
the command's wall clock, from its start to its exit, which both reach only once
every node is Ready (enable-master and enable-worker wait for Ready); then a
`kubectl get nodes` through the merged kubeconfig checks three Ready nodes.
Also printed: the second, idempotent run of each (nothing changes).

Targets (issue 16): provision ≤ 30 s and ≤ half the playbook's time (k3s-ansible's
published runs take minutes).

    .venv/bin/python -m bench.provision [--rounds 2] [--docker-host unix:///...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pikube.dev import engine, playbooks, sshboards
from pikube.dev.localagent import remove_node_containers
from pikube.provision import bundle

BOARDS = ("pi-1", "pi-2", "pi-3")


def say(text: str) -> None:
    print(f"# {text}", file=sys.stderr, flush=True)


def ready(kubeconfig: Path, context: str) -> int:
    proc = subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), "--context", context, "get", "nodes", "-o",
                           "json"], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return 0
    return sum(1 for n in json.loads(proc.stdout)["items"]
               if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"]))


def playbook_round(lab: sshboards.SshLab, wheels: Path, host: str) -> tuple[float, float]:
    inv = playbooks.inventory(lab, "pi-1", ["pi-2", "pi-3"], extra_vars={
        "pikube_bundle_dir": str(wheels), "pikube_docker_host": host, "prereq_packages": []})
    times = []
    for _ in range(2):
        start = time.perf_counter()
        run = playbooks.run_playbook(lab, "site.yml", inv)
        times.append(time.perf_counter() - start)
        if run.returncode != 0:
            raise SystemExit(f"site.yml failed:\n{run.output[-3000:]}")
    if ready(playbooks.kubeconfig(lab), "pikube") != 3:
        raise SystemExit("site.yml finished without three Ready nodes")
    return times[0], times[1]


def provision_round(lab: sshboards.SshLab, wheels: Path, host: str) -> tuple[float, float]:
    kubeconfig = lab.dir / "provision-kubeconfig"
    argv = [sys.executable, "-m", "pikube", "provision", "--ssh-key", str(lab.key), "--known-hosts",
            str(lab.known_hosts), "--bundle", str(wheels), "--kubeconfig", str(kubeconfig), "--docker-host", host,
            "--master", f"pi@{lab['pi-1'].address}",
            *(a for n in BOARDS[1:] for a in ("--worker", f"pi@{lab[n].address}"))]
    times = []
    for _ in range(2):
        start = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise SystemExit(f"pikube provision failed:\n{proc.stdout}{proc.stderr}")
    if ready(kubeconfig, "pikube") != 3:
        raise SystemExit("pikube provision finished without three Ready nodes")
    return times[0], times[1]


def one(kind: str, work: Path, run: Callable[[sshboards.SshLab, Path, str], tuple[float, float]], wheels: Path,
        eng: engine.Engine) -> tuple[float, float]:
    lab = sshboards.start(work / kind, [sshboards.BoardSpec(n) for n in BOARDS])
    try:
        return run(lab, wheels, eng.host)
    finally:
        left = sshboards.stop(lab)
        client = eng.client()
        try:
            for name in BOARDS:
                remove_node_containers(client, name)
        finally:
            client.close()
        if left:
            raise SystemExit(f"the SSH boards left behind: {left}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--docker-host", default="", help="use this engine instead of a private dockerd")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pikube-bench-provision-") as tmp:
        work = Path(tmp)
        say("making the wheel bundle (not timed)")
        wheels = work / "bundle"
        bundle.make(wheels)
        eng = engine.connect(args.docker_host) if args.docker_host else engine.start(work / "engine")
        try:
            results: dict[str, list[tuple[float, float]]] = {"site.yml": [], "pikube provision": []}
            for i in range(args.rounds):
                for kind, func in (("site.yml", playbook_round), ("pikube provision", provision_round)):
                    say(f"round {i + 1}: {kind}")
                    results[kind].append(one(kind.replace(" ", "-") + str(i), work, func, wheels, eng))
        finally:
            engine.stop(eng)
            if eng.started:
                engine.remove_files(work / "engine")
    first = {k: statistics.median(t[0] for t in v) for k, v in results.items()}
    again = {k: statistics.median(t[1] for t in v) for k, v in results.items()}
    print(f"nothing -> 3 Ready boards, median of {args.rounds} rounds (each: fresh boards)")
    print(f"{'path':<18} {'first run':>10} {'second run':>11}   all first runs")
    for kind in results:
        runs = ", ".join(f"{t[0]:.1f}" for t in results[kind])
        print(f"{kind:<18} {first[kind]:>9.1f}s {again[kind]:>10.1f}s   {runs}")
    ratio = first["pikube provision"] / first["site.yml"]
    print(f"provision / site.yml: {ratio:.2f} x (target <= 0.5 x); provision {first['pikube provision']:.1f} s "
          "(target <= 30 s)")


if __name__ == "__main__":
    main()
