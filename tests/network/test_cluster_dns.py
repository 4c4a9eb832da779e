"""Cluster DNS from pods on every board: three real agents answer on 10.96.0.10 from their own informers.

One host-gw lab (DNS does not depend on the backend): boards b1..b3, a pod on each
asking with busybox `nslookup` and `wget`, httpd pods behind a ClusterIP and a
headless service. An external name is served by Debian's dnsmasq the test runs in
the lab's `client` namespace, the boards' only upstream (their `--resolv-conf`),
so no query leaves the machine. The bad-input test sends malformed packets, a
127-label name and a 10,000-query burst from inside a pod while a new pod starts.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require
from tests.network.conftest import BOARDS, HTTP_PORT, NetCluster, cluster_up, new_name, run, wait_for

pytestmark = pytest.mark.integration
Obj = dict[str, Any]
SLEEP = ["sleep", "3600"]
EXT_IP = "192.0.2.7"


@pytest.fixture(scope="module")
def dns_lab(tmp_path_factory: pytest.TempPathFactory, docker_engine: Any, docker_client: Any,
            dev_images: Any) -> Iterator[NetCluster]:
    for tool in ("ip", "nft", "nsenter", "docker"):
        require(shutil.which(tool) is not None, f"{tool} is not installed")
    require(shutil.which("dnsmasq") is not None, "dnsmasq is not installed (apt-get install dnsmasq-base)")
    with cluster_up("host-gw", tmp_path_factory.mktemp("dns"), docker_engine.host, docker_client, dev_images) as c:
        upstream = subprocess.Popen(
            ["ip", "netns", "exec", c.netns("client"), "dnsmasq", "--keep-in-foreground", "--no-resolv",
             "--no-hosts", "--bind-interfaces", f"--listen-address={c.address('client')}", "--port=53",
             f"--address=/ext.example/{EXT_IP}", "--address=/#/", "--pid-file=", "--user=root"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for board in BOARDS:
                c.create_pod(f"cli-{board}", board, {"app": "cli"}, command=SLEEP)
            c.create_pod("web-b2", "b2", {"app": "web"})
            c.create_pod("web-b3", "b3", {"app": "web"})
            c.api("POST", "/api/v1/namespaces/default/services", {
                "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                "spec": {"selector": {"app": "web"},
                         "ports": [{"name": "http", "port": 80, "targetPort": HTTP_PORT, "protocol": "TCP"}]}})
            c.wait_ready(*(f"cli-{b}" for b in BOARDS), "web-b2", "web-b3")
            c.wait_rules("web", 80)
            yield c
        finally:
            upstream.terminate()
            upstream.wait(10)


def lookup(c: NetCluster, pod: str, name: str, qtype: str = "") -> str:
    option = f"-type={qtype} " if qtype else ""
    return c.exec(pod, f"nslookup {option}{name} 2>&1", timeout=20)


def addresses(output: str) -> set[str]:
    """The addresses busybox nslookup printed for the name (not the server's)."""
    answer = output.split("Name:", 1)[1] if "Name:" in output else ""
    return set(re.findall(r"Address(?: \d+)?:\s*(\d+\.\d+\.\d+\.\d+)", answer))


def resolve(c: NetCluster, pod: str, name: str) -> str:
    """The address the C library's resolver gives `name` inside `pod` ("" if none), as ping prints it."""
    first = c.exec(pod, f"ping -c 1 -W 1 {name} 2>&1 | head -1", timeout=20)
    found = re.search(r"\((\d+\.\d+\.\d+\.\d+)\)", first)
    return found.group(1) if found else ""


def cluster_ip(c: NetCluster, name: str, ns: str = "default") -> str:
    return str((c.get(f"/api/v1/namespaces/{ns}/services/{name}") or {})["spec"]["clusterIP"])


def test_kube_dns_service_exists_with_the_cluster_dns_address(dns_lab: NetCluster) -> None:
    svc = dns_lab.get("/api/v1/namespaces/kube-system/services/kube-dns") or {}
    assert svc["spec"]["clusterIP"] == "10.96.0.10"
    assert {(p["port"], p["protocol"]) for p in svc["spec"]["ports"]} == {(53, "UDP"), (53, "TCP")}


def test_pods_resolv_conf_points_at_the_cluster_dns(dns_lab: NetCluster) -> None:
    conf = dns_lab.exec("cli-b1", "cat /etc/resolv.conf")
    assert conf == ("nameserver 10.96.0.10\nsearch default.svc.cluster.local svc.cluster.local cluster.local\n"
                    "options ndots:5\n")


@pytest.mark.parametrize("board", BOARDS)
def test_services_resolve_from_a_pod_on_every_board(dns_lab: NetCluster, board: str) -> None:
    c, pod = dns_lab, f"cli-{board}"
    web = cluster_ip(c, "web")
    assert addresses(lookup(c, pod, "web.default.svc.cluster.local")) == {web}
    assert addresses(lookup(c, pod, "web")) == {web}
    # busybox's nslookup applies the search list only to names without a dot; the C library's resolver
    # (what ping and wget use) follows resolv.conf's ndots:5 and the search list, as applications do.
    assert resolve(c, pod, "kubernetes.default") == "10.96.0.1"
    assert addresses(lookup(c, pod, "kubernetes.default.svc.cluster.local")) == {"10.96.0.1"}
    answers = c.fetch_from_pod(pod, ["http://web/", "http://web.default.svc.cluster.local:80/"], each=4)
    assert set(answers) <= {"web-b2", "web-b3"} and "FAILED" not in answers, answers


def test_srv_for_a_named_port_and_the_reverse_of_a_cluster_ip(dns_lab: NetCluster) -> None:
    c = dns_lab
    srv = lookup(c, "cli-b2", "_http._tcp.web.default.svc.cluster.local", "srv")
    assert re.search(r"0 100 80 web\.default\.svc\.cluster\.local", srv), srv
    web = cluster_ip(c, "web")
    reverse = lookup(c, "cli-b3", web)
    assert "web.default.svc.cluster.local" in reverse, reverse



def test_an_external_name_is_forwarded_to_the_boards_upstream(dns_lab: NetCluster) -> None:
    c = dns_lab
    for board in BOARDS:
        assert addresses(lookup(c, f"cli-{board}", "ext.example")) == {EXT_IP}
    assert resolve(c, "cli-b1", "ext.example") == EXT_IP
    c.api("POST", "/api/v1/namespaces/default/services", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "alias"},
        "spec": {"type": "ExternalName", "externalName": "ext.example"}})
    def alias() -> str | None:
        found = lookup(c, "cli-b2", "alias.default.svc.cluster.local")
        return found if EXT_IP in found else None

    out = wait_for("alias resolves", alias, 10, 0.2)
    assert "canonical name = ext.example" in out, out


