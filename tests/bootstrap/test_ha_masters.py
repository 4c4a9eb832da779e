"""Three masters on etcd made by enable-master, one worker: losing a master, a whole board, then a quorum.

pi-1 runs `enable-master --cluster-init`, pi-2 and pi-3 `enable-master --join`
with a master token, pi-4 `enable-worker` against pi-1 and pi-6 against pi-2. Then, as on a shelf of
Pis:

- `kill -9` of the master process that leads (holds the controller-manager
  Lease): another master leads within 20 s (the time is printed), and a
  Deployment scaled right after the kill converges;
- kubectl goes through the masters' floating address (`--api-address`): a
  board answers ARP for it and forwards it to a live master;
- a power cut of pi-1 (master, etcd member, and the worker's master) while a
  client writes through pi-3: every acknowledged write is still there, kubectl
  through the floating address works again on its own, the worker's agent
  moves to another master on its own (its node heartbeats go on), and pi-1
  rejoins with `pikube start` alone;
- a power cut of two masters: a write through the last one fails at once
  with a Status that says why, reads still answer with kubectl's read-only
  warning; both boards back, writes work again.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core import errors, processes
from core.kubeconfig import read_kubeconfig
from pikube.bootstrap import api
from pikube.dev import boards, launch
from tests.bootstrap.conftest import Pis, boards_of, wait
from tests.conftest import DevImages, require
from tests.master.conftest import kubectl_path

pytestmark = pytest.mark.integration
MASTERS = ("pi-1", "pi-2", "pi-3")


@pytest.fixture(scope="module")
def pis(docker_engine: Any, dev_images: DevImages, docker_client: Any,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pis]:
    require(shutil.which("etcd") is not None, "etcd is not installed (Debian's etcd-server)")
    state_dir = tmp_path_factory.mktemp("ha-pis")
    with boards_of([*MASTERS, "pi-4", "pi-5", "pi-6"], state_dir, docker_engine, docker_client) as made:
        first = _enable(made, "pi-1", "--cluster-init", "--api-address", _floating(made), "--user-kubeconfig",
                        str(made.kubeconfig))
        assert first.returncode == 0, first.stderr
        token = made.pikube("pi-1", "token", "--config-dir", str(made.layout("pi-1").config_dir), "create",
                            "--master", "--ttl", "1h")
        assert token.returncode == 0, token.stderr
        (state_dir / "master-token").write_text(token.stdout.splitlines()[0])
        for board in ("pi-2", "pi-3"):
            joined = _enable(made, board, "--join", str(made.master.address), "--token",
                             token.stdout.splitlines()[0], "--user-kubeconfig", str(state_dir / f"{board}.kubeconfig"))
            assert joined.returncode == 0, joined.stderr
        worker = made.enable_worker("pi-4")
        assert worker.returncode == 0, worker.stderr
        # Any master takes workers, each with its own tokens: pi-6 joins through pi-2.
        second = made.enable_worker("pi-6", token=launch.join_token(state_dir, "pi-2"),
                                    master=str(made.board("pi-2").address))
        assert second.returncode == 0, second.stderr
        wait(lambda: _answers_at(made.kubeconfig), 60, "the API at the floating address")
        yield made


def _floating(pis: Pis) -> str:
    """The masters' floating address: a LAN address no board has."""
    return str(pis.lan.subnet.network_address + 200)


def _answers_at(kubeconfig: Path) -> bool:
    return api.healthy(read_kubeconfig(kubeconfig))


