"""The STATUS word kubectl and the status page both print for a pod."""

from __future__ import annotations

from typing import Any

from core.kube.podstatus import pod_status


def pod(status: dict[str, Any], spec: dict[str, Any] | None = None, deleting: bool = False) -> dict[str, Any]:
    meta = {"name": "p", "deletionTimestamp": "2024-01-01T00:00:00Z"} if deleting else {"name": "p"}
    return {"metadata": meta, "spec": spec or {"containers": [{"name": "c"}]}, "status": status}


def test_phase_when_nothing_more_is_known() -> None:
    assert pod_status(pod({})) == "Pending"
    assert pod_status(pod({"phase": "Running"})) == "Running"


def test_a_waiting_reason_wins_over_the_phase() -> None:
    cs = [{"name": "c", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]
    assert pod_status(pod({"phase": "Running", "containerStatuses": cs})) == "CrashLoopBackOff"


def test_terminated_without_reason_shows_the_exit_code_or_signal() -> None:
    assert pod_status(pod({"containerStatuses": [{"state": {"terminated": {"exitCode": 3}}}]})) == "ExitCode:3"
    assert pod_status(pod({"containerStatuses": [{"state": {"terminated": {"exitCode": 137, "signal": 9}}}]})) \
        == "Signal:9"


def test_init_containers_count_up_and_show_their_failures() -> None:
    spec = {"initContainers": [{"name": "a"}, {"name": "b"}], "containers": [{"name": "c"}]}
    ok = {"state": {"terminated": {"exitCode": 0}}}
    running = {"state": {"running": {}}}
    assert pod_status(pod({"initContainerStatuses": [ok, running]}, spec)) == "Init:1/2"
    failing = {"state": {"terminated": {"exitCode": 1, "reason": "Error"}}}
    assert pod_status(pod({"initContainerStatuses": [failing]}, spec)) == "Init:Error"
    pulling = {"state": {"waiting": {"reason": "ImagePullBackOff"}}}
    assert pod_status(pod({"initContainerStatuses": [pulling]}, spec)) == "Init:ImagePullBackOff"


def test_completed_with_a_container_still_ready_reads_running() -> None:
    cs = [{"state": {"running": {}}, "ready": True}, {"state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]
    assert pod_status(pod({"phase": "Running", "containerStatuses": cs})) == "Running"


def test_deletion_shows_terminating_or_unknown_on_a_lost_node() -> None:
    assert pod_status(pod({"phase": "Running"}, deleting=True)) == "Terminating"
    assert pod_status(pod({"phase": "Running", "reason": "NodeLost"}, deleting=True)) == "Unknown"
