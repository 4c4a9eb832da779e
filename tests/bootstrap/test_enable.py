"""enable-master and enable-worker for real: boards as network namespaces, a real master, agents and Docker.

Each board runs the commands a Pi runs (`--init none`, its own config and data
dirs). Join failures give their own sentence and leave nothing installed; a
second enable-master changes nothing; killing every pikube process of a board
(as a reboot does) and starting again brings it back Ready with its pods.
"""

from __future__ import annotations

import json
import os
import signal
from typing import Any

import pytest

from core import processes
from core.kubeconfig import read_kubeconfig
from pikube.bootstrap import api, supervisor
from pikube.bootstrap.layout import AGENT_UNIT, MASTER_UNIT
from pikube.dev import boards
from tests.bootstrap.conftest import Pis, wait
from tests.bootstrap.fakes import tree

pytestmark = pytest.mark.integration


def _last_line(proc: Any) -> str:
    lines = (proc.stderr or proc.stdout).strip().splitlines()
    return lines[-1] if lines else ""


def _nothing_installed(pis: Pis, board: str) -> None:
    lay = pis.layout(board)
    assert not lay.config_dir.exists() and not lay.data_dir.exists()
    assert pis.pikube_pids(board) == []
    assert [link for link in pis.links(board) if link.startswith("pikube")] == []


def test_the_master_board_is_ready_with_its_roles(pis: Pis) -> None:
    lay = pis.layout("pi-1")
    assert pis.node_ready("pi-1")
    # The master gives its own board (named in its unit) the node-role labels: a node may not set them.
    assert "--board-node pi-1" in (lay.supervised_units / MASTER_UNIT).read_text()
    wait(lambda: "node-role.kubernetes.io/control-plane" in pis.api("/api/v1/nodes/pi-1")["metadata"]["labels"],
         what="the master's role labels on pi-1")
    node = pis.api("/api/v1/nodes/pi-1")
    labels = node["metadata"]["labels"]
    assert "node-role.kubernetes.io/master" in labels and labels["pikube.io/network-backend"] == "host-gw"
    assert labels["pikube.io/board-role"] == "master"
    assert {a["type"]: a["address"] for a in node["status"]["addresses"]}["InternalIP"] == str(pis.master.address)
    # The admin kubeconfig names the advertised address; kubectl's copy is the same file.
    assert lay.admin_kubeconfig.read_bytes() == pis.kubeconfig.read_bytes()
    assert f"server: https://{pis.master.address}:6443" in pis.kubeconfig.read_text()
    assert os.stat(lay.admin_kubeconfig).st_mode & 0o777 == 0o600
    assert {p.name for p in lay.supervised_units.glob("*.service")} == {MASTER_UNIT, AGENT_UNIT}


def test_a_worker_joins_and_running_it_again_changes_nothing(pis: Pis) -> None:
    first = pis.enable_worker("pi-2")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Node pi-2 joined" in first.stdout and "is Ready" in first.stdout
    nodes = pis.kubectl("get", "nodes", "-o", "wide", "-L", "kubernetes.io/arch").stdout
    row = next(line.split() for line in nodes.splitlines() if line.startswith("pi-2"))
    assert row[1:3] == ["Ready", "worker"] and str(pis.board("pi-2").address) in row
    again = pis.enable_worker("pi-2")
    assert again.returncode == 0 and "Nothing changed" in again.stdout


