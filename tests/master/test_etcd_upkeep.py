"""The etcd store's upkeep on a real etcd: a member that ran out of space (NOSPACE) is defragmented and disarmed so
writes resume, a fragmented one is defragmented, and the board of a member in alarm gets a node condition."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core import errors
from core.settings import MasterSettings
from master import datastorehealth
from master.registry.catalog import Catalog, builtin_resources
from master.registry.context import ApiContext
from master.registry.verbs import Handlers
from master.store.etcd import EtcdStore
from pikube.dev.netlab import wait_for

pytestmark = pytest.mark.integration
QUOTA = 4 * 1024 * 1024  # a tiny quota: a few MB of ConfigMaps fill it
VALUE = "x" * (256 * 1024)


@pytest.fixture
def etcd(tmp_path: Path) -> Iterator[Any]:
    from pikube.dev.etcd import EtcdMissing, start_etcd
    from tests.conftest import require

    try:
        server = start_etcd(tmp_path / "etcd", name="pi-1", extra=("--quota-backend-bytes", str(QUOTA)))
    except EtcdMissing as exc:
        require(False, str(exc))
        raise
    yield server
    server.stop()


def test_a_full_member_is_defragmented_and_disarmed_and_its_board_says_so(etcd: Any, tmp_path: Path) -> None:
    store = EtcdStore([etcd.client_url], timeout=5.0)
    ctx = ApiContext(MasterSettings(data_dir=tmp_path), store, Catalog(builtin_resources()))
    h = Handlers(ctx)
    node_rt = ctx.catalog.by_kind("", "Node")
    assert node_rt is not None
    for name in ("pi-1", "pi-2"):
        h.create(node_rt, "", {"metadata": {"name": name}})
    # Nothing to do on a healthy, compact member: no condition is added anywhere.
    assert datastorehealth.maintain(store, h, node_rt) == {"noSpace": [], "defragmented": []}
    assert "conditions" not in (h.get(node_rt, "", "pi-1").get("status") or {})
    written = 0
    with pytest.raises(errors.InternalError, match="etcd is out of space"):
        for i in range(100):
            store.create(f"/core/configmaps/default/big-{i}", {"apiVersion": "v1", "kind": "ConfigMap",
                                                               "metadata": {"name": f"big-{i}"}, "data": {"v": VALUE}})
            written += 1
    assert written > 2
    # The alarm refuses even a delete's companion writes until someone acts: the master does.
    for i in range(written):
        store.delete(f"/core/configmaps/default/big-{i}")
    store.compact(store.revision())
    done = datastorehealth.maintain(store, h, node_rt)
    assert done["noSpace"] == ["pi-1"] and done["defragmented"] == ["pi-1"]
    store.create("/core/configmaps/default/after", {"apiVersion": "v1", "kind": "ConfigMap",
                                                    "metadata": {"name": "after"}, "data": {"v": "1"}})
    conds = {c["type"]: c for c in h.get(node_rt, "", "pi-1")["status"]["conditions"]}
    assert conds["EtcdOutOfSpace"]["status"] == "True" and conds["EtcdOutOfSpace"]["reason"] == "NOSPACE"
    assert "conditions" not in (h.get(node_rt, "", "pi-2").get("status") or {})
    # The next round finds no alarm: the condition turns False (and stays on the node, as Kubernetes' do).
    assert datastorehealth.maintain(store, h, node_rt)["noSpace"] == []
    conds = {c["type"]: c for c in h.get(node_rt, "", "pi-1")["status"]["conditions"]}
    assert conds["EtcdOutOfSpace"]["status"] == "False"
    store.close()


def test_a_fragmented_member_is_defragmented(etcd: Any) -> None:
    store = EtcdStore([etcd.client_url], timeout=5.0)
    for i in range(8):
        store.create(f"/core/configmaps/default/f-{i}", {"metadata": {"name": f"f-{i}"}, "data": {"v": VALUE}})
    for i in range(8):
        store.delete(f"/core/configmaps/default/f-{i}")
    store.compact(store.revision())
    # bbolt counts the compacted pages free at its next commit (the master's loop writes far more in between).
    store.create("/core/configmaps/default/next", {"metadata": {"name": "next"}})
    wait_for("etcd's next backend commit", lambda: _mostly_free(etcd), timeout=10)
    assert store.maintain(min_free_bytes=10**9)["defragmented"] == []  # over the threshold: left alone
    assert store.maintain(min_free_bytes=256 * 1024)["defragmented"] == ["pi-1"]
    assert store.maintain(min_free_bytes=256 * 1024)["defragmented"] == []  # nothing freed since
    store.close()


def _mostly_free(etcd: Any) -> bool:
    """More than half of the member's database file is free pages (and over 1 MB): what maintain() looks for."""
    import requests

    status = requests.post(f"{etcd.client_url}/v3/maintenance/status", json={}, timeout=5).json()
    free = int(status["dbSize"]) - int(status["dbSizeInUse"])
    return free > 1024 * 1024 and free * 2 > int(status["dbSize"])


def test_a_store_given_one_member_learns_the_others_and_outlives_it(tmp_path: Path) -> None:
    from pikube.dev.etcd import EtcdMissing, start_etcd_cluster
    from tests.conftest import require

    try:
        members = start_etcd_cluster(tmp_path / "three", 3)
    except EtcdMissing as exc:
        require(False, str(exc))
        raise
    store = EtcdStore([members[0].client_url], timeout=5.0)
    try:
        assert sorted(store.learn_endpoints()) == sorted(m.client_url for m in members)
        members[0].stop()  # the member it was configured with
        store.create("/core/configmaps/default/via-another", {"metadata": {"name": "via-another"}})
        assert store.get("/core/configmaps/default/via-another") is not None
    finally:
        store.close()
        for m in members:
            m.stop()
