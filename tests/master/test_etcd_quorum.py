"""A master on a three-member etcd that loses two members: writes fail at once with a clear Status instead of
hanging, reads keep being served (stale, with a warning that the master is read-only), and everything works again
once a second member is back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from pikube.bootstrap.status import describe_store
from tests.master.conftest import RunningMaster, kubectl, start_master

pytestmark = pytest.mark.integration


@pytest.fixture
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningMaster, list[Any]]]:
    from pikube.dev.etcd import EtcdMissing, start_etcd_cluster
    from tests.conftest import require

    try:
        members = start_etcd_cluster(tmp_path_factory.mktemp("etcd3"), 3)
    except EtcdMissing as exc:
        require(False, str(exc))
        raise
    endpoints = ",".join(m.client_url for m in members)
    master = start_master(tmp_path_factory.mktemp("quorum") / "master",
                          extra_args=("--datastore-endpoint", endpoints, "--datastore-timeout", "3s"))
    try:
        yield master, members
    finally:
        master.stop()
        for m in members:
            m.stop()


def test_losing_quorum_makes_the_master_read_only_not_stuck(cluster: tuple[RunningMaster, list[Any]]) -> None:
    master, members = cluster
    made = kubectl(master, "new", "create", "configmap", "before", "--from-literal=a=1")
    assert made.returncode == 0 and "Warning" not in made.stderr
    health = master.session().get(master.url + "/pikube/v1/datastore", timeout=10).json()
    assert describe_store(health).startswith("etcd, 3 of 3 members answering, leader m")
    members[1].stop()
    assert kubectl(master, "new", "create", "configmap", "one-down").returncode == 0  # 2 of 3: still a majority
    health = master.session().get(master.url + "/pikube/v1/datastore", timeout=10).json()
    assert describe_store(health).endswith("; not answering: m1")
    members[2].stop()
    started = time.monotonic()
    refused = kubectl(master, "new", "create", "configmap", "no-quorum", check=False)
    took = time.monotonic() - started
    assert refused.returncode != 0 and took < 20, (took, refused.stderr)
    assert "the cluster's store has no quorum" in refused.stderr and "writes are refused" in refused.stderr
    read = kubectl(master, "new", "get", "configmap", "before", "one-down", "-o", "name", check=False)
    assert read.returncode == 0, read.stderr
    assert read.stdout.split() == ["configmap/before", "configmap/one-down"]
    assert "read-only" in read.stderr  # kubectl prints the 299 warning
    health = master.session().get(master.url + "/pikube/v1/datastore", timeout=10).json()
    assert "NO QUORUM: the API is read-only" in describe_store(health)
    members[2].restart()
    deadline = time.monotonic() + 30
    while True:  # the first write after the cluster elects a leader again
        again = kubectl(master, "new", "create", "configmap", "after", check=False)
        if again.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert again.returncode == 0, again.stderr
    listed = kubectl(master, "new", "get", "configmap", "-o", "name")
    assert "configmap/after" in listed.stdout and "read-only" not in listed.stderr
