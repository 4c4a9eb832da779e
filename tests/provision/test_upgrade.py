"""ansible/upgrade.yml: every board moves to a new pikube, one at a time, while a Deployment stays available.

A copy of this source tree with its version bumped makes the new bundle. While the
playbook runs, a sampler reads the Deployment's pods and the nodes through the API:
never fewer than 3 of the 4 replicas Ready, never two boards cordoned at once.
While the master itself restarts the API does not answer; those samples are
counted apart (and must be a minority).
"""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.provision.conftest import kubectl, ready_nodes

pytestmark = pytest.mark.integration

BOARDS = ("pi-1", "pi-2", "pi-3")
NEW = "0.1.1"


def _bumped_bundle(tmp_path: Path, version: str) -> Path:
    from pikube.provision import bundle

    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(bundle.SOURCE / name, src / name)
    for name in ("core", "pikube", "master", "agent", "web", "image-builder"):
        shutil.copytree(bundle.SOURCE / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    old = bundle.source_version(src)
    for rel, before, after in (("pyproject.toml", f'version = "{old}"', f'version = "{version}"'),
                               ("core/__init__.py", f'__version__ = "{old}"', f'__version__ = "{version}"')):
        text = (src / rel).read_text()
        assert before in text, rel
        (src / rel).write_text(text.replace(before, after, 1))
    dest = tmp_path / "bundle-new"
    assert bundle.make(dest, src) == version
    return dest


def _deployment(image: str) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                         "terminationGracePeriodSeconds": 1,
                         "containers": [{"name": "httpd", "image": image, "command": [
                             "sh", "-c", "hostname > /var/www/index.html; exec httpd -f -p 8080 -h /var/www"],
                             "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}]}}}}


def _ready_replicas(kubeconfig: Path) -> int | None:
    proc = kubectl(kubeconfig, "get", "pods", "-l", "app=web", "-o", "json", timeout=10)
    if proc.returncode != 0:
        return None
    return sum(1 for p in json.loads(proc.stdout)["items"] if not p["metadata"].get("deletionTimestamp")
               and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or []))


def _cordoned(kubeconfig: Path) -> int | None:
    proc = kubectl(kubeconfig, "get", "nodes", "-o", "json", timeout=10)
    if proc.returncode != 0:
        return None
    return sum(1 for n in json.loads(proc.stdout)["items"] if n["spec"].get("unschedulable"))


def _cordon_order(output: str) -> list[str]:
    """The boards in the order the playbook cordoned them."""
    found, in_cordon = [], False
    for line in output.splitlines():
        if line.startswith("TASK ["):
            in_cordon = line.startswith("TASK [pikube : Cordon the node]")
        elif in_cordon and line.startswith("changed: ["):
            found.append(line.split("[", 1)[1].split("]", 1)[0].split(" ")[0])
    return found


def test_upgrade_moves_every_board_one_at_a_time_keeping_3_of_4_replicas(
        ssh_lab: Any, provision_bundle: Path, docker_engine: Any, dev_images: Any, tmp_path: Path) -> None:
    from pikube.dev import netlab, playbooks
    from pikube.dev.sshboards import BoardSpec

    new_bundle = _bumped_bundle(tmp_path, NEW)
    lab = ssh_lab([BoardSpec(n) for n in BOARDS])
    extra = {"pikube_docker_host": docker_engine.host, "pikube_context": "lab", "prereq_packages": []}
    inv = playbooks.inventory(lab, "pi-1", ["pi-2", "pi-3"],
                              extra_vars={**extra, "pikube_bundle_dir": str(provision_bundle)})
    new_inv = playbooks.inventory(lab, "pi-1", ["pi-2", "pi-3"],
                                  extra_vars={**extra, "pikube_bundle_dir": str(new_bundle)})
    up = playbooks.run_playbook(lab, "site.yml", inv)
    assert up.returncode == 0, up.output[-5000:]
    kubeconfig = playbooks.kubeconfig(lab)
    manifest = lab.dir / "web.yaml"
    manifest.write_text(yaml.safe_dump(_deployment(dev_images.busybox)))
    assert kubectl(kubeconfig, "apply", "-f", str(manifest)).returncode == 0
    netlab.wait_for("4 web replicas Ready", lambda: _ready_replicas(kubeconfig) == 4, timeout=120, interval=0.5)

    samples: list[tuple[int | None, int | None]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append((_ready_replicas(kubeconfig), _cordoned(kubeconfig)))
            done.wait(0.3)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        upgrade = playbooks.run_playbook(lab, "upgrade.yml", new_inv, name="inventory-new")
    finally:
        done.set()
        sampler.join(15)
    (tmp_path / "upgrade.log").write_text(upgrade.output)
    assert upgrade.returncode == 0 and upgrade.failed == 0, upgrade.output[-6000:]
    assert _cordon_order(upgrade.output) == list(BOARDS)  # serial: 1, the master first

    for name in BOARDS:
        assert lab.run(name, ["/usr/local/bin/pikube", "--version"]).stdout.split() == ["pikube", NEW], name
    nodes = json.loads(kubectl(kubeconfig, "get", "nodes", "-o", "json").stdout)["items"]
    assert {n["metadata"]["name"]: n["status"]["nodeInfo"]["kubeletVersion"].endswith(f"pikube.{NEW}")
            for n in nodes} == dict.fromkeys(BOARDS, True)
    assert not any(n["spec"].get("unschedulable") for n in nodes)
    assert ready_nodes(kubeconfig) == dict.fromkeys(BOARDS, "True")

    answered = [s for s in samples if s[0] is not None and s[1] is not None]
    assert len(answered) >= 20 and len(answered) > len(samples) / 2, samples
    assert min(r for r, _ in answered) >= 3, samples
    assert max(c for _, c in answered) <= 1, samples
    assert any(c == 1 for _, c in answered)  # the sampler did see boards being drained
    print(f"upgrade: {len(samples)} samples, {len(samples) - len(answered)} without an answer (the master "
          f"restarting), fewest Ready replicas {min(r for r, _ in answered)}")