def test_a_headless_service_answers_its_ready_pods_and_drops_one_that_stops_being_ready(dns_lab: NetCluster) -> None:
    c = dns_lab
    # httpd in the background, so killing it makes the pod unready without ending it
    serve = ["sh", "-c", f"hostname > /tmp/index.html; httpd -p {HTTP_PORT} -h /tmp; exec sleep 3600"]
    for name, board in (("db-0", "b1"), ("db-1", "b3")):
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "db"}},
               "spec": {"nodeName": c.node(board), "hostname": name, "subdomain": "db",
                        "terminationGracePeriodSeconds": 1,
                        "containers": [{"name": "main", "image": c.images.busybox, "command": serve,
                                        "ports": [{"name": "pg", "containerPort": HTTP_PORT}],
                                        "readinessProbe": {"tcpSocket": {"port": HTTP_PORT}, "periodSeconds": 1}}]}}
        c.api("POST", "/api/v1/namespaces/default/pods", pod)
    c.api("POST", "/api/v1/namespaces/default/services", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "db"},
        "spec": {"clusterIP": "None", "selector": {"app": "db"},
                 "ports": [{"name": "pg", "port": 5432, "targetPort": "pg", "protocol": "TCP"}]}})
    ips = {name: c.pod_ip(name) for name in c.wait_ready("db-0", "db-1")}
    both = set(ips.values())
    wait_for("both db pods in DNS", lambda: addresses(lookup(c, "cli-b2", "db.default.svc.cluster.local")) == both,
             10, 0.2)
    assert addresses(lookup(c, "cli-b3", "db-0.db.default.svc.cluster.local")) == {ips["db-0"]}
    srv = lookup(c, "cli-b1", "_pg._tcp.db.default.svc.cluster.local", "srv")
    assert "db-0.db.default.svc.cluster.local" in srv and "db-1.db.default.svc.cluster.local" in srv, srv
    assert f"{ips['db-0']}\tdb-0.db.default.svc.cluster.local\tdb-0" in c.exec("db-0", "cat /etc/hosts")
    assert c.exec("db-0", "hostname").strip() == "db-0"
    c.exec("db-1", "killall httpd")
    wait_for("db-1 out of DNS", lambda: addresses(lookup(c, "cli-b2", "db.default.svc.cluster.local"))
             == {ips["db-0"]}, 15, 0.2)
    assert "NXDOMAIN" in lookup(c, "cli-b1", "db-1.db.default.svc.cluster.local")


