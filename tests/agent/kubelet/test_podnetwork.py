"""`--pod-network bridge`: an agent on a simulated board plugs each pod into `pikube0` with an address from
the podCIDR the master gave its node; probes, the pod's own traffic and `kubectl logs` all cross namespaces."""

from __future__ import annotations

import subprocess
import sys
import time
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any

import pytest

from tests.agent.kubelet.conftest import (
    AgentProcess,
    Cluster,
    condition,
    make_token,
    remove_node_containers,
    start_master_on,
    wait_node_ready,
)
from tests.master.conftest import free_port

pytestmark = pytest.mark.integration


def _in_board(netns: str, *argv: str, timeout: float = 5) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", netns, *argv], capture_output=True, text=True, timeout=timeout)


def test_bridge_network_gives_pods_addresses_from_the_node_podcidr(make_boards: Any, docker_engine: Any,
                                                                    docker_client: Any, dev_images: Any,
                                                                    tmp_path: Path) -> None:
    lan = make_boards(["w1"])
    board = lan.board("w1")
    master = start_master_on(str(lan.host_address), tmp_path / "master")
    url = f"https://{lan.host_address}:{master.port}"
    node = board.name
    argv = ["ip", "netns", "exec", board.netns, sys.executable, "-m", "pikube.cli", "agent", "--server", url,
            "--token", make_token(master), "--node-name", node, "--data-dir", str(tmp_path / "agent"),
            "--docker-host", docker_engine.host, "--pod-network", "bridge", "--log-port", str(free_port())]
    agent = AgentProcess(node=node, data_dir=tmp_path / "agent", log_path=tmp_path / "agent.log", argv=argv)
    session = master.session()
    session.verify = str(master.ca)
    c = Cluster(master=master, agent=agent, docker=docker_client, images=dev_images, session=session)
    try:
        agent.start()
        wait_node_ready(_RootUrl(c, url))
        cidr = ip_network(session.get(f"{url}/api/v1/nodes/{node}").json()["spec"]["podCIDR"])
        rc = _RootUrl(c, url)
        rc.create_pod({"metadata": {"name": "web"}, "spec": {"terminationGracePeriodSeconds": 1, "containers": [
            {"name": "httpd", "image": dev_images.busybox,
             "command": ["sh", "-c", "echo pod-says-hi > /var/www/index.html; exec httpd -f -p 8080 -h /var/www"],
             "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}}]}})
        pod = rc.wait_pod("web", lambda p: condition(p, "Ready") == "True", what="Ready")
        pod_ip = ip_address(pod["status"]["podIP"])
        assert pod_ip in cidr and pod["status"]["podIPs"] == [{"ip": str(pod_ip)}]
        assert pod["status"]["hostIP"] == str(board.address)
        got = _in_board(board.netns, "/bin/busybox", "wget", "-q", "-O", "-", f"http://{pod_ip}:8080/")
        assert got.stdout == "pod-says-hi\n", got.stderr
        inside = c.exec("web", "httpd", "ip", "-4", "addr", "show", "eth0")
        assert str(pod_ip) in inside
        assert str(cidr[1]) in c.exec("web", "httpd", "ip", "route")  # default route via the bridge
        _in_board(board.netns, "/bin/busybox", "wget", "-q", "-O", "-", f"http://{pod_ip}:8080/nothing")
        wide = rc.kubectl("get", "pod", "web", "-o", "wide").stdout
        assert str(pod_ip) in wide and node in wide
        assert rc.kubectl("logs", "web").returncode == 0  # the master reaches the board's log endpoint
        rc.delete_pod("web")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and rc.pod("web") is not None:
            time.sleep(0.2)
        links = _in_board(board.netns, "ip", "-o", "link").stdout
        assert "pikube0" in links
        assert " pk" not in links.replace("pikube0", ""), f"the pod's veth was left behind:\n{links}"
    finally:
        agent.stop()
        remove_node_containers(docker_client, node)
        master.stop()


class _RootUrl(Cluster):
    """The cluster helpers, talking to a master that listens on the LAN instead of loopback."""

    def __init__(self, c: Cluster, url: str) -> None:
        super().__init__(master=c.master, agent=c.agent, docker=c.docker, images=c.images, session=c.session)
        self._url = url

    def url(self, path: str) -> str:
        return self._url + path