def test_a_second_enable_master_changes_nothing(pis: Pis) -> None:
    lay = pis.layout("pi-1")
    before = (tree(lay.config_dir), tree(lay.agent_data / "pki"), pis.kubeconfig.read_bytes(),
              sorted(pis.pikube_pids("pi-1")))
    tokens = pis.pikube("pi-1", "token", *pis.dirs("pi-1")[:2], "list").stdout
    again = pis.pikube("pi-1", "enable-master", "--init", "none", *pis.dirs("pi-1"), "--advertise-address",
                       str(pis.master.address), "--docker-host", pis.docker_host, "--node-name", "pi-1",
                       "--user-kubeconfig", str(pis.kubeconfig))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Nothing changed: this board is already the master" in again.stdout
    assert f"sudo enable-worker {pis.master.address} --token {pis.token}" in again.stdout
    after = (tree(lay.config_dir), tree(lay.agent_data / "pki"), pis.kubeconfig.read_bytes(),
             sorted(pis.pikube_pids("pi-1")))
    assert after == before  # same files (contents and times) and the same processes: nothing restarted
    assert pis.pikube("pi-1", "token", *pis.dirs("pi-1")[:2], "list").stdout == tokens


def _wrong_secret(token: str) -> str:
    return token.split("::")[0] + "::zzzzzz.0000000000000000"


def _other_ca(token: str) -> str:
    return "pikube-" + "0" * 64 + "::" + token.split("::")[1]


@pytest.mark.parametrize(("case", "expected"), [
    ("unreachable", "cannot reach a pikube master at {addr}:6444 (Connection refused): check the address, and "
                    "that enable-master has run on that board."),
    ("ca-mismatch", "the master at {addr}:6443 is not the cluster this token was made for (its CA does not match "
                    "the hash in the token, so no secret was sent): check the address and the token."),
    ("wrong-token", "the master at {addr}:6443 refused the join token (wrong, expired or deleted): make a new one "
                    "on the master with `sudo pikube token create`."),
    ("name-in-use", "the node name 'pi-1' is already used by a Ready board of this cluster: choose another with "
                    "--node-name, or remove that node first (`kubectl delete node pi-1`)."),
])
def test_a_failed_join_says_why_and_leaves_nothing(pis: Pis, case: str, expected: str) -> None:
    addr = str(pis.master.address)
    proc = {
        "unreachable": lambda: pis.enable_worker("pi-3", master=f"{addr}:6444"),
        "ca-mismatch": lambda: pis.enable_worker("pi-3", token=_other_ca(pis.token)),
        "wrong-token": lambda: pis.enable_worker("pi-3", token=_wrong_secret(pis.token)),
        "name-in-use": lambda: pis.enable_worker("pi-3", "--node-name", "pi-1"),
    }[case]()
    assert proc.returncode == 1
    assert _last_line(proc) == "pikube: " + expected.format(addr=addr)
    _nothing_installed(pis, "pi-3")
    assert pis.node_ready("pi-1")  # the board whose name was wanted is untouched


def _pod(pis: Pis, name: str, node: str) -> dict[str, Any]:
    from agent.runtime.localimages import BUSYBOX_IMAGE

    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {
        "nodeName": node, "containers": [{"name": "web", "image": BUSYBOX_IMAGE, "imagePullPolicy": "Never",
                                          "command": ["httpd", "-f", "-p", "80", "-h", "/var/www"]}]}}


def _pod_running(pis: Pis, name: str) -> dict[str, Any] | None:
    pod = pis.api(f"/api/v1/namespaces/default/pods/{name}")
    return pod if (pod.get("status") or {}).get("phase") == "Running" else None


def _containers(pis: Pis, node: str) -> set[str]:
    return {c.id for c in pis.docker.containers.list(filters={"label": f"pikube.io/node={node}"})}


def _answers(pis: Pis, board: str, ip: str) -> bool:
    proc = boards.run_in_board(pis.board(board), ["busybox", "wget", "-qO-", f"http://{ip}/"], timeout=10)
    return proc.stdout.strip() == "pikube busybox"


def _reboot(pis: Pis, board: str) -> None:
    """Kill every pikube process of the board at once (SIGKILL, as a power cut), then boot: `pikube start`."""
    pids = pis.pikube_pids(board)
    assert len(pids) >= 2, pids
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    assert processes.wait_gone(pids, 10) == []
    started = pis.pikube(board, "start", "--config-dir", str(pis.layout(board).config_dir))
    assert started.returncode == 0, started.stdout + started.stderr


