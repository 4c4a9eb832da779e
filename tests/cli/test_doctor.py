"""`pikube doctor` on faked Pis: each pitfall found with its fix; `--fix` applies only the safe ones."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from pikube.doctor import fixes
from pikube.doctor.checks import Context, Finding, Run, Status, Write, blocking, run_checks
from tests.core.fakepi import NOW, FakePi, GiB


def _by_check(host: FakePi, ctx: Context | None = None) -> dict[str, Finding]:
    return {f.check: f for f in run_checks(host, ctx or Context())}


def test_a_well_set_up_pi_passes_every_check() -> None:
    found = _by_check(FakePi())
    assert {name: f.status for name, f in found.items() if f.status is not Status.OK} == {}
    assert set(found) == {"memory-cgroup", "cgroups", "iptables", "nftables", "vxlan", "ip-forward",
                          "bridge-netfilter", "swap", "clock", "docker", "disk", "first-boot", "node-resolver",
                          "cluster-dns"}
    assert found["cgroups"].detail.startswith("cgroup v2")
    assert blocking(list(found.values())) == []


def test_raspberry_pi_os_default_memory_cgroup_off_is_fixed_in_cmdline_txt() -> None:
    pi = FakePi()
    pi.files["/sys/fs/cgroup/cgroup.controllers"] = "cpuset cpu io pids\n"
    pi.files["/boot/firmware/cmdline.txt"] = "console=tty1 root=PARTUUID=1-02 rootwait cgroup_disable=memory\n"
    finding = _by_check(pi)["memory-cgroup"]
    assert finding.status is Status.FAIL and "cgroup_disable=memory" in finding.detail
    assert finding.fix is not None and finding.fix.safe and "reboot" in finding.fix.after
    assert "cgroup_enable=memory cgroup_memory=1" in finding.fix.text
    assert "/boot/firmware/cmdline.txt" in finding.fix.text
    said: list[str] = []
    assert fixes.apply(pi, [finding], said.append) == []
    assert pi.written == {"/boot/firmware/cmdline.txt":
                          "console=tty1 root=PARTUUID=1-02 rootwait cgroup_enable=memory cgroup_memory=1\n"}
    assert "reboot" in said[0]


def test_cgroup_v1_with_memory_disabled_and_no_cmdline_txt() -> None:
    pi = FakePi()
    del pi.files["/sys/fs/cgroup/cgroup.controllers"], pi.files["/boot/firmware/cmdline.txt"]
    pi.files["/proc/cgroups"] = "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t2\t1\t1\nmemory\t0\t1\t0\n"
    found = _by_check(pi)
    assert found["cgroups"].detail.startswith("cgroup v1")
    assert found["memory-cgroup"].status is Status.FAIL
    assert found["memory-cgroup"].fix is not None and not found["memory-cgroup"].fix.safe
    assert "GRUB_CMDLINE_LINUX" in found["memory-cgroup"].fix.text


def _ca(not_before: dt.datetime, tmp_path: Path) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pikube-ca")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(not_before).not_valid_after(not_before + dt.timedelta(days=3650))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(Encoding.PEM)


def test_a_clock_before_the_cas_not_before_fails(tmp_path: Path) -> None:
    ca = _ca(dt.datetime.fromtimestamp(NOW, dt.UTC) + dt.timedelta(days=30), tmp_path)
    pi = FakePi()
    pi.files["/var/lib/pikube/agent/pki/ca.crt"] = ca.decode()
    finding = _by_check(pi)["clock"]
    assert finding.status is Status.FAIL
    assert "earlier than the cluster CA's notBefore" in finding.detail and "timedatectl set-ntp" in finding.fix.text  # type: ignore[union-attr]
    # The CA enable-worker just pinned counts as well, before any file exists.
    assert _by_check(FakePi(), Context(cas=(ca,)))["clock"].status is Status.FAIL
    assert _by_check(FakePi(), Context(cas=(_ca(dt.datetime(2025, 3, 1, tzinfo=dt.UTC), tmp_path),)))[
        "clock"].status is Status.OK


def test_a_board_that_thinks_it_is_1970_is_warned() -> None:
    finding = _by_check(FakePi(clock=0.0))["clock"]
    assert finding.status is Status.WARN and "1970-01-01" in finding.detail


def test_legacy_iptables_swap_and_missing_bridge_netfilter_are_warnings_with_fixes() -> None:
    pi = FakePi()
    pi.commands["iptables --version"] = (0, "iptables v1.8.7 (legacy)")
    pi.files["/proc/swaps"] += "/var/swap                               file\t\t102396\t\t0\t\t-2\n"
    del pi.files["/proc/sys/net/bridge/bridge-nf-call-iptables"]
    pi.files["/proc/sys/net/ipv4/ip_forward"] = "0\n"
    found = _by_check(pi)
    assert {n: f.status for n, f in found.items() if f.status is not Status.OK} == {
        "iptables": Status.WARN, "swap": Status.WARN, "bridge-netfilter": Status.WARN, "ip-forward": Status.WARN}
    assert "iptables-nft" in found["iptables"].fix.text and not found["iptables"].fix.safe  # type: ignore[union-attr]
    assert "99 MiB of swap" in found["swap"].detail and not found["swap"].fix.safe  # type: ignore[union-attr]
    pi.commands["sysctl -w net.ipv4.ip_forward=1"] = pi.commands["modprobe br_netfilter"] = (0, "")
    said: list[str] = []
    assert fixes.apply(pi, list(found.values()), said.append) == []
    # Only the safe ones: forwarding and bridge netfilter, now and at boot; swap and iptables are told only.
    assert pi.written == {"/etc/sysctl.d/90-pikube.conf": "net.ipv4.ip_forward = 1\n",
                          "/etc/modules-load.d/pikube.conf": "br_netfilter\nvxlan\n"}
    assert [c for c in pi.ran if c.startswith(("sysctl", "modprobe", "update-alternatives", "swapoff"))] == [
        "sysctl -w net.ipv4.ip_forward=1", "modprobe br_netfilter"]


def test_no_vxlan_matters_only_for_the_vxlan_backend() -> None:
    pi = FakePi()
    del pi.files["/sys/module/vxlan"]
    pi.commands["modinfo vxlan"] = (1, "modinfo: ERROR: Module vxlan not found.")
    assert _by_check(pi)["vxlan"].status is Status.WARN
    assert _by_check(pi, Context(backend="vxlan"))["vxlan"].status is Status.FAIL
    pi.commands["modinfo vxlan"] = (0, "filename: /lib/modules/.../vxlan.ko.xz")
    assert _by_check(pi, Context(backend="vxlan"))["vxlan"].status is Status.OK


def test_docker_missing_nft_and_a_full_card_block_the_bootstrap() -> None:
    pi = FakePi(docker=(False, "connection refused"), disk_bytes=(29 * GiB, GiB // 2))
    del pi.commands["nft --version"]
    found = run_checks(pi, Context())
    problems = blocking(found)
    assert [p.split(":")[0] for p in problems] == ["nftables", "docker", "disk"]
    assert "no Docker engine answers at unix:///var/run/docker.sock (connection refused)" in problems[1]
    by = {f.check: f for f in found}
    assert by["docker"].fix is not None and by["docker"].fix.steps == (Run(("systemctl", "enable", "--now",
                                                                             "docker")),)
    assert by["nftables"].fix is not None and by["nftables"].fix.steps == (Run(("apt-get", "install", "-y",
                                                                                 "nftables")),)
    assert by["disk"].fix is not None and not by["disk"].fix.safe


def test_low_disk_is_a_warning_first() -> None:
    finding = _by_check(FakePi(disk_bytes=(29 * GiB, int(1.5 * GiB))))["disk"]
    assert finding.status is Status.WARN and "pressure starts below 10%" in finding.detail


def test_a_fix_that_fails_is_reported_and_the_rest_still_run() -> None:
    pi = FakePi()
    pi.commands["sysctl -w net.ipv4.ip_forward=1"] = (255, "sysctl: permission denied")
    told = Finding("a", Status.WARN, "d")  # no fix: skipped
    bad = Finding("ip-forward", Status.WARN, "off", fix=_fix(Run(("sysctl", "-w", "net.ipv4.ip_forward=1"))))
    good = Finding("br", Status.WARN, "off", fix=_fix(Write("/etc/x", "y\n")))
    said: list[str] = []
    assert fixes.apply(pi, [told, bad, good], said.append) == [
        "ip-forward: `sysctl -w net.ipv4.ip_forward=1` failed: sysctl: permission denied"]
    assert pi.written == {"/etc/x": "y\n"}


def test_dns_checks_warn_about_a_silent_resolver_a_self_loop_and_a_silent_cluster_dns() -> None:
    pi = FakePi()
    found = _by_check(pi)
    assert found["node-resolver"].status is Status.OK and "192.168.1.1" in found["node-resolver"].detail
    assert found["cluster-dns"].detail.endswith("kubernetes.default.svc.cluster.local = 10.96.0.1")
    del pi.dns[("192.168.1.1", ".")]
    del pi.dns[("10.96.0.10", "kubernetes.default.svc.cluster.local")]
    found = _by_check(pi)
    assert found["node-resolver"].status is Status.WARN and "does not answer" in found["node-resolver"].detail
    assert found["cluster-dns"].status is Status.WARN and "is `pikube agent` running" in found["cluster-dns"].detail
    assert blocking(list(found.values())) == []  # warnings only
    pi.files["/etc/resolv.conf"] = "nameserver 10.96.0.10\n"
    assert "names only the cluster DNS" in _by_check(pi)["node-resolver"].detail
    pi.files["/etc/resolv.conf"] = "# nothing\n"
    assert "names no nameserver" in _by_check(pi)["node-resolver"].detail
    pi.commands["ip -4 -o addr show dev lo"] = (0, "1: lo    inet 127.0.0.1/8 scope host lo\n")
    assert _by_check(pi)["cluster-dns"].status is Status.OK  # no agent with the pod network yet: nothing to ask


def _fix(step: Run | Write) -> object:
    from pikube.doctor.checks import Fix

    return Fix("do it", (step,), safe=True)


@pytest.mark.parametrize("backend", ["host-gw", "vxlan"])
def test_this_machine_passes_the_preflight(backend: str) -> None:
    """The dev cluster runs enable-* here: the real host must not be refused (Docker is checked elsewhere)."""
    from pikube.doctor.checks import CHECKS, check_cluster_dns, check_docker, check_node_resolver
    from pikube.doctor.host import RealHost

    # Not asked here: Docker (checked elsewhere) and DNS (a query to this machine's resolver would leave it).
    skipped = (check_docker, check_node_resolver, check_cluster_dns)
    found = run_checks(RealHost(), Context(backend=backend, data_dir="/tmp"), [c for c in CHECKS if c not in skipped])
    assert blocking(found) == []


def _first_boot(pi: FakePi, record: object) -> Finding:
    from core import firstboot

    assert isinstance(record, firstboot.Record)
    pi.files["/var/lib/pikube/firstboot.json"] = record.to_json()
    return _by_check(pi)["first-boot"]


def test_a_malformed_pikube_yaml_is_reported_as_a_warning_with_each_problem() -> None:
    from core import firstboot

    found = _first_boot(FakePi(), firstboot.Record(
        result=firstboot.INVALID, source="/boot/firmware/pikube.yaml",
        problems=("hostname: a host name is written in lowercase: write 'pi-1'.",
                  "wifi.country: write the country code in capitals: 'GB'.")))
    assert found.status is Status.WARN  # never FAIL: enable-* still run on this board
    assert found.detail == ("/boot/firmware/pikube.yaml is not valid, so none of it was applied: hostname: a host "
                            "name is written in lowercase: write 'pi-1'. wifi.country: write the country code in "
                            "capitals: 'GB'.")
    assert found.fix is not None and "journalctl -u pikube-firstboot" in found.fix.text and not found.fix.safe


def test_a_failed_first_boot_step_is_named() -> None:
    from core import firstboot

    found = _first_boot(FakePi(), firstboot.Record(result=firstboot.FAILED, steps=(
        firstboot.StepRecord("hostname", firstboot.DONE),
        firstboot.StepRecord("role", firstboot.STEP_FAILED, error="enable-worker failed 4 times"))))
    assert found.status is Status.WARN and "(role: enable-worker failed 4 times)" in found.detail
    applied = _first_boot(FakePi(), firstboot.Record(result=firstboot.APPLIED, finished="2026-05-28T10:00:00Z",
                                                     source="/boot/firmware/pikube.yaml"))
    assert applied.status is Status.OK and "2026-05-28T10:00:00Z" in applied.detail
    assert _by_check(FakePi())["first-boot"].status is Status.OK  # set up by hand: nothing to say


@pytest.mark.integration
def test_the_real_host_asks_a_real_engine_its_version(docker_engine: Any) -> None:
    """The doctor's Docker check speaks the Engine API over the socket itself (no Docker SDK on the way to Ready)."""
    from pikube.doctor.host import RealHost

    client = docker_engine.client()
    try:
        want = client.version()["Version"]
    finally:
        client.close()
    assert RealHost().docker_version(docker_engine.host) == (True, want)
    assert RealHost().docker_version("unix:///nonexistent/docker.sock") == (False, "no such file or directory")
