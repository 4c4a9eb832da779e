"""End to end in headless Chromium: a master, three simulated boards, and the page a phone would show.

The page must list every board and pod, show new pods within 3 s of a scale
without reloading, and turn a board NotReady when its heartbeats stop.
Screenshots (desktop 1280x800, phone 390x844) go to test-artifacts/web/.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from pikube.sim.api import resource_path
from tests.conftest import require
from tests.master.conftest import ROOT, free_port
from tests.master.controllers.conftest import Cluster, make_cluster, start_master_with, stop_cluster, wait_for
from tests.web.browser import Browser, chromium_path
from tests.web.conftest import TOKEN, wait_for_page
from web.serve import MAX_STREAMS
from web.stream import KEEPALIVE_SECONDS

pytestmark = pytest.mark.integration

ARTIFACTS = ROOT / "test-artifacts" / "web"
BOARDS = {
    "pi-1": ("Raspberry Pi 4 Model B Rev 1.4", "52.1", "0x0", True),
    "pi-2": ("Raspberry Pi 4 Model B Rev 1.5", "73.4", "0x50000", False),
    "pi-3": ("Raspberry Pi 5 Model B Rev 1.0", "81.0", "0x50005", False),
}
APP = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        resources: {requests: {cpu: 250m, memory: 128Mi}}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{port: 80, targetPort: 80}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: backup, namespace: default}
spec:
  template:
    metadata: {annotations: {"sim.pikube.io/run-seconds": "1"}}
    spec:
      restartPolicy: Never
      containers: [{name: backup, image: busybox}]
"""

PODS_JS = "JSON.stringify([...document.querySelectorAll('[data-pod]')].map(e => e.dataset.pod).sort())"
BOARDS_JS = "JSON.stringify(Object.fromEntries([...document.querySelectorAll('[data-board]')]" \
            ".map(e => [e.dataset.board, e.dataset.ready])))"


@pytest.fixture(scope="module")
def web_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, str]]:
    require(chromium_path() is not None, "needs Debian's chromium (scripts/install-deps.sh installs it)")
    web_port = free_port()
    c = make_cluster(tmp_path_factory.mktemp("web"), {"web_port": web_port, "web_bind": "127.0.0.1"})
    try:
        for name, (model, temp, throttled, master) in BOARDS.items():
            c.fleet.add(name)
            meta: dict[str, object] = {"annotations": {
                "pikube.io/board-model": model, "pikube.io/soc-temperature": temp, "pikube.io/throttled": throttled}}
            if master:
                meta["labels"] = {"node-role.kubernetes.io/master": "", "node-role.kubernetes.io/control-plane": ""}
            c.admin.patch(resource_path("v1", "nodes", name=name), {"metadata": meta})
        c.kubectl("apply", "-f", "-", input=APP)
        c.kubectl("rollout", "status", "deployment/web", "--timeout=60s")
        _report_usage(c)
        yield c, f"http://127.0.0.1:{web_port}/"
    finally:
        stop_cluster(c)


def _report_usage(c: Cluster) -> None:
    """What the boards' agents send every 15 s (agent/metrics/sampler.py): eight samples each, pi-2 throttled in
    the middle, and usage of every web pod on the board it runs on."""
    pods = c.admin.get(resource_path("v1", "pods", "default"))["items"]
    for n, (name, (_, temp, _, _)) in enumerate(BOARDS.items()):
        mine = [p for p in pods if p["spec"].get("nodeName") == name]
        for i in range(8):
            report = {"timestamp": f"2026-12-05T00:0{i}:00Z", "window": 15,
                      "node": {"cpu": (400 + 150 * i * (n + 1)) * 1_000_000, "memory": (900 + 60 * i) << 20,
                               "temperature": float(temp) - 4 + i, "throttled": 0x4 if n == 1 and i in (4, 5) else 0},
                      "pods": [{"namespace": "default", "name": p["metadata"]["name"], "uid": p["metadata"]["uid"],
                                "containers": [{"name": p["spec"]["containers"][0]["name"], "cpu": 120_000_000,
                                                "memory": 40 << 20}]} for p in mine]}
            c.fleet.boards[name].api.request("PUT", f"/pikube/v1/nodes/{name}/metrics", report)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    require(chromium_path() is not None, "needs Debian's chromium (scripts/install-deps.sh installs it)")
    b = Browser(tmp_path / "profile", tmp_path / "chromium.log")
    yield b
    b.close()


def api_pods(c: Cluster) -> list[str]:
    return sorted(f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in c.pods("default"))


def page_pods(b: Browser) -> list[str]:
    return list(json.loads(b.eval(PODS_JS)))


