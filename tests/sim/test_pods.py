"""The simulated board's pod state machine: start, readiness, exits and restart policies."""

from __future__ import annotations

from typing import Any

from pikube.sim.pods import SimPod


def sim(policy: str = "Always", **annotations: str) -> SimPod:
    pod: dict[str, Any] = {"metadata": {"name": "p", "namespace": "n", "uid": "uid-1",
                                        "annotations": {f"sim.pikube.io/{k}": v for k, v in annotations.items()}},
                           "spec": {"restartPolicy": policy, "containers": [{"name": "c", "image": "i"}]}}
    s = SimPod.from_pod(pod, 100.0)
    s.ip = "10.244.0.2"
    return s


def test_starts_then_ready() -> None:
    s = sim(**{"ready-after-seconds": "2"})
    s.step(100.1, 0.5, 0.1)
    assert s.phase == "Pending"
    s.step(100.6, 0.5, 0.1)
    assert s.phase == "Running" and not s.ready
    s.step(103.0, 0.5, 0.1)
    assert s.ready
    status = s.status("192.168.1.2", 103.0)
    assert status["podIP"] == "10.244.0.2" and status["hostIP"] == "192.168.1.2"
    assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "True"
    assert status["containerStatuses"][0]["state"]["running"]


def test_never_ready() -> None:
    s = sim(**{"never-ready": "true"})
    s.step(101, 0, 0)
    s.step(200, 0, 0)
    assert s.phase == "Running" and not s.ready


def test_exit_codes_and_restart_policies() -> None:
    ok = sim("Never", **{"run-seconds": "1"})
    ok.step(100, 0, 0)
    ok.step(101.5, 0, 0)
    assert ok.phase == "Succeeded"
    assert ok.status("h", 102)["containerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
    bad = sim("Never", **{"run-seconds": "1", "exit-code": "3"})
    bad.step(100, 0, 0)
    bad.step(101.5, 0, 0)
    assert bad.phase == "Failed"
    assert bad.status("h", 102)["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 3
    flaky = sim("OnFailure", **{"run-seconds": "1", "exit-code": "1"})
    flaky.step(100, 0, 0)
    flaky.step(101.5, 0, 0.5)
    assert flaky.phase == "Running" and flaky.restarts == 1
    assert flaky.status("h", 101.6)["containerStatuses"][0]["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    flaky.step(102.1, 0, 0.5)  # restarted
    assert flaky.status("h", 102.1)["containerStatuses"][0]["state"].get("running")
