"""The pod network and service proxy of three real agents, for each backend (host-gw and vxlan).

Pods on different boards reach each other by IP; a ClusterIP spreads requests
over endpoints on other boards; a NodePort answers on every board from a client
on the LAN; a hostPort on its board; pods reach the LAN masqueraded; scaling a
Deployment changes every board's rules within seconds; deleted pods free their
addresses; restarting agents keeps established connections; a deleted Node's
routes go from the other boards; and `agent.teardown.reset` leaves nothing.
The last test tears the cluster down, so it stays last in the file.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest

from tests.network.conftest import (
    BOARDS,
    HTTP_PORT,
    NetCluster,
    assert_root_untouched,
    new_name,
    run,
    wait_for,
)

pytestmark = pytest.mark.integration

ECHO_PORT = 9000
Obj = dict[str, Any]


@dataclass
class Workloads:
    c: NetCluster
    web_ip: str
    node_port: int
    echo_ip: str


@pytest.fixture(scope="module")
def w(net_cluster: NetCluster) -> Workloads:
    """httpd pods web-b2 and web-b3 behind NodePort service `web`; solo-b1 (httpd too) as the client pod;
    an echo server (busybox nc) on b3 behind ClusterIP service `echo`."""
    c = net_cluster
    c.create_pod("solo-b1", "b1", {"app": "solo"})
    c.create_pod("web-b2", "b2", {"app": "web"})
    c.create_pod("web-b3", "b3", {"app": "web"})
    c.create_pod("echo-b3", "b3", {"app": "echo"}, command=["nc", "-ll", "-p", str(ECHO_PORT), "-e", "cat"],
                 ready_port=ECHO_PORT)
    web = c.service("web", {"app": "web"}, 80, HTTP_PORT, kind="NodePort")
    echo = c.service("echo", {"app": "echo"}, ECHO_PORT, ECHO_PORT)
    c.wait_ready("solo-b1", "web-b2", "web-b3", "echo-b3")
    assert len(c.wait_rules("web", 80)) == 2
    assert len(c.wait_rules("echo", ECHO_PORT)) == 1
    return Workloads(c, web["spec"]["clusterIP"], int(web["spec"]["ports"][0]["nodePort"]),
                     echo["spec"]["clusterIP"])


def wait_answers(c: NetCluster, pod: str, url: str, want: set[str], tries: int = 20) -> list[str]:
    """Fetch `url` from `pod` until every answer in `want` was seen (rules may lag the API by a sync)."""
    seen: list[str] = []
    for _ in range(5):
        seen = c.fetch_from_pod(pod, [url], each=tries)
        if set(seen) == want:
            return seen
        time.sleep(0.5)
    raise AssertionError(f"{url} from {pod}: answers {Counter(seen)}, wanted {sorted(want)}")


def test_pods_on_different_boards_reach_each_other(w: Workloads) -> None:
    c = w.c
    pods = {"solo-b1": "b1", "web-b2": "b2", "web-b3": "b3"}
    ips = {name: c.pod_ip(name) for name in pods}
    cidrs = {(c.get(f"/api/v1/nodes/{c.node(board)}") or {})["spec"]["podCIDR"] for board in BOARDS}
    assert len(cidrs) == 3, cidrs
    for name in pods:
        others = [other for other in pods if other != name]
        got = c.fetch_from_pod(name, [f"http://{ips[o]}:{HTTP_PORT}/" for o in others])
        assert got == others, f"from {name} ({ips[name]}): {got}"


def test_a_clusterip_spreads_requests_over_endpoints_on_other_boards(w: Workloads) -> None:
    c = w.c
    seen = wait_answers(c, "solo-b1", f"http://{w.web_ip}/", {"web-b2", "web-b3"}, tries=40)
    counts = Counter(seen)
    assert min(counts.values()) >= 5, f"random balancing should split 40 requests: {counts}"
    # The board itself (the node's own traffic, nat output hook) reaches it too.
    assert c.fetch_from_board("b1", f"http://{w.web_ip}/") in ("web-b2", "web-b3")
    # An endpoint reaches its own service, itself included (hairpin through its own bridge port).
    wait_answers(c, "web-b2", f"http://{w.web_ip}/", {"web-b2", "web-b3"})


def test_client_ip_affinity_keeps_a_client_on_one_endpoint(w: Workloads) -> None:
    c = w.c
    sticky = c.service(new_name("sticky"), {"app": "web"}, 80, HTTP_PORT, affinity=True)
    c.wait_rules(sticky["metadata"]["name"], 80)
    seen = c.fetch_from_pod("solo-b1", [f"http://{sticky['spec']['clusterIP']}/"], each=12)
    assert len(seen) == 12 and len(set(seen)) == 1 and seen[0] in ("web-b2", "web-b3"), seen


def test_a_nodeport_answers_on_every_board_from_the_lan(w: Workloads) -> None:
    c = w.c
    for board in BOARDS:
        answers = {c.fetch_from_board("client", f"http://{c.address(board)}:{w.node_port}/") for _ in range(6)}
        assert answers and answers <= {"web-b2", "web-b3"}, f"NodePort on {board}: {answers}"


def test_a_service_without_endpoints_is_refused_at_once(w: Workloads) -> None:
    c = w.c
    empty = c.service(new_name("empty"), {"app": "nobody"}, 80, HTTP_PORT, kind="NodePort")
    node_port, cluster_ip = empty["spec"]["ports"][0]["nodePort"], empty["spec"]["clusterIP"]
    wait_for("the service on every board", lambda: all(
        f"{cluster_ip} . tcp . 80" in c.in_board(b, "nft", "list", "set", "ip", "pikube", "no-endpoints").stdout
        for b in BOARDS), 10)
    started = time.monotonic()
    assert c.fetch_from_pod("solo-b1", [f"http://{cluster_ip}/"], seconds=5) == ["FAILED"]
    assert c.fetch_from_board("client", f"http://{c.address('b2')}:{node_port}/", seconds=5) == ""
    assert time.monotonic() - started < 4, "a service without endpoints must be refused, not left to time out"


def test_a_host_port_is_published_on_its_board(w: Workloads) -> None:
    c = w.c
    name = new_name("hostport")
    c.create_pod(name, "b2", {"app": "hostport"}, ports=[{"containerPort": HTTP_PORT, "hostPort": 8081}])
    c.wait_ready(name)
    wait_for("hostPort answers", lambda: c.fetch_from_board("client", f"http://{c.address('b2')}:8081/") == name, 10)
    assert c.fetch_from_board("client", f"http://{c.address('b3')}:8081/") == ""  # only on its own board
    c.delete_pod(name)
    wait_for("hostPort closed", lambda: c.fetch_from_board("client", f"http://{c.address('b2')}:8081/") == "", 10)


def test_pods_reach_the_lan_masqueraded(w: Workloads, tmp_path: Any) -> None:
    """The client namespace has no route to the pod range: an answer proves the source was the board's."""
    c = w.c
    (tmp_path / "index.html").write_text("lan-says-hi\n")
    server = subprocess.Popen(["ip", "netns", "exec", c.netns("client"), "/bin/busybox", "httpd", "-f", "-p", "8090",
                               "-h", str(tmp_path)])
    try:
        url = f"http://{c.address('client')}:8090/"
        wait_for("LAN server up", lambda: c.fetch_from_board("b1", url) == "lan-says-hi")
        assert c.fetch_from_pod("solo-b1", [url]) == ["lan-says-hi"]
        assert "10.244." not in c.in_board("client", "ip", "route").stdout
    finally:
        server.kill()
        server.wait()