def test_page_lists_boards_and_pods_live(web_cluster: tuple[Cluster, str], browser: Browser) -> None:
    c, url = web_cluster
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.viewport(1280, 800)
    browser.open(url)
    browser.wait_for("document.querySelectorAll('[data-board]').length === 3", what="three board cards")
    assert json.loads(browser.eval(BOARDS_JS)) == {"pi-1": "Ready", "pi-2": "Ready", "pi-3": "Ready"}
    wait_for(lambda: page_pods(browser) == api_pods(c), timeout=5, what="every pod on the page")
    assert len(api_pods(c)) >= 4  # three web pods and the job's
    browser.wait_for("document.getElementById('conn').dataset.mode === 'live'", what="the event stream")
    text = browser.eval("document.body.innerText")
    for model, temp, _, _ in BOARDS.values():
        assert model in text and temp in text
    assert "under-voltage" in text  # a throttled board
    node_port = (c.get("v1", "services", "default", "web") or {})["spec"]["ports"][0]["nodePort"]
    links = browser.eval("[...document.querySelectorAll('.nodeports a')].map(a => a.href)")
    assert links == [f"http://192.168.50.{10 + i}:{node_port}/" for i in range(3)]
    # A LoadBalancer: the boards' addresses (from the servicelb controller) on the service port, as kubectl shows.
    external_js = "JSON.stringify([...document.querySelectorAll('.external a')].map(a => a.href))"
    want = [f"http://192.168.50.{10 + i}/" for i in range(3)]
    wait_for(lambda: json.loads(browser.eval(external_js)) == want, timeout=10,
             what=f"the LoadBalancer's addresses as links (page: {browser.eval(external_js)})")
    # A plot per board (CPU, memory, temperature), pi-2's throttling marked; each web pod's usage in its row.
    plots_js = "JSON.stringify([...document.querySelectorAll('[data-board]')].map(b => [b.dataset.board, " \
               "[...b.querySelectorAll('[data-plot]')].map(p => p.dataset.plot), b.querySelectorAll('.mark').length]))"
    wait_for(lambda: json.loads(browser.eval(plots_js)) == [["pi-1", ["cpu", "mem", "temp"], 0],
                                                            ["pi-2", ["cpu", "mem", "temp"], 2],
                                                            ["pi-3", ["cpu", "mem", "temp"], 0]],
             timeout=10, what=f"plots on every board card (page: {browser.eval(plots_js)})")
    usage_js = "[...document.querySelectorAll('.pod-usage')].map(e => e.textContent)"
    shown = browser.eval(usage_js)
    reported = [p for p in c.admin.get(resource_path("v1", "pods", "default"))["items"] if p["spec"].get("nodeName")]
    assert shown == ["120m · 40 Mi"] * len(reported) and len(reported) >= 3, shown
    browser.eval("window.__sameDocument = 'yes'")  # gone if the page ever reloads
    browser.screenshot(ARTIFACTS / "desktop.png")
    browser.screenshot(ARTIFACTS / "desktop-viewport.png", full_page=False)

    # Scale: the new pods appear within 3 s, in the same document.
    c.kubectl("scale", "deployment/web", "--replicas=6")
    started = time.monotonic()
    wait_for(lambda: len([p for p in page_pods(browser) if p.startswith("default/web-")]) == 6, timeout=3,
             what="six web pods on the page", every=0.05)
    elapsed = time.monotonic() - started
    assert elapsed < 3.0
    print(f"new pods on the page {elapsed:.2f} s after kubectl scale returned")
    wait_for(lambda: page_pods(browser) == api_pods(c), timeout=5, what="page and API agree after scaling")
    assert browser.eval("window.__sameDocument") == "yes"

    # A board falls silent: NotReady on the page once the node lifecycle controller notices.
    c.fleet["pi-3"].halt()
    browser.wait_for("document.querySelector('[data-board=\"pi-3\"]').dataset.ready === 'NotReady'", timeout=20,
                     what="pi-3 NotReady on the page")
    assert browser.eval("window.__sameDocument") == "yes"
    assert json.loads(browser.eval(BOARDS_JS)) == {"pi-1": "Ready", "pi-2": "Ready", "pi-3": "NotReady"}
    browser.screenshot(ARTIFACTS / "desktop-board-down.png")

    browser.viewport(390, 844, mobile=True, scale=2)
    browser.wait_for("document.documentElement.clientWidth === 390", what="the phone viewport")
    assert browser.eval("document.documentElement.scrollWidth <= 390"), "nothing wider than a phone"
    browser.screenshot(ARTIFACTS / "phone.png", full_page=False)
    browser.screenshot(ARTIFACTS / "phone-full.png")
    assert not [m for m in browser.console if "rror" in m], browser.console


def hold_every_stream(url: str) -> list[requests.Response]:
    """Open streams until the page refuses one (503); returns the open ones."""
    held = []
    for _ in range(MAX_STREAMS + 1):
        r = requests.get(url + "api/stream", params={"token": TOKEN}, stream=True, timeout=10)
        if r.status_code == 503:
            r.close()
            return held
        held.append(r)
    raise AssertionError(f"more than {MAX_STREAMS} streams accepted")


def test_page_with_an_access_token(tmp_path: Path, browser: Browser) -> None:
    """Opened as /?token=…, the page passes the token on to its stream (or its polling when no stream is free)."""
    web_port = free_port()
    m = start_master_with(tmp_path / "data", {"web_port": web_port, "web_bind": "127.0.0.1", "web_token": TOKEN})
    try:
        url = f"http://127.0.0.1:{web_port}/"
        wait_for_page(url)
        browser.open(url)
        assert "needs an access token" in browser.wait_for("document.body.innerText")
        browser.open(url + "?token=wrong")
        assert "Wrong access token" in browser.wait_for("document.body.innerText")
        browser.open(url + f"?token={TOKEN}")
        browser.wait_for("document.getElementById('conn').dataset.mode === 'live'", what="the event stream")
        assert "No boards have joined yet" in browser.eval("document.body.innerText")

        # Every stream slot taken: a new viewer falls back to polling the JSON, and still sees the cluster.
        browser.open("about:blank")
        held = hold_every_stream(url)
        try:
            time.sleep(2 * KEEPALIVE_SECONDS + 1)  # the browser's old stream is noticed gone at a keep-alive
            held += hold_every_stream(url)
            browser.open(url + f"?token={TOKEN}")
            browser.wait_for("document.getElementById('conn').dataset.mode === 'polling'", timeout=10,
                             what="the page polling")
            browser.wait_for("document.body.innerText.includes('No boards have joined yet')", what="the summary")
        finally:
            for r in held:
                r.close()
    finally:
        m.stop()