def test_a_new_service_resolves_within_2s_and_a_deleted_one_stops(dns_lab: NetCluster) -> None:
    c = dns_lab
    name = new_name("quick")
    fqdn = f"{name}.default.svc.cluster.local"
    # A pod polls for the name every 50 ms and says so the moment it first resolves (then: stops resolving);
    # the test takes the time when that line arrives.
    poll = ("i=0; while [ $i -lt 200 ]; do if {neg} nslookup {fqdn} 2>/dev/null | grep -q '^Name:'; then "
            "echo seen; exit 0; fi; i=$((i+1)); sleep 0.05; done; echo never")

    def watch(pod: str, neg: str) -> subprocess.Popen[str]:
        return subprocess.Popen(["docker", "-H", c.docker_host, "exec", c._container(pod, "app"), "sh", "-c",
                                 poll.format(fqdn=fqdn, neg=neg)], stdout=subprocess.PIPE, text=True)

    def seen_after(watcher: subprocess.Popen[str], since: float) -> float:
        assert watcher.stdout is not None
        line = watcher.stdout.readline().strip()
        took = time.time() - since
        watcher.wait(10)
        assert line == "seen", line
        return took

    watcher = watch("cli-b3", "")
    created = time.time()
    c.api("POST", "/api/v1/namespaces/default/services", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": HTTP_PORT}]}})
    assert seen_after(watcher, created) <= 2.0
    watcher = watch("cli-b1", "!")
    deleted = time.time()
    c.api("DELETE", f"/api/v1/namespaces/default/services/{name}")
    assert seen_after(watcher, deleted) <= 2.0


def test_dns_policy_none_gives_exactly_the_asked_resolv_conf(dns_lab: NetCluster) -> None:
    c = dns_lab
    c.api("POST", "/api/v1/namespaces/default/pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "custom-dns"},
        "spec": {"nodeName": c.node("b2"), "dnsPolicy": "None", "terminationGracePeriodSeconds": 1,
                 "dnsConfig": {"nameservers": ["192.0.2.53"], "searches": ["a.example", "b.example"],
                               "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]},
                 "containers": [{"name": "main", "image": c.images.busybox, "command": SLEEP}]}})
    c.wait_ready("custom-dns")
    assert c.exec("custom-dns", "cat /etc/resolv.conf") == (
        "nameserver 192.0.2.53\nsearch a.example b.example\noptions ndots:2 edns0\n")
    c.delete_pod("custom-dns", wait=False)


BLAST = r'''
import os, socket, struct, sys, threading, time
server = (sys.argv[1], 53)
def query(name, qid):
    labels = b"".join(bytes([len(x)]) + x for x in name) + b"\0"
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + labels + b"\0\1\0\1"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
s.settimeout(0.5)
bad = [b"", b"\x00" * 5, os.urandom(12), os.urandom(512), query([b"web"], 1)[:-3],
       query([b"c"] * 128, 2), struct.pack("!HHHHHH", 3, 0x8180, 1, 0, 0, 0) + b"\0\0\1\0\1"]
for packet in bad:
    s.sendto(packet, server)
long = query([b"b"] * 126 + [b"x"], 4)
s.sendto(long, server)
names = [[b"web", b"default", b"svc", b"cluster", b"local"], [b"nope", b"default", b"svc", b"cluster", b"local"],
         [b"ext", b"example"]]
answered = 0
def count():
    global answered
    try:
        while True:
            s.recv(4096)
            answered += 1
    except OSError:
        pass
reader = threading.Thread(target=count)
reader.start()
start = time.monotonic()
for i in range(10000):
    s.sendto(query(names[i % 3], i % 65536), server)
reader.join()
print(answered, round(time.monotonic() - start, 2))
'''


def test_bad_input_and_a_burst_leave_dns_answering_and_pods_starting(dns_lab: NetCluster) -> None:
    c = dns_lab
    script = Path(c.workdir) / "blast.py"
    script.write_text(BLAST)
    blast = subprocess.Popen(["nsenter", f"--net={c.pod_netns('cli-b1')}", sys.executable, str(script), "10.96.0.10"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    c.create_pod("during-burst", "b1", {"app": "burst"})
    out, err = blast.communicate(timeout=120)
    assert blast.returncode == 0, err
    answered = int(out.split()[0])
    print("burst: answered, seconds:", out.strip())
    assert answered > 1000, out  # most are answered (a UDP socket buffer may drop some)
    c.wait_ready("during-burst", timeout=60)
    for board in BOARDS:
        assert addresses(lookup(c, f"cli-{board}", "web.default.svc.cluster.local")) == {cluster_ip(c, "web")}
    assert addresses(lookup(c, "cli-b1", "ext.example")) == {EXT_IP}
    log = c.agents["b1"].log_path.read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]
    c.delete_pod("during-burst", wait=False)
    run(["true"])


def test_a_large_headless_answer_is_truncated_over_udp_and_fetched_over_tcp(dns_lab: NetCluster) -> None:
    c = dns_lab
    many = [f"10.244.200.{i}" for i in range(1, 61)]  # 60 A records: far beyond 512 bytes
    c.api("POST", "/api/v1/namespaces/default/services", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "many"},
        "spec": {"clusterIP": "None", "ports": [{"port": 80}]}})
    c.api("POST", "/api/v1/namespaces/default/endpoints", {
        "apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "many"},
        "subsets": [{"addresses": [{"ip": ip} for ip in many], "ports": [{"port": 80}]}]})
    # The C library sees TC over UDP, asks again over TCP, and gets every address.
    wait_for("the big answer", lambda: resolve(c, "cli-b1", "many.default.svc.cluster.local") in many, 10, 0.2)
    # busybox's nslookup does not retry over TCP: it gets the truncated answer (no records), never a cut list
    out = c.exec("cli-b3", "nslookup many.default.svc.cluster.local 2>&1")
    assert "Server:" in out and addresses(out) == set(), out
