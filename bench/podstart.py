"""Pod start benchmark: create → Running latency against a bare `docker run`, agent memory and idle CPU.

Starts a private Docker engine (unless --docker-host), a master and one agent on
loopback, and prints, in one run:

- pod create → Running p50/p99 over N pods created one after another (from
  sending the create until a watch shows phase Running),
- the same for a bare `docker run -d` of the same image and command (the CLI,
  as a user types it) and for the Docker SDK's create + start, interleaved with
  the pods in the same run; target: pod p99 <= 1.5 x `docker run` p99,
- the agent's RSS with 30 pods running (target <= 50 MB),
- the agent's CPU while idle with those pods (percent of one core), with usage
  sampling for `kubectl top` on (every 15 s, the default) and off
  (`--metrics-interval 0`), the agent restarted between them, in alternating
  windows; target: sampling costs <= 0.5 % of one core.

    .venv/bin/python -m bench.podstart [--pods 50] [--rss-pods 30] [--idle-seconds 60] [--idle-rounds 2]
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests

from bench.api import pct, rss_mb
from pikube.dev.localagent import AgentProcess, agent_argv, make_token, remove_node_containers
from pikube.dev.localmaster import start_master

NODE = "bench-node"
COMMAND = ["sleep", "3600"]


def say(text: str) -> None:
    print(f"# {text}", file=sys.stderr, flush=True)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = 100.0
    return (int(fields[11]) + int(fields[12])) / ticks


class RunningWatch:
    """First time each pod is seen Running, from one watch on the namespace."""

    def __init__(self, session: requests.Session, url: str) -> None:
        self.seen: dict[str, float] = {}
        self.cond = threading.Condition()
        self.resp = session.get(f"{url}/api/v1/namespaces/default/pods",
                                params={"watch": "1", "resourceVersion": "0"}, stream=True, timeout=(5, 3600))
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for line in self.resp.iter_lines(chunk_size=None):
                if not line:
                    continue
                obj = json.loads(line).get("object") or {}
                if (obj.get("status") or {}).get("phase") == "Running":
                    name = obj["metadata"]["name"]
                    with self.cond:
                        self.seen.setdefault(name, time.perf_counter())
                        self.cond.notify_all()
        except Exception:
            return

    def wait(self, name: str, timeout: float = 60) -> float:
        with self.cond:
            if not self.cond.wait_for(lambda: name in self.seen, timeout):
                raise TimeoutError(f"pod {name} not Running within {timeout}s")
            return self.seen[name]



def pod_latency(session: requests.Session, url: str, watch: RunningWatch, image: str, name: str) -> float:
    """Milliseconds from sending a pod create until the watch shows it Running."""
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": NODE, "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "main", "image": image, "command": COMMAND}]}}
    t0 = time.perf_counter()
    resp = session.post(f"{url}/api/v1/namespaces/default/pods", json=body)
    resp.raise_for_status()
    return (watch.wait(name) - t0) * 1000


def docker_run_latency(docker_bin: str, host: str, image: str, i: int) -> float:
    """One `docker run -d` (the CLI: what a user types), until it returns with the container running."""
    t0 = time.perf_counter()
    subprocess.run([docker_bin, "-H", host, "run", "-d", "--network", "none", "--name", f"bench-run-{i}",
                    "--label", f"pikube.io/node={NODE}", image, *COMMAND], check=True, capture_output=True)
    return (time.perf_counter() - t0) * 1000


def sdk_run_latency(client: Any, image: str, i: int) -> float:
    """One create + start through the Docker SDK (no CLI process start-up)."""
    t0 = time.perf_counter()
    c = client.api.create_container(image, COMMAND, name=f"bench-sdk-{i}", labels={"pikube.io/node": NODE},
                                    host_config=client.api.create_host_config(network_mode="none"))
    client.api.start(c["Id"])
    return (time.perf_counter() - t0) * 1000


def delete_pods(session: requests.Session, url: str, names: list[str]) -> None:
    for name in names:
        session.delete(f"{url}/api/v1/namespaces/default/pods/{name}", params={"gracePeriodSeconds": "0"})


def bench(args: argparse.Namespace) -> dict[str, float]:
    from agent.runtime import localimages as images
    from pikube.dev import engine as engines

    tmp = Path(tempfile.mkdtemp(prefix="pikube-podstart-"))
    engine = engines.connect(args.docker_host) if args.docker_host else engines.start(tmp / "engine")
    client = engine.client()
    images.ensure(client.api)
    image = images.BUSYBOX_IMAGE
    master = start_master(tmp / "master")
    token = make_token(master, "bench.podstart")

    def make_agent(sampling: bool) -> AgentProcess:
        extra = [] if sampling else ["--metrics-interval", "0"]
        return AgentProcess(node=NODE, data_dir=tmp / "agent", log_path=tmp / "agent.log",
                            argv=agent_argv(master, NODE, tmp / "agent", engine.host, token, extra,
                                            log_level="warning"))

    agent = make_agent(sampling=True)
    results: dict[str, float] = {}
    try:
        agent.start()
        session = master.session()
        deadline = time.monotonic() + 30
        while not session.get(f"{master.url}/api/v1/nodes/{NODE}").ok:
            if time.monotonic() > deadline:
                raise RuntimeError(agent.log_tail())
            time.sleep(0.2)
        # warm-up: the first pod pays for imports and caches in both paths
        say("agent registered; warming up")
        # the watch is never closed: closing a stream another thread reads can hang; it dies with the process
        watch = RunningWatch(master.session(), master.url)
        for i in range(2):
            pod_latency(session, master.url, watch, image, f"warm-{i}")
        docker_bin = shutil.which("docker") or "docker"
        say(f"pods, docker run and SDK create+start, interleaved, x {args.pods}")
        pods: list[float] = []
        runs: list[float] = []
        sdk: list[float] = []
        for i in range(args.pods):  # interleaved, so a noisy moment hits all three alike
            pods.append(pod_latency(session, master.url, watch, image, f"pod-{i}"))
            runs.append(docker_run_latency(docker_bin, engine.host, image, i))
            sdk.append(sdk_run_latency(client, image, i))
        for c in client.api.containers(all=True, filters={"name": "bench-"}):
            client.api.remove_container(c["Id"], force=True)
        results.update({
            "pod_p50_ms": pct(pods, 50), "pod_p99_ms": pct(pods, 99),
            "docker_run_p50_ms": pct(runs, 50), "docker_run_p99_ms": pct(runs, 99),
            "sdk_create_start_p50_ms": pct(sdk, 50), "sdk_create_start_p99_ms": pct(sdk, 99),
        })
        results["pod_p99_over_docker_run_p99"] = results["pod_p99_ms"] / results["docker_run_p99_ms"]
        results["pod_p99_over_sdk_p99"] = results["pod_p99_ms"] / results["sdk_create_start_p99_ms"]
        names = [f"pod-{i}" for i in range(args.pods)] + ["warm-0", "warm-1"]
        keep = names[:args.rss_pods]
        delete_pods(session, master.url, names[args.rss_pods:])
        deadline = time.monotonic() + 60
        while len(client.api.containers(filters={"label": f"pikube.io/node={NODE}"})) > 2 * len(keep) and \
                time.monotonic() < deadline:
            time.sleep(0.5)
        say(f"{len(keep)} pods left running; measuring memory and idle CPU")
        time.sleep(15)  # let the agent settle: status writes done, probes idle
        results[f"agent_rss_mb_{len(keep)}_pods"] = rss_mb(agent.pid)
        idle: dict[bool, list[float]] = {True: [], False: []}
        for round_ in range(args.idle_rounds):
            for sampling in (True, False):
                if round_ or not sampling:  # the first window uses the agent that ran the pods
                    agent.stop()
                    agent = make_agent(sampling)
                    agent.start()
                    time.sleep(20)  # adopt the pods, first status writes, two samples' worth of settling
                say(f"idle CPU, sampling {'on' if sampling else 'off'}, round {round_ + 1}/{args.idle_rounds}")
                c0, t0 = cpu_seconds(agent.pid), time.monotonic()
                time.sleep(args.idle_seconds)
                idle[sampling].append(100 * (cpu_seconds(agent.pid) - c0) / (time.monotonic() - t0))
                if sampling and round_ == 0:
                    results["agent_rss_mb_after_idle"] = rss_mb(agent.pid)
        results["agent_idle_cpu_percent"] = sum(idle[True]) / len(idle[True])
        results["agent_idle_cpu_percent_sampling_off"] = sum(idle[False]) / len(idle[False])
        results["sampling_cost_percent_of_a_core"] = (results["agent_idle_cpu_percent"]
                                                      - results["agent_idle_cpu_percent_sampling_off"])
        say("idle CPU per window (sampling on / off): " + ", ".join(
            f"{a:.2f}/{b:.2f}" for a, b in zip(idle[True], idle[False], strict=True)))
    finally:
        agent.stop()
        remove_node_containers(client, NODE)
        master.stop()
        client.close()
        if engine.started:
            engines.stop(engine)
            engines.remove_files(tmp / "engine")
        shutil.rmtree(tmp, ignore_errors=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, default=50)
    parser.add_argument("--rss-pods", type=int, default=30)
    parser.add_argument("--idle-seconds", type=float, default=60)
    parser.add_argument("--idle-rounds", type=int, default=2, help="idle windows per mode (sampling on, off)")
    parser.add_argument("--docker-host", default="", help="use this engine instead of a private one")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # run the clean-up on `timeout` too
    for key, value in bench(args).items():
        print(f"{key:36s} {value:10.2f}")


if __name__ == "__main__":
    main()