def test_scaling_a_deployment_updates_every_board_within_seconds(w: Workloads) -> None:
    c = w.c
    name = "scaled"
    labels = {"app": name}
    c.api("POST", "/apis/apps/v1/namespaces/default/deployments", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
                "name": "main", "image": c.images.busybox, "command": ["sh", "-c", " ".join(
                    ["hostname > /var/www/index.html; exec httpd -f -p", str(HTTP_PORT), "-h /var/www"])],
                "readinessProbe": {"tcpSocket": {"port": HTTP_PORT}, "periodSeconds": 1}}]}}}})
    cluster_ip = c.service(name, labels, 80, HTTP_PORT)["spec"]["clusterIP"]
    delays = []
    for replicas in (1, 4, 2):
        c.api("PATCH", f"/apis/apps/v1/namespaces/default/deployments/{name}", {"spec": {"replicas": replicas}},
              content_type="application/merge-patch+json")
        ips = wait_for(f"{replicas} ready endpoints", lambda n=replicas: (e := c.endpoint_ips(name)) and len(e) == n
                       and e, 90, 0.05)
        changed = time.monotonic()
        wait_for(f"rules for {sorted(ips)} on every board",
                 lambda ips=ips: all(c.rule_endpoints(b, name, 80) == ips for b in BOARDS), 10, 0.05)
        delays.append(time.monotonic() - changed)
        pods = c.get(f"/api/v1/namespaces/default/pods?labelSelector=app%3D{name}") or {}
        names = {p["metadata"]["name"] for p in pods.get("items") or []
                 if p.get("status", {}).get("podIP") in ips and not p["metadata"].get("deletionTimestamp")}
        assert len(names) == replicas
        wait_answers(c, "solo-b1", f"http://{cluster_ip}/", names, tries=8 * replicas)
    print(f"rules followed Endpoints in {[round(d, 2) for d in delays]} s")
    assert max(delays) < 3.0, f"Endpoints change → rules on all three boards took {delays}"
    c.api("DELETE", f"/apis/apps/v1/namespaces/default/deployments/{name}", ok=(200, 202))


