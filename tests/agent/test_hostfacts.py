"""Host facts through the injectable seam: a faked Raspberry Pi, and what the Node shows of it."""

from __future__ import annotations

from pathlib import Path

from agent.hostfacts import collect
from agent.kubelet import node
from core.settings import AgentSettings
from tests.core.fakepi import FakePi

PI_FILES = {
    "/proc/meminfo": "MemTotal:        3884096 kB\nMemFree: 100 kB\nMemAvailable:    2000000 kB\n",
    "/proc/sys/kernel/pid_max": "32768\n",
    "/proc/loadavg": "0.10 0.20 0.30 1/230 4242\n",
    "/proc/device-tree/model": "Raspberry Pi 4 Model B Rev 1.4\x00",
    "/proc/sys/kernel/osrelease": "6.1.0-rpi7-rpi-v8\n",
    "/etc/os-release": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n',
    "/etc/machine-id": "abc123\n",
    "/proc/sys/kernel/random/boot_id": "boot-1\n",
    "/sys/class/thermal/thermal_zone0/temp": "61850\n",
}


def pi(throttled: str | None = "throttled=0x50005", files: dict[str, str] | None = None) -> FakePi:
    """A Pi 4 with these files, whose firmware reports `throttled` (no vcgencmd when None)."""
    commands = {} if throttled is None else {"vcgencmd get_throttled": (0, throttled)}
    return FakePi(files=dict(PI_FILES if files is None else files), commands=commands,
                  disk_bytes=(32 * 2**30, 20 * 2**30))


def _settings(**kw: object) -> AgentSettings:
    return AgentSettings(server="https://m:6443", node_name="pi-1", data_dir=Path("/tmp"), **kw)  # type: ignore[arg-type]


IDENT = node.NodeIdentity(node_ip="192.168.1.11", runtime_version="docker://20.10.24", serving_cert_sha256="ab" * 32)


def test_a_pi_is_described_from_its_files_and_firmware() -> None:
    facts = collect(pi(), Path("/tmp"))
    assert facts.board_model == "Raspberry Pi 4 Model B Rev 1.4"
    assert facts.soc_temperature_c == 61.8 or facts.soc_temperature_c == 61.9
    assert facts.throttled == 0x50005
    assert facts.throttled_now == ["under-voltage", "throttled"]
    assert facts.arch == "arm64" and facts.cpus == 4
    assert facts.memory_bytes == 3884096 * 1024
    assert facts.os_image == "Debian GNU/Linux 12 (bookworm)"


def test_node_shows_pi_facts_as_annotations_and_throttling_as_a_condition() -> None:
    facts = collect(pi(), Path("/tmp"))
    notes = node.node_annotations(IDENT, facts, facts.soc_temperature_c)
    assert notes["pikube.io/board-model"] == "Raspberry Pi 4 Model B Rev 1.4"
    assert notes["pikube.io/throttled"] == "0x50005"
    assert notes["pikube.io/soc-temperature"].startswith("61.")
    conds = {c["type"]: c for c in node.conditions(_settings(), facts, None)}
    assert conds["Throttled"]["status"] == "True"
    assert "under-voltage" in conds["Throttled"]["message"]
    assert conds["Ready"]["status"] == "True"
    assert conds["MemoryPressure"]["status"] == "False"


def test_a_board_without_firmware_tools_has_no_throttling_condition() -> None:
    facts = collect(pi(throttled=None), Path("/tmp"))
    types = [c["type"] for c in node.conditions(_settings(), facts, None)]
    assert "Throttled" not in types
    calm = collect(pi(throttled="throttled=0x0"), Path("/tmp"))
    conds = {c["type"]: c["status"] for c in node.conditions(_settings(), calm, None)}
    assert conds["Throttled"] == "False"


def test_pressure_and_runtime_down() -> None:
    files = dict(PI_FILES)
    files["/proc/meminfo"] = "MemTotal: 1000000 kB\nMemAvailable: 50000 kB\n"
    facts = collect(pi(files=files), Path("/tmp"))
    conds = {c["type"]: c for c in node.conditions(_settings(), facts, "connection refused")}
    assert conds["MemoryPressure"]["status"] == "True"
    assert conds["Ready"]["status"] == "False" and "connection refused" in conds["Ready"]["message"]


def test_master_board_labels_and_status_shape() -> None:
    facts = collect(pi(), Path("/tmp"))
    labels = node.labels(_settings(master_board=True, node_labels=(("zone", "desk"),
                                                                   ("node-role.kubernetes.io/worker", ""))), facts)
    # The board announces its role; the master turns it into node-role labels, which a node may not set.
    assert labels["pikube.io/board-role"] == "master" and labels["zone"] == "desk"
    assert not [k for k in labels if k.startswith("node-role.kubernetes.io/")]
    assert labels["kubernetes.io/arch"] == "arm64"
    status = node.status(_settings(), IDENT, facts, None)
    assert status["capacity"]["cpu"] == "4" and status["capacity"]["memory"] == "3884096Ki"
    assert status["allocatable"]["memory"] == f"{3884096 - 100 * 1024}Ki"
    assert status["nodeInfo"]["containerRuntimeVersion"] == "docker://20.10.24"
    assert status["daemonEndpoints"]["kubeletEndpoint"]["Port"] == 10250


class FakeApi:
    """Records the writes a NodeReporter makes."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, dict[str, object]]] = []

    def get(self, res: object, name: str, namespace: str = "") -> dict[str, object]:
        from core import errors

        raise errors.NotFound(message="not found")

    def create(self, res: object, obj: dict[str, object], namespace: str = "") -> dict[str, object]:
        self.writes.append(("create", obj))
        return {**obj, "metadata": {**obj["metadata"], "uid": "node-uid"}}  # type: ignore[dict-item]

    def patch(self, res: object, name: str, patch: dict[str, object], namespace: str = "", sub: str = "",
              content_type: str = "") -> dict[str, object]:
        self.writes.append((sub or "metadata", patch))
        return {"metadata": {"name": name, "uid": "node-uid"}, **patch}


def test_node_status_is_written_on_change_or_once_a_minute() -> None:
    api = FakeApi()
    now = [0.0]
    host = pi()
    reporter = node.NodeReporter(api, _settings(), IDENT, lambda: collect(host, Path("/tmp")),  # type: ignore[arg-type]
                                 lambda: None, lambda: now[0])
    reporter.register()
    assert [w[0] for w in api.writes] == ["create", "status"]
    api.writes.clear()
    now[0] = 10
    assert reporter.sync() is False  # nothing changed, heartbeat not due
    host.files["/sys/class/thermal/thermal_zone0/temp"] = "63000\n"  # a small move: no write at all
    now[0] = 20
    assert reporter.sync() is False and api.writes == []
    host.commands["vcgencmd get_throttled"] = (0, "throttled=0x0")  # the condition flips: written at once
    now[0] = 30
    assert reporter.sync() is True
    assert [w[0] for w in api.writes] == ["metadata", "status"]  # the throttled annotation changed too
    api.writes.clear()
    now[0] = 89
    assert reporter.sync() is False
    now[0] = 91
    assert reporter.sync() is True and [w[0] for w in api.writes] == ["status"]  # once-a-minute heartbeat
