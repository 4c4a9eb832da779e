"""The official Python `kubernetes` client against the real master over TLS."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from tests.master.conftest import RunningMaster

pytestmark = pytest.mark.integration


@pytest.fixture
def core(master: RunningMaster) -> client.CoreV1Api:
    api_client = config.new_client_from_config(config_file=str(master.kubeconfig))
    return client.CoreV1Api(api_client)


def cm(name: str, value: str) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels={"suite": "py"}),
                              data={"v": value})


def test_create_list_patch_replace_delete(core: client.CoreV1Api) -> None:
    created = core.create_namespaced_config_map("default", cm("py-one", "1"))
    assert created.metadata.uid and created.metadata.resource_version
    listed = core.list_namespaced_config_map("default", label_selector="suite=py")
    assert "py-one" in [i.metadata.name for i in listed.items]
    patched = core.patch_namespaced_config_map("py-one", "default", {"data": {"v": "2"}})
    assert patched.data == {"v": "2"}
    assert int(patched.metadata.resource_version) > int(created.metadata.resource_version)
    stale = created
    stale.data = {"v": "stale"}
    with pytest.raises(ApiException) as info:
        core.replace_namespaced_config_map("py-one", "default", stale)
    assert info.value.status == 409
    assert core.read_namespaced_config_map("py-one", "default").data == {"v": "2"}
    core.delete_namespaced_config_map("py-one", "default")
    with pytest.raises(ApiException) as gone:
        core.read_namespaced_config_map("py-one", "default")
    assert gone.value.status == 404


def test_watch_sees_events_in_order_and_resumes(core: client.CoreV1Api) -> None:
    start_rv = core.list_namespaced_config_map("default").metadata.resource_version
    seen: list[tuple[str, str, str]] = []
    w = watch.Watch()

    def run() -> None:
        for ev in w.stream(core.list_namespaced_config_map, "default", resource_version=start_rv,
                           label_selector="suite=watch", timeout_seconds=20):
            obj = ev["object"]
            seen.append((ev["type"], obj.metadata.name, obj.metadata.resource_version))
            if ev["type"] == "DELETED":
                w.stop()

    t = threading.Thread(target=run)
    t.start()
    time.sleep(0.5)
    body = cm("py-watch", "a")
    body.metadata.labels = {"suite": "watch"}
    core.create_namespaced_config_map("default", body)
    core.patch_namespaced_config_map("py-watch", "default", {"data": {"v": "b"}})
    core.delete_namespaced_config_map("py-watch", "default")
    t.join(25)
    assert [(k, n) for k, n, _ in seen] == [("ADDED", "py-watch"), ("MODIFIED", "py-watch"),
                                            ("DELETED", "py-watch")]
    revisions = [int(rv) for _, _, rv in seen]
    assert revisions == sorted(revisions) and len(set(revisions)) == 3

    # Resume from the first event's revision: only the later two come back.
    resumed: list[Any] = []
    w2 = watch.Watch()
    for ev in w2.stream(core.list_namespaced_config_map, "default", resource_version=str(revisions[0]),
                        label_selector="suite=watch", timeout_seconds=3):
        resumed.append(ev["type"])
        if len(resumed) == 2:
            w2.stop()
    assert resumed == ["MODIFIED", "DELETED"]
