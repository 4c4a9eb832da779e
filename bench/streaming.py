"""exec and port-forward through pikube against Docker and the pod network directly, in the same run.

Brings up the lab of `pikube.dev.netlab` with two boards (a real master, real
agents), an httpd pod on board b2 serving a 100 MB file, and measures, rounds
interleaved so a noisy moment hits both sides alike:

- exec round-trip latency: `kubectl exec POD -- true` (kubectl 1.33, WebSocket v5 by default:
  kubectl → master → b2's agent → Docker) against `docker exec CONTAINER true`
  of the same container (the Docker CLI on the same engine); p50 and p99 of each,
  and the ratio of the p50s (target ≤ 2x);
- port-forward throughput: 100 MB fetched over `kubectl port-forward pod/POD`
  (1.33: SPDY inside a WebSocket tunnel) against the same 100 MB fetched from the pod IP
  directly by a socket made in board b2's network namespace (the board's own route
  to its pod); the ratio of the medians (target ≥ 0.5x).

    .venv/bin/python -m bench.streaming [--execs 40] [--rounds 5] [--megabytes 100] [--docker-host URL]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from agent.kubelet.netns import socket_in
from pikube.dev.localmaster import free_port
from pikube.dev.netlab import HTTP_PORT, NetCluster, cluster_up

KUBECTL = "/usr/lib/google-cloud-sdk/bin/kubectl.1.33"
POD = "bench-web"


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _fetch(sock: socket.socket, path: str) -> int:
    """GET `path` over `sock` (HTTP/1.0), read to the end; the body's length."""
    with sock:
        sock.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
        got = 0
        head = b""
        buf = bytearray(1 << 20)
        while True:
            n = sock.recv_into(buf)
            if not n:
                break
            if not head:
                head = bytes(buf[:n])
            got += n
    return got - (head.index(b"\r\n\r\n") + 4)


def measure(c: NetCluster, args: argparse.Namespace) -> None:
    c.create_pod(POD, "b2", {"app": "bench"})
    c.wait_ready(POD)
    size = args.megabytes * 1024 * 1024
    c.exec(POD, f"head -c {size} /dev/urandom > /var/www/big", timeout=120)
    env = {**os.environ, "HOME": str(c.workdir)}
    env.pop("KUBECONFIG", None)
    kube = [KUBECTL, "--kubeconfig", str(c.master.kubeconfig)]
    container = c._container(POD, "app")
    docker = ["docker", "--host", c.docker_host, "exec", container, "true"]

    def timed(argv: list[str], **kw: object) -> float:
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, **kw)  # type: ignore[call-overload]
        return time.perf_counter() - start

    timed([*kube, "exec", POD, "--", "true"], env=env)  # warm both paths once
    timed(docker)
    via_kubectl: list[float] = []
    via_docker: list[float] = []
    for _ in range(args.execs):
        via_kubectl.append(timed([*kube, "exec", POD, "--", "true"], env=env))
        via_docker.append(timed(docker))

    port = free_port()
    pf = subprocess.Popen([*kube, "port-forward", f"pod/{POD}", f"{port}:{HTTP_PORT}"], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert pf.stdout is not None
        line = pf.stdout.readline()
        if b"Forwarding from" not in line:
            raise SystemExit(f"kubectl port-forward did not start: {line!r}")
        pod_ip = c.pod_ip(POD)
        board_ns = f"/run/netns/{c.netns('b2')}"
        forwarded: list[float] = []
        direct: list[float] = []
        for _ in range(args.rounds):
            start = time.perf_counter()
            assert _fetch(socket.create_connection(("127.0.0.1", port), timeout=60), "/big") == size
            forwarded.append(size / (time.perf_counter() - start) / 1e6)
            sock = socket_in(board_ns)
            sock.settimeout(60)
            sock.connect((pod_ip, HTTP_PORT))
            start = time.perf_counter()
            assert _fetch(sock, "/big") == size
            direct.append(size / (time.perf_counter() - start) / 1e6)
    finally:
        pf.terminate()
        pf.wait(10)

    k50, k99 = _pct(via_kubectl, 50) * 1000, _pct(via_kubectl, 99) * 1000
    d50, d99 = _pct(via_docker, 50) * 1000, _pct(via_docker, 99) * 1000
    f, d = statistics.median(forwarded), statistics.median(direct)
    load = Path("/proc/loadavg").read_text().split()[0]
    print(f"load average at the end: {load}")
    print("| figure | pikube | direct | ratio (target) |")
    print("|---|---|---|---|")
    print(f"| exec round trip p50 ({args.execs} runs) | {k50:.0f} ms | {d50:.0f} ms (docker exec) | "
          f"{k50 / d50:.2f}x (≤ 2x: {'met' if k50 / d50 <= 2 else 'not met'}) |")
    print(f"| exec round trip p99 | {k99:.0f} ms | {d99:.0f} ms | {k99 / d99:.2f}x |")
    print(f"| port-forward {args.megabytes} MB, median of {args.rounds} | {f:.0f} MB/s | {d:.0f} MB/s (pod IP from "
          f"its board) | {f / d:.2f}x (≥ 0.5x: {'met' if f / d >= 0.5 else 'not met'}) |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--execs", type=int, default=40, help="exec round trips per side")
    parser.add_argument("--rounds", type=int, default=5, help="transfers per side (median reported)")
    parser.add_argument("--megabytes", type=int, default=100)
    parser.add_argument("--docker-host", default="", help="use this engine instead of a private one")
    args = parser.parse_args()
    for tool in ("docker", "nsenter", "nft", "ip"):
        if shutil.which(tool) is None:
            raise SystemExit(f"bench.streaming needs {tool}")
    if not os.path.exists(KUBECTL):
        raise SystemExit(f"bench.streaming needs kubectl 1.33 at {KUBECTL}")
    from agent.runtime import localimages as images
    from pikube.dev import engine as engines

    tmp = Path(tempfile.mkdtemp(prefix="pikube-streambench-"))
    engine = engines.connect(args.docker_host) if args.docker_host else engines.start(tmp / "engine")
    client = engine.client()
    try:
        images.ensure(client.api)
        dev_images = argparse.Namespace(busybox=images.BUSYBOX_IMAGE, pause=images.PAUSE_IMAGE)
        workdir = tmp / "lab"
        workdir.mkdir()
        with cluster_up("host-gw", workdir, engine.host, client, dev_images, ("b1", "b2")) as c:
            measure(c, args)
    finally:
        client.close()
        if engine.started:
            engines.stop(engine)
            engines.remove_files(tmp / "engine")
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