def _enable(pis: Pis, board: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return pis.pikube(board, "enable-master", "--init", "none", *pis.dirs(board), "--advertise-address",
                      str(pis.board(board).address), "--docker-host", pis.docker_host, "--node-name", board, *extra)


def _admin(pis: Pis, board: str) -> Path:
    """The admin kubeconfig the master on `board` writes for itself: its own address, not the floating one."""
    return pis.layout(board).master_kubeconfig


def _kubectl(pis: Pis, board: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([kubectl_path("new"), "--kubeconfig", str(_admin(pis, board)), "--request-timeout=30s",
                           *args], capture_output=True, text=True, timeout=60, check=False)


def _get(pis: Pis, board: str, path: str) -> dict[str, Any]:
    return api.request(read_kubeconfig(_admin(pis, board)), "GET", path, timeout=10.0)


def _leader(pis: Pis, via: str) -> str:
    lease = _get(pis, via, "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/pikube-controller-manager")
    return str(lease["spec"].get("holderIdentity") or "")


def _power_cut(pis: Pis, board: str) -> None:
    """SIGKILL every process of the board (supervisor, master, agent, etcd) at once."""
    pids = processes.pids_in_netns(boards.netns_file(pis.board(board).netns))
    assert pids
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    assert processes.wait_gone(pids, 10) == []


def _power_on(pis: Pis, board: str) -> None:
    started = pis.pikube(board, "start", "--config-dir", str(pis.layout(board).config_dir))
    assert started.returncode == 0, started.stdout + started.stderr


def _members_healthy(pis: Pis, via: str) -> list[str]:
    store = _get(pis, via, "/pikube/v1/datastore")
    return sorted(m["name"] for m in store["members"] if m["healthy"])


def _ready_replicas(pis: Pis, via: str, name: str) -> int:
    dep = _get(pis, via, f"/apis/apps/v1/namespaces/default/deployments/{name}")
    return int((dep.get("status") or {}).get("readyReplicas") or 0)


def test_three_masters_share_one_etcd(pis: Pis) -> None:
    assert _members_healthy(pis, "pi-3") == list(MASTERS)
    # kubectl's kubeconfig names the floating address, which every master's certificate covers.
    assert read_kubeconfig(pis.kubeconfig).server == f"https://{_floating(pis)}:6443"
    assert read_kubeconfig(pis.state_dir / "pi-3.kubeconfig").server == f"https://{_floating(pis)}:6443"
    assert read_kubeconfig(pis.layout("pi-3").admin_kubeconfig).server == f"https://{_floating(pis)}:6443"
    assert read_kubeconfig(_admin(pis, "pi-3")).server == f"https://{pis.board('pi-3').address}:6443"
    svc = _get(pis, "pi-2", "/api/v1/namespaces/kube-system/services/pikube-api")
    assert svc["status"]["loadBalancer"]["ingress"] == [{"ip": _floating(pis)}]
    eps = _get(pis, "pi-2", "/api/v1/namespaces/kube-system/endpoints/pikube-api")
    assert sorted(a["ip"] for a in eps["subsets"][0]["addresses"]) == sorted(
        str(pis.board(b).address) for b in MASTERS)
    nodes = pis.kubectl("get", "nodes", "-o", "name").stdout.split()  # through the floating address
    assert nodes == [f"node/pi-{i}" for i in (1, 2, 3, 4, 6)]
    # Every master has every board's usage (agents report to all of them): `kubectl top` is whole wherever
    # the floating address lands, and so are the leader's autoscalers.
    for board in MASTERS:
        wait(lambda b=board: {i["metadata"]["name"] for i in _get(pis, b, "/apis/metrics.k8s.io/v1beta1/nodes")
                              ["items"]} == {f"pi-{i}" for i in (1, 2, 3, 4, 6)}, 60, f"every board's usage on {board}")
    # Every master board carries the master roles (from the masters' own Leases), workers the worker role.
    roles = {line.split()[0]: line.split()[2] for line in pis.kubectl("get", "nodes").stdout.splitlines()[1:]}
    assert roles == {"pi-1": "control-plane,master", "pi-2": "control-plane,master",
                     "pi-3": "control-plane,master", "pi-4": "worker", "pi-6": "worker"}
    for board in (*MASTERS, "pi-4", "pi-6"):
        assert pis.node_ready(board), board
    holder = _leader(pis, "pi-2")
    assert holder.split("_")[0] in MASTERS, holder  # `<board>_<random>`: one master runs the controllers


def test_killing_the_leading_master_hands_over_within_the_lease(pis: Pis) -> None:
    from agent.runtime.localimages import BUSYBOX_IMAGE

    made = _kubectl(pis, "pi-1", "create", "deployment", "web", f"--image={BUSYBOX_IMAGE}", "--replicas=1",
                    "--", "sleep", "3600")
    assert made.returncode == 0, made.stderr
    wait(lambda: _ready_replicas(pis, "pi-1", "web") == 1, 90, "web's first pod ready")
    holder = _leader(pis, "pi-1")
    board = holder.split("_")[0]
    other = next(b for b in MASTERS if b != board)
    netns = boards.netns_file(pis.board(board).netns)
    master_pid = next(p for p in processes.pids_in_netns(netns)
                      if " master " in f" {' '.join(processes.cmdline(p))} ")
    os.kill(master_pid, signal.SIGKILL)
    killed = time.monotonic()
    scaled = _kubectl(pis, other, "scale", "deployment", "web", "--replicas=3")
    assert scaled.returncode == 0, scaled.stderr
    wait(lambda: _leader(pis, other) not in ("", holder), 30, "a new leader")
    took = time.monotonic() - killed
    print(f"\nleading master on {board} killed: {_leader(pis, other)} leads after {took:.1f} s")
    assert took < 20, took
    wait(lambda: _ready_replicas(pis, other, "web") == 3, 120, "web scaled to 3 under the new leader")


def test_a_master_board_lost_during_writes_loses_no_acknowledged_write(pis: Pis) -> None:
    done = threading.Event()
    acknowledged: list[str] = []
    failures: list[str] = []
    writer_cfg = read_kubeconfig(_admin(pis, "pi-3"))

    def write() -> None:
        i = 0
        while not done.is_set():
            name = f"w-{i}"
            i += 1
            body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"i": str(i)}}
            try:
                api.request(writer_cfg, "POST", "/api/v1/namespaces/default/configmaps", body, timeout=15.0)
            except (errors.ApiError, api.Unreachable) as exc:
                failures.append(f"{name}: {exc}")
                continue
            acknowledged.append(name)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        wait(lambda: len(acknowledged) >= 20, 30, "writes before the cut")
        lease_before = _get(pis, "pi-3", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/pi-4")
        _power_cut(pis, "pi-1")
        cut = len(acknowledged)
        wait(lambda: len(acknowledged) >= cut + 20, 60, "writes after the cut")
    finally:
        done.set()
        writer.join(30)
    # kubectl through the floating address works again on its own (a new announcer after the node grace
    # period when pi-1 announced it; pi-1 leaves the masters' endpoints when its apiserver lease runs out).
    cut_at = time.monotonic()
    wait(lambda: all(pis.kubectl("get", "--raw", "/readyz", check=False).returncode == 0 for _ in range(5)),
         120, "kubectl through the floating address")
    print(f"\nfloating address answering again {time.monotonic() - cut_at:.1f} s after the writes stopped")
    names = {item["metadata"]["name"] for item in
             _get(pis, "pi-2", "/api/v1/namespaces/default/configmaps")["items"]}
    assert not set(acknowledged) - names, (sorted(set(acknowledged) - names), failures[:5])
    # The worker joined through pi-1; its agent moved to another master and still renews its node's lease.
    renewed = lease_before["spec"]["renewTime"]
    wait(lambda: _get(pis, "pi-3", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/pi-4")
         ["spec"]["renewTime"] != renewed, 60, "pi-4's heartbeat through another master")
    assert pis.node_ready("pi-4") or _node_ready(pis, "pi-2", "pi-4")
    # Power back: pi-1's member rejoins and its master serves what was written while it was off.
    _power_on(pis, "pi-1")
    wait(lambda: _answers(pis, "pi-1") and _members_healthy(pis, "pi-1") == list(MASTERS), 90, "pi-1 back")
    last = acknowledged[-1]
    assert _get(pis, "pi-1", f"/api/v1/namespaces/default/configmaps/{last}")["metadata"]["name"] == last


def test_two_masters_lost_make_the_last_one_read_only(pis: Pis) -> None:
    _power_cut(pis, "pi-3")
    # With a member down, no master is added (etcd could be left without a quorum): a sentence, nothing joined.
    master_token = (pis.state_dir / "master-token").read_text()
    fourth = _enable(pis, "pi-5", "--join", str(pis.master.address), "--token", master_token)
    assert fourth.returncode == 1, fourth.stdout
    assert "refused to add this master: the cluster's etcd members pi-3 do not answer" in fourth.stderr
    assert not pis.layout("pi-5").data_dir.exists()
    members = _get(pis, "pi-1", "/pikube/v1/datastore")["members"]
    assert sorted(m["name"] for m in members) == list(MASTERS)
    _power_cut(pis, "pi-2")
    started = time.monotonic()
    refused = _kubectl(pis, "pi-1", "create", "configmap", "no-quorum")
    took = time.monotonic() - started
    assert refused.returncode != 0 and took < 25, (took, refused.stderr)
    assert "the cluster's store has no quorum" in refused.stderr, refused.stderr
    read = _kubectl(pis, "pi-1", "get", "configmap", "w-0", "-o", "name")
    assert read.returncode == 0 and read.stdout.strip() == "configmap/w-0", read.stderr
    assert "read-only" in read.stderr
    for board in ("pi-2", "pi-3"):
        _power_on(pis, board)
    wait(lambda: _members_healthy(pis, "pi-1") == list(MASTERS), 90, "both members back")
    wait(lambda: _kubectl(pis, "pi-1", "create", "configmap", "quorum-again").returncode == 0, 60,
         "writes accepted again")


def _answers(pis: Pis, board: str) -> bool:
    return api.healthy(read_kubeconfig(_admin(pis, board)))


def _node_ready(pis: Pis, via: str, node: str) -> bool:
    return api.node_ready(read_kubeconfig(_admin(pis, via)), node)
