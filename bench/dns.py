"""Cluster DNS benchmark: the agent's responder against Debian's dnsmasq serving the same records on the same board.

One simulated board (the `pikube.dev.netlab` lab the tests use) runs a real
`pikube agent --pod-network bridge`; a pod on it is the client. In the same
run, interleaved round by round, a load generator inside the pod's network
namespace (`nsenter --net=/proc/<pause pid>/ns/net`) asks:

- **pikube**: the agent on the bridge address, port 53;
- **dnsmasq**: Debian's dnsmasq in the board's namespace on the bridge address,
  port 5353, holding the same cluster name as a `--host-record` and forwarding
  other names, with its cache, to the same upstream as the agent (a dnsmasq in
  the lab's `client` namespace answering `ext.example`, so nothing leaves the
  machine);

for a cluster name (`web.default.svc.cluster.local`, A) and a cached external
name (`ext.example`, A, asked once before so both caches hold it):
latency p50/p99 of one query at a time, and queries per second from
`--clients` load generators at once, each with 32 queries in flight (one Python
load generator saturates near 90,000 queries/s on this machine, about what both
servers then answer, so one alone cannot tell them apart).

Then the agent's RSS with DNS on (after the load) and, restarted with
`--cluster-dns ""`, with DNS off, both with `--pods` pods (10) on the board.
Targets: ≥ 0.5 x dnsmasq's throughput, p99 ≤ 2 ms for the cluster name; the
agent ≤ 50 MB RSS with DNS on.

    sudo .venv/bin/python -m bench.dns [--seconds 3] [--rounds 3] [--latency-queries 2000] [--docker-host URL]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.api import rss_mb
from pikube.dev.netlab import NetCluster, cluster_up, wait_for

BOARDS = ("b1",)
CLUSTER_NAME = "web.default.svc.cluster.local"
EXTERNAL_NAME = "ext.example"
EXT_IP = "192.0.2.7"
DNSMASQ_PORT = 5353

# One UDP socket; `window` queries in flight; each answer is matched to its query by id.
LOADGEN = r"""
import json, socket, struct, sys, time
host, port, name, mode, amount = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5])
labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
def query(qid):
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + labels + b"\0\1\0\1"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((host, port))
s.settimeout(1.0)
lost = 0
if mode == "latency":
    times = []
    for i in range(int(amount)):
        t = time.perf_counter()
        s.send(query(i % 65536))
        try:
            while struct.unpack("!H", s.recv(4096)[:2])[0] != i % 65536:
                pass
        except OSError:
            lost += 1
            continue
        times.append(time.perf_counter() - t)
    times.sort()
    print(json.dumps({"p50_ms": times[len(times) // 2] * 1000, "p99_ms": times[int(len(times) * 0.99)] * 1000,
                      "lost": lost}))
else:
    window, done, qid = 32, 0, 0
    end = time.perf_counter() + amount
    for _ in range(window):
        s.send(query(qid % 65536)); qid += 1
    start = time.perf_counter()
    while time.perf_counter() < end:
        try:
            s.recv(4096)
            done += 1
        except OSError:
            lost += 1
        s.send(query(qid % 65536)); qid += 1
    print(json.dumps({"qps": done / (time.perf_counter() - start), "lost": lost}))
"""


def in_pod(c: NetCluster, pod: str, script: Path, *args: str, timeout: float = 120) -> dict[str, Any]:
    proc = subprocess.run(["nsenter", f"--net={c.pod_netns(pod)}", sys.executable, str(script), *args],
                          capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed: {proc.stderr}")
    return dict(json.loads(proc.stdout))


def qps_in_pod(c: NetCluster, pod: str, script: Path, host: str, port: str, name: str, seconds: float,
               clients: int) -> dict[str, Any]:
    """Queries/s of `clients` load generators at once (each its own socket and 32 queries in flight), summed."""
    argv = ["nsenter", f"--net={c.pod_netns(pod)}", sys.executable, str(script), host, port, name, "qps",
            str(seconds)]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(clients)]
    rows = []
    for proc in procs:
        out, err = proc.communicate(timeout=seconds + 60)
        if proc.returncode != 0:
            raise RuntimeError(f"load generator failed: {err}")
        rows.append(json.loads(out))
    return {"qps": sum(r["qps"] for r in rows), "lost": sum(r["lost"] for r in rows)}


def bridge_address(c: NetCluster, board: str) -> str:
    out = c.in_board(board, "ip", "-4", "-o", "addr", "show", "dev", "pikube0").stdout
    return out.split("inet ", 1)[1].split("/", 1)[0]


def start_dnsmasq(netns: str, address: str, port: int, extra: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["ip", "netns", "exec", netns, "dnsmasq", "--keep-in-foreground", "--no-hosts",
                             "--bind-interfaces", f"--listen-address={address}", f"--port={port}",
                             "--pid-file=", "--user=root", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def measure(c: NetCluster, args: argparse.Namespace) -> dict[str, Any]:
    c.create_pod("client", "b1", command=["sleep", "3600"])
    others = [f"idle-{i}" for i in range(1, args.pods)]
    for name in others:  # the RSS figures are with `--pods` pods on the board
        c.create_pod(name, "b1", command=["sleep", "3600"])
    svc = c.service("web", {"app": "web"}, 80, 8080)
    for i in range(20):  # a zone with some content
        c.service(f"filler-{i}", {"app": f"filler-{i}"}, 80, 8080)
    c.wait_ready("client", *others, timeout=180)
    web_ip = str(svc["spec"]["clusterIP"])
    bridge = bridge_address(c, "b1")
    upstream = start_dnsmasq(c.netns("client"), c.address("client"), 53,
                             ["--no-resolv", f"--address=/{EXTERNAL_NAME}/{EXT_IP}", "--address=/#/", "--local-ttl=60"])
    reference = start_dnsmasq(c.netns("b1"), bridge, DNSMASQ_PORT,
                              ["--no-resolv", f"--server={c.address('client')}", "--cache-size=1000",
                               f"--host-record={CLUSTER_NAME},{web_ip}"])
    script = c.workdir / "loadgen.py"
    script.write_text(LOADGEN)
    targets = {"pikube": (bridge, "53"), "dnsmasq": (bridge, str(DNSMASQ_PORT))}
    names = {"cluster": CLUSTER_NAME, "external": EXTERNAL_NAME}
    runs: dict[str, list[dict[str, Any]]] = {}
    try:
        for target, (host, port) in targets.items():  # both answer, and both caches hold the external name
            wait_for(f"{target} answers", lambda h=host, p=port: in_pod(
                c, "client", script, h, p, EXTERNAL_NAME, "latency", "3")["lost"] == 0, 20, 0.5)
        for _ in range(args.rounds):
            for target, (host, port) in targets.items():
                for kind, name in names.items():
                    lat = in_pod(c, "client", script, host, port, name, "latency", str(args.latency_queries))
                    qps = qps_in_pod(c, "client", script, host, port, name, args.seconds, args.clients)
                    runs.setdefault(f"{target}/{kind}", []).append({**lat, **qps})
        agent = c.agents["b1"]
        assert agent.proc is not None
        rss_on = rss_mb(agent.proc.pid)
        agent.argv = [*agent.argv, "--cluster-dns", ""]
        c.restart_agent("b1")
        time.sleep(args.settle)  # the same quiet moment before reading RSS as the DNS-on figure had after its load
        assert agent.proc is not None
        rss_off = rss_mb(agent.proc.pid)
    finally:
        for proc in (reference, upstream):
            proc.terminate()
            proc.wait(10)
    summary: dict[str, Any] = {"agent_rss_mb_dns_on": round(rss_on, 1), "agent_rss_mb_dns_off": round(rss_off, 1)}
    for key, rows in runs.items():
        summary[key] = {m: round(statistics.median(r[m] for r in rows), 3) for m in ("qps", "p50_ms", "p99_ms")}
        summary[key]["lost"] = sum(r["lost"] for r in rows)
    for kind in names:
        summary[f"{kind}_qps_pikube_over_dnsmasq"] = round(
            summary[f"pikube/{kind}"]["qps"] / summary[f"dnsmasq/{kind}"]["qps"], 2)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of one throughput run")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per target and name (medians reported)")
    parser.add_argument("--latency-queries", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=3, help="load generators at once in the throughput runs")
    parser.add_argument("--pods", type=int, default=10, help="pods on the board (the client and idle ones)")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds after the restart before reading RSS")
    parser.add_argument("--docker-host", default="", help="use this engine instead of a private one")
    args = parser.parse_args()
    for tool in ("dnsmasq", "nsenter", "nft", "ip"):
        if shutil.which(tool) is None:
            raise SystemExit(f"bench.dns needs {tool} (dnsmasq: apt-get install dnsmasq-base)")
    from agent.runtime import localimages as images
    from pikube.dev import engine as engines

    tmp = Path(tempfile.mkdtemp(prefix="pikube-dnsbench-"))
    engine = engines.connect(args.docker_host) if args.docker_host else engines.start(tmp / "engine")
    client = engine.client()
    try:
        images.ensure(client.api)
        dev_images = argparse.Namespace(busybox=images.BUSYBOX_IMAGE, pause=images.PAUSE_IMAGE)
        workdir = tmp / "lab"
        workdir.mkdir()
        with cluster_up("host-gw", workdir, engine.host, client, dev_images, BOARDS) as c:
            result = measure(c, args)
    finally:
        client.close()
        if engine.started:
            engines.stop(engine)
            engines.remove_files(tmp / "engine")
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result, indent=2))
    print(f"load average at the end: {Path('/proc/loadavg').read_text().split()[0]}")
    print(f"| server | name | queries/s ({args.clients} clients, 32 in flight each) | p50 ms | p99 ms |")
    print("|---|---|---|---|---|")
    for target in ("pikube", "dnsmasq"):
        for kind in ("cluster", "external"):
            r = result[f"{target}/{kind}"]
            print(f"| {target} | {kind} | {r['qps']:.0f} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} |")
    print(f"pikube ÷ dnsmasq throughput: cluster {result['cluster_qps_pikube_over_dnsmasq']} (target ≥ 0.5), "
          f"external {result['external_qps_pikube_over_dnsmasq']}")
    print(f"agent RSS: DNS on {result['agent_rss_mb_dns_on']} MB, off {result['agent_rss_mb_dns_off']} MB "
          "(target ≤ 50 MB with DNS on)")


if __name__ == "__main__":
    main()
