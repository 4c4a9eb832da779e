"""Many watches at once: each holds a server thread, so the pool must grow to serve them all."""

from __future__ import annotations

import json
import threading

import pytest
import requests

from tests.master.conftest import RunningMaster

pytestmark = pytest.mark.integration


def test_forty_concurrent_watchers_all_see_the_event(master: RunningMaster) -> None:
    admin = master.session()
    url = f"{master.url}/api/v1/namespaces/default/configmaps"
    rv = admin.get(url).json()["metadata"]["resourceVersion"]
    connected = threading.Barrier(41, timeout=30)
    seen: list[str] = []
    lock = threading.Lock()

    def watch() -> None:
        s = requests.Session()
        s.trust_env, s.verify, s.cert = False, admin.verify, admin.cert
        with s.get(url, params={"watch": "1", "resourceVersion": rv, "labelSelector": "fan=out",
                                "timeoutSeconds": "20"}, stream=True, timeout=30) as resp:
            connected.wait()
            for line in resp.iter_lines():
                if line:
                    with lock:
                        seen.append(json.loads(line)["object"]["metadata"]["name"])
                    return

    threads = [threading.Thread(target=watch, daemon=True) for _ in range(40)]
    for t in threads:
        t.start()
    connected.wait()  # every watcher got its response headers before any event exists
    admin.post(url, json={"metadata": {"name": "fanned", "labels": {"fan": "out"}}}).raise_for_status()
    for t in threads:
        t.join(25)
    assert seen == ["fanned"] * 40
    # The server still answers ordinary requests while those watches were open.
    assert admin.get(f"{master.url}/healthz", timeout=5).status_code == 200