def test_deleting_pods_frees_their_addresses(w: Workloads) -> None:
    from agent.network.names import host_ifname

    c = w.c
    names = [new_name("tmp") for _ in range(2)]
    for name in names:
        c.create_pod(name, "b2", {"app": "tmp"})
    pods = c.wait_ready(*names)
    uids = {name: pods[name]["metadata"]["uid"] for name in names}
    ipam = c.data_dir("b2") / "ipam.json"

    def allocations() -> dict[str, str]:
        return dict(json.loads(ipam.read_text())["allocations"])

    for name in names:
        assert allocations()[uids[name]] == pods[name]["status"]["podIP"]
        assert host_ifname(uids[name]) in c.in_board("b2", "ip", "-o", "link").stdout
    for name in names:
        c.delete_pod(name)
    wait_for("addresses released", lambda: not set(uids.values()) & set(allocations()), 15)
    links = c.in_board("b2", "ip", "-o", "link").stdout
    assert not [uid for uid in uids.values() if host_ifname(uid) in links], links


def _service(c: NetCluster, name: str, selector: dict[str, str], port: int, kind: str, **spec: Any) -> Obj:
    body = {"type": kind, "selector": selector, "ports": [{"port": port, "targetPort": HTTP_PORT}], **spec}
    return c.api("POST", "/api/v1/namespaces/default/services",
                 {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": body})


def _ingress(c: NetCluster, name: str) -> set[str]:
    svc = c.get(f"/api/v1/namespaces/default/services/{name}") or {}
    return {i["ip"] for i in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []}


def test_an_external_ip_answers_from_the_lan_every_board_and_pods(w: Workloads) -> None:
    """kubernetes-on-arm's flow: `kubectl expose … --external-ip=<a board's IP> --port=8300 --target-port=80`."""
    c = w.c
    name = new_name("ext")
    board_ip = c.address("b1")
    _service(c, name, {"app": "web"}, 8300, "ClusterIP", externalIPs=[board_ip])
    url = f"http://{board_ip}:8300/"
    wait_for("the external IP answers from the LAN", lambda: c.fetch_from_board("client", url) in ("web-b2", "web-b3"),
             10)
    answers = {c.fetch_from_board("client", url) for _ in range(8)}
    assert answers == {"web-b2", "web-b3"}, answers
    for board in ("b2", "b3"):  # the boards' own traffic (nat output)
        assert c.fetch_from_board(board, url) in ("web-b2", "web-b3")
    assert set(c.fetch_from_pod("solo-b1", [url], each=4)) <= {"web-b2", "web-b3"}
    c.api("DELETE", f"/api/v1/namespaces/default/services/{name}")
    wait_for("the rules gone with the service", lambda: c.fetch_from_board("client", url, seconds=2) == "", 10)


def test_kubernetes_on_arm_expose_flow_with_real_kubectl(w: Workloads, tmp_path: Any) -> None:
    """kubernetes-on-arm's acceptance tests #2-#4: `kubectl expose deployment hello-kube --type=LoadBalancer
    --external-ip=<board IP> --port=80`, then `curl <that IP>`; again with `--port=8300 --target-port=80`."""
    from tests.master.conftest import kubectl_path

    c = w.c
    config = tmp_path / "kubeconfig"
    text = c.master.kubeconfig.read_text()
    config.write_text(re.sub(r"server: https://[^\s]+", f"server: {c.url}", text))

    def kubectl(*args: str) -> str:
        proc = subprocess.run([kubectl_path("new"), "--kubeconfig", str(config), *args], capture_output=True,
                              text=True, timeout=60, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
        assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stdout}{proc.stderr}"
        return proc.stdout

    serve80 = "hostname > /var/www/index.html; exec httpd -f -p 80 -h /var/www"
    kubectl("create", "deployment", "hello-kube", f"--image={c.images.busybox}", "--replicas=2", "--",
            "sh", "-c", serve80)
    board_ip = c.address("b1")
    try:
        kubectl("rollout", "status", "deployment/hello-kube", "--timeout=90s")
        kubectl("expose", "deployment", "hello-kube", "--type=LoadBalancer", f"--external-ip={board_ip}", "--port=80")
        row = kubectl("get", "svc", "hello-kube", "--no-headers").split()
        assert board_ip in row[3].split(","), row  # EXTERNAL-IP
        pods = {p for p in kubectl("get", "pods", "-l", "app=hello-kube", "-o",
                                   "jsonpath={.items[*].metadata.name}").split()}
        for board in ("client", *BOARDS):
            wait_for(f"http://{board_ip}/ from {board}",
                     lambda b=board: c.fetch_from_board(b, f"http://{board_ip}/") in pods, 15)
        kubectl("delete", "svc", "hello-kube")
        kubectl("expose", "deployment", "hello-kube", "--type=LoadBalancer", f"--external-ip={board_ip}",
                "--port=8300", "--target-port=80", "--name=hello-kube-8300")
        for board in ("client", *BOARDS):
            wait_for(f"http://{board_ip}:8300/ from {board}",
                     lambda b=board: c.fetch_from_board(b, f"http://{board_ip}:8300/") in pods, 15)
    finally:
        for what in ("svc/hello-kube", "svc/hello-kube-8300", "deployment/hello-kube"):
            subprocess.run([kubectl_path("new"), "--kubeconfig", str(config), "delete", what, "--ignore-not-found"],
                           capture_output=True, timeout=60, env={"HOME": str(tmp_path)})


def test_a_load_balancer_answers_on_every_boards_address(w: Workloads) -> None:
    c = w.c
    name = new_name("lb")
    _service(c, name, {"app": "web"}, 8400, "LoadBalancer")
    boards = {c.address(b) for b in BOARDS}
    started = time.monotonic()
    wait_for("the boards' addresses as ingress", lambda: _ingress(c, name) == boards, 10)
    print(f"LoadBalancer ingress set {time.monotonic() - started:.2f} s after create")
    for board in BOARDS:
        url = f"http://{c.address(board)}:8400/"
        wait_for(f"{url} answers", lambda u=url: c.fetch_from_board("client", u) in ("web-b2", "web-b3"), 10)
    c.api("DELETE", f"/api/v1/namespaces/default/services/{name}")
    wait_for("released", lambda: c.fetch_from_board("client", f"http://{c.address('b1')}:8400/", seconds=2) == "",
             10)


def test_local_traffic_policy_keeps_the_clients_address_and_its_board(w: Workloads) -> None:
    c = w.c
    name = new_name("local")
    pod = f"{name}-b3"
    script = ("mkdir -p /www/cgi-bin && printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\n"
              "echo $REMOTE_ADDR\\n' > /www/cgi-bin/ip && chmod +x /www/cgi-bin/ip && "
              f"exec httpd -f -p {HTTP_PORT} -h /www")
    c.create_pod(pod, "b3", {"app": name}, command=["sh", "-c", script], ready_port=HTTP_PORT)
    c.wait_ready(pod)
    _service(c, name, {"app": name}, 8500, "LoadBalancer", externalTrafficPolicy="Local")
    # Only the board with an endpoint is listed.
    wait_for("ingress = the endpoint's board", lambda: _ingress(c, name) == {c.address("b3")}, 15)
    url = f"http://{c.address('b3')}:8500/cgi-bin/ip"
    seen = wait_for("an answer", lambda: c.fetch_from_board("client", url), 10)
    # busybox httpd listens on IPv6 and prints an IPv4 peer mapped: [::ffff:a.b.c.d]
    assert seen.removeprefix("[::ffff:").removesuffix("]") == c.address("client"), \
        f"the backend saw {seen}, not the client's own address"
    # A board without an endpoint drops outside traffic for the service's NodePort rather than forwarding it.
    node_port = (c.get(f"/api/v1/namespaces/default/services/{name}") or {})["spec"]["ports"][0]["nodePort"]
    assert c.fetch_from_board("client", f"http://{c.address('b1')}:{node_port}/cgi-bin/ip", seconds=2) == ""
    direct = c.fetch_from_board("client", f"http://{c.address('b3')}:{node_port}/cgi-bin/ip")
    assert direct.removeprefix("[::ffff:").removesuffix("]") == c.address("client")
    c.api("DELETE", f"/api/v1/namespaces/default/services/{name}")
    c.delete_pod(pod)


def _exchange(sock: socket.socket, text: bytes) -> bytes:
    sock.sendall(text)
    got = b""
    while not got.endswith(b"\n"):
        chunk = sock.recv(100)
        if not chunk:
            break
        got += chunk
    return got


def test_restarting_agents_keeps_established_connections(w: Workloads) -> None:
    from agent.kubelet.netns import connect

    c = w.c
    netns = c.pod_netns("solo-b1")
    via_service = connect(netns, w.echo_ip, ECHO_PORT, 5)
    direct = connect(netns, c.pod_ip("echo-b3"), ECHO_PORT, 5)
    try:
        assert _exchange(via_service, b"before\n") == b"before\n"
        assert _exchange(direct, b"before\n") == b"before\n"
        c.restart_agent("b1", signal.SIGTERM)   # the client's board
        c.restart_agent("b3", signal.SIGKILL)   # the server's board, as a crash
        assert _exchange(via_service, b"after\n") == b"after\n"
        assert _exchange(direct, b"after\n") == b"after\n"
        # The restarted agent reports the pod not ready until its probe passes again (as a kubelet does).
        c.wait_rules("echo", ECHO_PORT)
        fresh = connect(netns, w.echo_ip, ECHO_PORT, 5)
        with fresh:
            assert _exchange(fresh, b"new\n") == b"new\n"
    finally:
        via_service.close()
        direct.close()


def _reset(c: NetCluster, board: str) -> None:
    code = ("from pathlib import Path; from agent.teardown import reset; from core.settings import AgentSettings; "
            f"reset(AgentSettings(server={c.url!r}, node_name={c.node(board)!r}, "
            f"data_dir=Path({str(c.data_dir(board))!r}), docker_host={c.docker_host!r}))")
    run(["ip", "netns", "exec", c.netns(board), sys.executable, "-c", code], timeout=60, check=True)


def _leftovers(c: NetCluster, board: str) -> list[str]:
    found = []
    for line in c.in_board(board, "ip", "-o", "link").stdout.splitlines():
        ifname = line.split(":")[1].strip().split("@")[0]
        if ifname.startswith("pk") or ifname.startswith("pikube"):
            found.append(f"link {ifname}")
    for line in c.in_board(board, "ip", "-4", "route", "show", "table", "all").stdout.splitlines():
        if "10.244." in line or "10.96." in line or "proto 112" in line or "proto 113" in line:
            found.append(f"route {line}")
    tables = c.in_board(board, "nft", "list", "tables").stdout
    if "pikube" in tables:
        found.append(f"nft {tables.strip()}")
    rows = c.docker.api.containers(all=True, filters={"label": [f"pikube.io/node={c.node(board)}"]})
    found += [f"container {r['Names'][0]}" for r in rows]
    if (c.data_dir(board) / "ipam.json").exists():
        found.append("ipam.json")
    return found


def test_zz_a_deleted_node_loses_its_routes_and_reset_leaves_nothing(w: Workloads) -> None:
    c = w.c
    gone = c.get(f"/api/v1/nodes/{c.node('b3')}") or {}
    gone_cidr = gone["spec"]["podCIDR"]
    c.agents["b3"].stop()
    _reset(c, "b3")
    assert _leftovers(c, "b3") == []
    c.api("DELETE", f"/api/v1/nodes/{c.node('b3')}", ok=(200, 202))
    wait_for("the other boards forget b3",
             lambda: all(len(c.peer_routes(b)) == 1 and gone_cidr not in "".join(c.peer_routes(b))
                         for b in ("b1", "b2")), 10)
    if c.backend == "vxlan":
        for board in ("b1", "b2"):
            fdb = c.in_board(board, "bridge", "fdb", "show", "dev", "pikube.1").stdout
            assert c.address("b3") not in fdb and c.address("b1" if board == "b2" else "b2") in fdb, fdb
    for board in ("b1", "b2"):
        c.agents[board].stop()
        _reset(c, board)
        _reset(c, board)  # safe to repeat
    for board in BOARDS:
        assert _leftovers(c, board) == [], board
    assert_root_untouched()
