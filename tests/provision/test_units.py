"""The pure parts of provisioning: targets, wheel selection, kubeconfig merging, the PLAY RECAP, CLI refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pikube.cli.main import run
from pikube.dev.playbooks import Recap, parse_recap
from pikube.provision import bundle
from pikube.provision.kubeconfig import KubeconfigError, merge, merge_into
from pikube.provision.ssh import Target

ADMIN = {"apiVersion": "v1", "kind": "Config", "current-context": "pikube",
         "clusters": [{"name": "pikube", "cluster": {"server": "https://10.0.0.10:6443",
                                                     "certificate-authority-data": "Q0E="}}],
         "users": [{"name": "pikube-admin", "user": {"client-certificate-data": "Y2VydA=="}}],
         "contexts": [{"name": "pikube", "context": {"cluster": "pikube", "user": "pikube-admin"}}]}


@pytest.mark.parametrize(("text", "want"), [
    ("pi@10.0.0.10", Target("pi", "10.0.0.10")),
    ("10.0.0.10", Target("pi", "10.0.0.10")),
    ("root@board.lan:2222", Target("root", "board.lan", 2222)),
    ("ubuntu@[fd00::1]:22", Target("ubuntu", "fd00::1")),
])
def test_targets(text: str, want: Target) -> None:
    assert Target.parse(text, "pi") == want


def test_bad_targets_and_known_hosts_names() -> None:
    with pytest.raises(ValueError, match="port"):
        Target.parse("pi@host:ssh", "pi")
    with pytest.raises(ValueError, match="no host"):
        Target.parse("pi@", "pi")
    assert Target("pi", "h", 2222).known_hosts_name == "[h]:2222"
    assert Target("pi", "h").known_hosts_name == "h"


def test_wheels_are_picked_by_architecture() -> None:
    x86 = "cffi-2.1.1-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl"
    arm = "cryptography-50.0.2-cp311-abi3-manylinux_2_28_aarch64.whl"
    pure = "flask-3.1.3-py3-none-any.whl"
    assert [w for w in (x86, arm, pure) if bundle.fits(w, "aarch64")] == [arm, pure]
    assert [w for w in (x86, arm, pure) if bundle.fits(w, "x86_64")] == [x86, pure]


def test_a_bundle_needs_exactly_one_pikube_wheel(tmp_path: Path) -> None:
    with pytest.raises(bundle.BundleError, match="exactly one"):
        bundle.pikube_version(tmp_path)
    (tmp_path / "pikube-0.2.0-py3-none-any.whl").write_bytes(b"")
    assert bundle.pikube_version(tmp_path) == "0.2.0"


def test_merge_keeps_other_clusters_and_replaces_its_own() -> None:
    home = {"current-context": "home", "clusters": [{"name": "home", "cluster": {"server": "https://h"}},
                                                    {"name": "lab", "cluster": {"server": "https://old"}}],
            "users": [{"name": "home", "user": {}}], "contexts": [{"name": "home", "context": {}}]}
    merged = merge(home, ADMIN, "lab")
    assert [c["name"] for c in merged["clusters"]] == ["home", "lab"]
    assert merged["clusters"][1]["cluster"]["server"] == "https://10.0.0.10:6443"
    assert [u["name"] for u in merged["users"]] == ["home", "lab-admin"]
    assert merged["contexts"][1] == {"name": "lab", "context": {"cluster": "lab", "user": "lab-admin"}}
    assert merged["current-context"] == "lab"
    assert merge(home, ADMIN, "lab", use=False)["current-context"] == "home"
    assert merge({}, ADMIN, "lab", use=False)["current-context"] == "lab"
    assert merge(merged, ADMIN, "lab") == merged


def test_merge_into_a_file(tmp_path: Path) -> None:
    path = tmp_path / "new" / ".kube" / "config"
    merge_into(path, yaml.safe_dump(ADMIN), "pi")
    assert (path.stat().st_mode & 0o777) == 0o600
    assert yaml.safe_load(path.read_text())["contexts"][0]["name"] == "pi"
    with pytest.raises(KubeconfigError, match="no cluster"):
        merge_into(path, yaml.safe_dump({"kind": "Config"}), "pi")
    path.write_text("- a list\n")
    with pytest.raises(KubeconfigError, match="not a kubeconfig"):
        merge_into(path, yaml.safe_dump(ADMIN), "pi")


def test_recap_is_read_per_host() -> None:
    out = ("PLAY RECAP ****\n"
           "pi-1                       : ok=37   changed=2    unreachable=0    failed=0    skipped=9    rescued=0\n"
           "pi-2                       : ok=3    changed=0    unreachable=1    failed=1    skipped=0    rescued=0\n")
    assert parse_recap(out) == {"pi-1": Recap(37, 2, 0, 0, 9), "pi-2": Recap(3, 0, 1, 1, 0)}


def test_the_cli_refuses_unclear_requests(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["provision", "--worker", "pi@h"]) == 1
    assert "--master" in capsys.readouterr().err
    assert run(["provision", "--master", "pi@a", "--reset", "pi@b"]) == 1
    assert "without --master" in capsys.readouterr().err
    assert run(["provision", "--master", "pi@a", "--worker", "a"]) == 1
    assert "named twice" in capsys.readouterr().err
