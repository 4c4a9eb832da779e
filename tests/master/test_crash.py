"""`kill -9` of the master in the middle of writes loses no acknowledged write and no watch event: with its store
in SQLite, and with it in a real etcd (Debian's etcd-server, started by the test)."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from pikube.dev.netlab import wait_for
from tests.master.conftest import start_master

pytestmark = pytest.mark.integration
URL = "/api/v1/namespaces/default/configmaps"


@pytest.fixture(params=["sqlite", "etcd"])
def store_args(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, ...]]:
    if request.param == "sqlite":
        yield ()
        return
    from pikube.dev.etcd import EtcdMissing, start_etcd
    from tests.conftest import require

    try:
        etcd = start_etcd(tmp_path / "etcd")
    except EtcdMissing as exc:
        require(False, str(exc))
        raise
    try:
        yield ("--datastore-endpoint", etcd.client_url)
    finally:
        etcd.stop()


def test_kill_9_keeps_acknowledged_writes_and_watch_resumes(tmp_path: Path, store_args: tuple[str, ...]) -> None:
    m = start_master(tmp_path / "data", extra_args=store_args)
    try:
        s = m.session()
        acked: dict[str, int] = {}
        watched: list[tuple[str, str, int]] = []
        start_rv = int(s.get(m.url + URL).json()["metadata"]["resourceVersion"])

        def watch_events() -> None:
            try:
                with s.get(m.url + URL, params={"watch": "1", "resourceVersion": str(start_rv)},
                           stream=True, timeout=30) as resp:
                    for line in resp.iter_lines():
                        if line:
                            ev = json.loads(line)
                            o = ev["object"]
                            watched.append((ev["type"], o["metadata"]["name"],
                                            int(o["metadata"]["resourceVersion"])))
            except (requests.RequestException, ValueError):
                return  # the master died under us: expected

        def write_loop(stop: threading.Event) -> None:
            i = 0
            while not stop.is_set():
                body = {"metadata": {"name": f"w-{i}"}, "data": {"i": str(i)}}
                try:
                    r = s.post(m.url + URL, json=body, timeout=5)
                except requests.RequestException:
                    return
                if r.status_code == 201:
                    acked[f"w-{i}"] = int(r.json()["metadata"]["resourceVersion"])
                i += 1

        watcher = threading.Thread(target=watch_events, daemon=True)
        watcher.start()
        stop = threading.Event()
        writer = threading.Thread(target=write_loop, args=(stop,), daemon=True)
        writer.start()
        wait_for("writes under way", lambda: len(acked) >= 30, 30)
        m.proc.send_signal(signal.SIGKILL)
        m.proc.wait()
        stop.set()
        writer.join(10)
        watcher.join(10)
        assert len(acked) > 10, "the write loop made too little progress to mean anything"
        last_seen = max((rv for _, _, rv in watched), default=start_rv)

        m = start_master(tmp_path / "data", port=m.port, extra_args=store_args)
        s = m.session()
        items = {o["metadata"]["name"]: o for o in s.get(m.url + URL).json()["items"]}
        for name, rv in acked.items():
            assert name in items, f"acknowledged write {name} (rv {rv}) was lost"
        # Resume the watch from the last revision seen: the rest of the writes come, none twice.
        resumed: list[tuple[str, int]] = []
        with s.get(m.url + URL, params={"watch": "1", "resourceVersion": str(last_seen), "timeoutSeconds": "2"},
                   stream=True, timeout=10) as resp:
            for line in resp.iter_lines():
                if line:
                    o = json.loads(line)["object"]
                    resumed.append((o["metadata"]["name"], int(o["metadata"]["resourceVersion"])))
        seen_names = {n for _, n, _ in watched} | {n for n, _ in resumed}
        assert set(acked) <= seen_names
        assert all(rv > last_seen for _, rv in resumed)
        # New writes get revisions above every acknowledged one.
        r = s.post(m.url + URL, json={"metadata": {"name": "after"}})
        assert r.status_code == 201
        assert int(r.json()["metadata"]["resourceVersion"]) > max(acked.values())
    finally:
        m.stop()
