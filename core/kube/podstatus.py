"""The one word a pod's STATUS column shows (`Running`, `CrashLoopBackOff`, `Init:1/2`), as kubectl derives it.

`kubectl get pods` (the server's Table), the status page and anyone printing a
pod agree on it because it is written once, here, after kubectl's printPod.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def pod_status(pod: Obj) -> str:
    """The STATUS column: kubectl's reason logic (init containers, waiting/terminated reasons)."""
    status = pod.get("status") or {}
    reason = status.get("reason") or status.get("phase") or "Pending"
    init_statuses = status.get("initContainerStatuses") or []
    initializing = False
    total_init = len((pod.get("spec") or {}).get("initContainers") or [])
    for i, cs in enumerate(init_statuses):
        state = cs.get("state") or {}
        term, wait = state.get("terminated"), state.get("waiting")
        if term and term.get("exitCode") == 0:
            continue
        if term:
            reason = f"Init:{term.get('reason') or 'Error'}" if term.get("reason") else \
                f"Init:ExitCode:{term.get('exitCode')}"
        elif wait and wait.get("reason") and wait.get("reason") != "PodInitializing":
            reason = f"Init:{wait['reason']}"
        else:
            reason = f"Init:{i}/{total_init}"
        initializing = True
        break
    if not initializing:
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            state = cs.get("state") or {}
            wait, term = state.get("waiting"), state.get("terminated")
            if wait and wait.get("reason"):
                reason = wait["reason"]
            elif term and term.get("reason"):
                reason = term["reason"]
            elif term:
                reason = f"Signal:{term['signal']}" if term.get("signal") else f"ExitCode:{term.get('exitCode')}"
            elif state.get("running") is not None and cs.get("ready"):
                has_running = True
        if reason == "Completed" and has_running:
            reason = "Running"
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        reason = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"
    return str(reason)