def test_every_pikube_process_of_a_board_restarted_brings_it_back_with_its_pods(pis: Pis) -> None:
    for name, node in (("on-worker", "pi-2"), ("on-master", "pi-1")):
        api.request(read_kubeconfig(pis.kubeconfig), "POST", "/api/v1/namespaces/default/pods", _pod(pis, name, node))
    wait(lambda: all(_pod_running(pis, n) for n in ("on-worker", "on-master")), 60, "pods running")
    ips = {n: str((_pod_running(pis, n) or {})["status"]["podIP"]) for n in ("on-worker", "on-master")}
    containers = {node: _containers(pis, node) for node in ("pi-1", "pi-2")}
    assert all(containers.values())

    # The supervisor restarts a service that dies.
    agent = supervisor.child_pid(pis.layout("pi-2").supervised_units, AGENT_UNIT)
    assert agent is not None
    os.kill(agent, signal.SIGKILL)
    wait(lambda: supervisor.child_pid(pis.layout("pi-2").supervised_units, AGENT_UNIT) not in (None, agent), 15,
         "the agent restarted by the supervisor")

    for board in ("pi-2", "pi-1"):
        before = pis.pikube_pids(board)
        _reboot(pis, board)
        assert set(pis.pikube_pids(board)).isdisjoint(before)
        wait(lambda: pis.node_ready("pi-1") and pis.node_ready("pi-2"), 60, f"nodes Ready after {board} restarted")
        # The same containers, adopted (not restarted), still answering on their pod addresses.
        assert _containers(pis, "pi-1") == containers["pi-1"] and _containers(pis, "pi-2") == containers["pi-2"]
        for name, ip in ips.items():
            pod = _pod_running(pis, name)
            assert pod is not None and pod["status"]["containerStatuses"][0]["restartCount"] == 0, json.dumps(pod)
            wait(lambda ip=ip: _answers(pis, "pi-2", ip), 30, f"pod {name} answering at {ip}")  # type: ignore[misc]
    for name in ips:
        pis.kubectl("delete", "pod", name, "--wait=false")


def test_tokens_disable_enable_again_and_reset(pis: Pis) -> None:
    made = pis.pikube("pi-1", "token", "--config-dir", str(pis.layout("pi-1").config_dir), "create", "--ttl", "1h",
                      "--description", "for pi-3")
    assert made.returncode == 0, made.stderr
    token = made.stdout.splitlines()[0]
    joined = pis.enable_worker("pi-3", token=token)
    assert joined.returncode == 0, joined.stdout + joined.stderr
    lay = pis.layout("pi-3")

    disabled = pis.pikube("pi-3", "disable", "--config-dir", str(lay.config_dir))
    assert disabled.returncode == 0, disabled.stdout + disabled.stderr
    assert pis.pikube_pids("pi-3") == [] and "pikube0" not in pis.links("pi-3")
    assert lay.node_kubeconfig.exists() and lay.record.exists()  # the data stays
    wait(lambda: not pis.node_ready("pi-3"), 90, "pi-3 seen as not ready")

    pis.pikube("pi-1", "token", "--config-dir", str(pis.layout("pi-1").config_dir), "delete", token.split("::")[1][:6])
    again = pis.enable_worker("pi-3", token=token)  # its credentials are kept: the deleted token is not needed
    assert again.returncode == 0, again.stdout + again.stderr
    assert pis.node_ready("pi-3")

    reset = pis.pikube("pi-3", "reset", "--yes", "--config-dir", str(lay.config_dir))
    assert reset.returncode == 0, reset.stdout + reset.stderr
    _nothing_installed(pis, "pi-3")
    refused = pis.enable_worker("pi-3", token=token)  # a fresh board needs the token, and it was deleted
    assert refused.returncode == 1 and "refused the join token" in _last_line(refused)
    _nothing_installed(pis, "pi-3")
