"""`enable-master --cluster-init` for real: a master board whose store is its own etcd member (Debian's etcd).

Board pi-1 runs `enable-master --cluster-init --init none` (pikube's supervisor
runs `pikube-etcd.service`, then the master on it, then the agent), pi-3 joins
it as a worker, pi-2 as a second master (`enable-master --join` with a master
token: its etcd member joins as a learner and is promoted). The etcd members
are reachable only with the etcd CA's client certificate: the cluster's own
certificates (admin, nodes) are refused. `pikube reset` of a master takes its
member out of the cluster and leaves no etcd process and no etcd data.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from core import processes
from core.kubeconfig import read_kubeconfig
from pikube.bootstrap import record
from pikube.bootstrap.etcdmember import EtcdClient
from pikube.bootstrap.layout import AGENT_UNIT, ETCD_UNIT, MASTER_UNIT
from pikube.dev import boards
from tests.bootstrap.conftest import Pis, boards_of, wait
from tests.conftest import DevImages, require

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pis(docker_engine: Any, dev_images: DevImages, docker_client: Any,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pis]:
    require(shutil.which("etcd") is not None, "etcd is not installed (Debian's etcd-server)")
    with boards_of(["pi-1", "pi-2", "pi-3"], tmp_path_factory.mktemp("etcd-pis"), docker_engine,
                   docker_client) as made:
        yield made


def _enable(pis: Pis) -> subprocess.CompletedProcess[str]:
    return pis.pikube("pi-1", "enable-master", "--cluster-init", "--init", "none", *pis.dirs("pi-1"),
                      "--advertise-address", str(pis.master.address), "--docker-host", pis.docker_host,
                      "--node-name", "pi-1", "--user-kubeconfig", str(pis.kubeconfig))


def _etcd_pids(pis: Pis, board: str = "pi-1") -> list[int]:
    pids = processes.pids_in_netns(boards.netns_file(pis.board(board).netns))
    return [p for p in pids if Path(processes.cmdline(p)[0] if processes.cmdline(p) else "").name == "etcd"]


@pytest.fixture(scope="module")
def etcd_master(pis: Pis) -> Pis:
    proc = _enable(pis)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "pikube-etcd.service installed and running: done" in proc.stdout
    return pis


def test_the_master_keeps_the_cluster_in_its_own_etcd_member(etcd_master: Pis) -> None:
    pis = etcd_master
    lay = pis.layout("pi-1")
    assert pis.node_ready("pi-1")
    assert {p.name for p in lay.supervised_units.glob("*.service")} == {ETCD_UNIT, MASTER_UNIT, AGENT_UNIT}
    rec = record.load(lay.record)
    assert rec is not None and rec.datastore == "etcd"
    store = pis.api("/pikube/v1/datastore")
    assert store["backend"] == "etcd" and store["readOnly"] is False, store
    assert [(m["name"], m["healthy"], m["learner"]) for m in store["members"]] == [("pi-1", True, False)]
    assert store["leader"] == "pi-1"
    # etcd itself runs under the supervisor (`pikube etcd` replaced itself with it): one process, no Python.
    assert len(_etcd_pids(pis)) == 1
    # What kubectl writes is in etcd, under pikube's prefix.
    pis.kubectl("create", "configmap", "in-etcd", "--from-literal=k=v")
    member = EtcdClient(f"https://{pis.master.address}:2379", lay.master_data / "pki" / "etcd")
    assert [m.name for m in member.members()] == ["pi-1"]
    key = "/pikube/core/configmaps/default/in-etcd"
    found = member._post("/v3/kv/range", {"key": _b64(key)})
    assert found.get("count") == "1", found
    assert json.loads(_unb64(found["kvs"][0]["value"]))["data"] == {"k": "v"}


def test_etcd_takes_only_the_etcd_ca_client_certificate(etcd_master: Pis) -> None:
    pis = etcd_master
    lay = pis.layout("pi-1")
    url = f"https://{pis.master.address}:2379/v3/kv/range"
    etcd_ca = str(lay.master_data / "pki" / "etcd" / "ca.crt")
    admin = read_kubeconfig(pis.kubeconfig)
    cert_dir = pis.state_dir / "admin-cert"
    cert_dir.mkdir(exist_ok=True)
    assert admin.cert_pem is not None and admin.key_pem is not None
    (cert_dir / "admin.crt").write_bytes(admin.cert_pem)
    (cert_dir / "admin.key").write_bytes(admin.key_pem)
    body = {"key": _b64("/pikube/")}
    # The cluster administrator's certificate (signed by the cluster CA) does not open etcd, nor does none.
    for cert in ((str(cert_dir / "admin.crt"), str(cert_dir / "admin.key")), None):
        with pytest.raises((requests.exceptions.SSLError, requests.exceptions.ConnectionError, ssl.SSLError)):
            requests.post(url, json=body, verify=etcd_ca, cert=cert, timeout=5)
    # The etcd member's certificate is signed by the etcd CA, not by the cluster's.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"https://{pis.master.address}:2379/health", verify=str(lay.master_ca), timeout=5)


def test_a_second_run_changes_nothing_and_a_worker_joins(etcd_master: Pis) -> None:
    pis = etcd_master
    again = _enable(pis)
    assert again.returncode == 0, again.stderr
    assert "Nothing changed" in again.stdout
    # Turning an etcd master into a SQLite one is refused with a sentence.
    sqlite = pis.pikube("pi-1", "enable-master", "--init", "none", *pis.dirs("pi-1"), "--advertise-address",
                        str(pis.master.address), "--docker-host", pis.docker_host, "--node-name", "pi-1")
    assert sqlite.returncode == 1 and "datastore etcd, not sqlite" in sqlite.stderr, sqlite.stderr
    joined = pis.enable_worker("pi-3")
    assert joined.returncode == 0, joined.stderr
    wait(lambda: pis.node_ready("pi-3"), what="pi-3 Ready")


def _members(pis: Pis) -> list[tuple[str, bool]]:
    member = EtcdClient(f"https://{pis.master.address}:2379", pis.layout("pi-1").master_data / "pki" / "etcd")
    return sorted((m.name, m.learner) for m in member.members())


def _join(pis: Pis, token: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return pis.pikube("pi-2", "enable-master", "--join", str(pis.master.address), "--token", token, "--init", "none",
                      *pis.dirs("pi-2"), "--advertise-address", str(pis.board("pi-2").address), "--docker-host",
                      pis.docker_host, "--node-name", "pi-2", "--user-kubeconfig",
                      str(pis.state_dir / "pi-2.kubeconfig"), *extra)


def test_a_second_master_joins_with_a_master_token(etcd_master: Pis) -> None:
    pis = etcd_master
    lay = pis.layout("pi-2")
    # A worker's token never hands out the cluster's keys: refused, nothing installed, membership unchanged.
    refused = _join(pis, pis.token)
    assert refused.returncode == 1, refused.stdout
    assert "refused the token for adding a master" in refused.stderr and "token create --master" in refused.stderr
    assert not lay.data_dir.exists() and not lay.config_dir.exists()
    assert _members(pis) == [("pi-1", False)]
    made = pis.pikube("pi-1", "token", "--config-dir", str(pis.layout("pi-1").config_dir), "create", "--master")
    assert made.returncode == 0, made.stderr
    master_token = made.stdout.splitlines()[0]
    assert f"enable-master --join https://{pis.master.address}:6443 --token {master_token}" in made.stdout
    # No master at that address: a sentence, nothing installed.
    nobody = pis.pikube("pi-2", "enable-master", "--join", f"{pis.board('pi-3').address}:6444", "--token",
                        master_token, "--init", "none", *pis.dirs("pi-2"), "--node-name", "pi-2",
                        "--docker-host", pis.docker_host)
    assert nobody.returncode == 1 and "cannot reach a pikube master at" in nobody.stderr, nobody.stderr
    assert not lay.data_dir.exists() and _members(pis) == [("pi-1", False)]
    # etcd data left from another cluster would be started instead of joining: refused before anything is asked.
    (lay.etcd_data / "member" / "wal").mkdir(parents=True)
    stale = _join(pis, master_token)
    assert stale.returncode == 1 and "holds an etcd member's data from an earlier cluster" in stale.stderr
    assert _members(pis) == [("pi-1", False)]
    shutil.rmtree(lay.data_dir)
    joined = _join(pis, master_token)
    assert joined.returncode == 0, joined.stderr + joined.stdout
    assert "this board's etcd member caught up and votes: done" in joined.stdout
    assert _members(pis) == [("pi-1", False), ("pi-2", False)]
    wait(lambda: pis.node_ready("pi-2"), what="pi-2 Ready")
    # Both masters serve the one store: a write through pi-1 is read through pi-2 (its own admin kubeconfig,
    # its own serving certificate from the shared CA).
    pis.kubectl("create", "configmap", "seen-by-both", "--from-literal=k=v")
    second = read_kubeconfig(pis.state_dir / "pi-2.kubeconfig")
    assert second.server == f"https://{pis.board('pi-2').address}:6443"
    from pikube.bootstrap import api

    assert api.request(second, "GET", "/api/v1/namespaces/default/configmaps/seen-by-both")["data"] == {"k": "v"}
    store = api.request(second, "GET", "/pikube/v1/datastore")
    assert sorted(m["name"] for m in store["members"]) == ["pi-1", "pi-2"] and store["leader"], store
    # The cluster CA and the service account key are the first master's.
    first = pis.layout("pi-1").master_data / "pki"
    for name in ("ca.crt", "ca.key", "sa.key", "etcd/ca.crt"):
        assert (lay.master_data / "pki" / name).read_bytes() == (first / name).read_bytes(), name
    # A second run changes nothing (and does not join again).
    again = _join(pis, master_token)
    assert again.returncode == 0 and "Nothing changed" in again.stdout, again.stderr
    assert _members(pis) == [("pi-1", False), ("pi-2", False)]


def test_the_master_board_comes_back_on_its_etcd_data_after_a_power_cut(etcd_master: Pis) -> None:
    pis = etcd_master
    pis.kubectl("create", "configmap", "before-the-cut", "--from-literal=k=v")
    for pid in pis.pikube_pids("pi-1") + _etcd_pids(pis):  # all at once, as a power cut
        os.kill(pid, signal.SIGKILL)
    wait(lambda: not _etcd_pids(pis) and not pis.pikube_pids("pi-1"), what="pi-1's processes gone")
    started = pis.pikube("pi-1", "start", "--config-dir", str(pis.layout("pi-1").config_dir))
    assert started.returncode == 0, started.stdout + started.stderr
    wait(lambda: _answers(pis) and pis.node_ready("pi-1"), timeout=90, what="pi-1 Ready again")
    out = pis.kubectl("get", "configmap", "before-the-cut", "-o", "jsonpath={.data.k}").stdout
    assert out == "v"


def test_a_reset_master_leaves_the_etcd_cluster(etcd_master: Pis) -> None:
    pis = etcd_master
    lay = pis.layout("pi-2")
    proc = pis.pikube("pi-2", "reset", "--yes", "--init", "none", *pis.dirs("pi-2"))
    assert proc.returncode == 0, proc.stderr
    assert "etcd member pi-2 removed from the cluster (1 members left)" in proc.stdout, proc.stdout
    assert _members(pis) == [("pi-1", False)]
    assert _etcd_pids(pis, "pi-2") == [] and not lay.data_dir.exists()
    pis.kubectl("create", "configmap", "after-pi-2-left", "--from-literal=k=v")  # one member: its own quorum


def test_reset_leaves_no_etcd(etcd_master: Pis) -> None:
    pis = etcd_master
    lay = pis.layout("pi-1")
    proc = pis.pikube("pi-1", "reset", "--yes", "--init", "none", *pis.dirs("pi-1"))
    assert proc.returncode == 0, proc.stderr
    assert "pikube-etcd.service stopped and removed" in proc.stdout + proc.stderr
    assert _etcd_pids(pis) == []
    assert not lay.etcd_data.exists() and not lay.master_data.exists()


def _answers(pis: Pis) -> bool:
    from pikube.bootstrap import api

    return api.healthy(read_kubeconfig(pis.kubeconfig))


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


def _unb64(text: str) -> bytes:
    import base64

    return base64.b64decode(text)
