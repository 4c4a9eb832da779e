"""Owner bookkeeping without a server (`master.registry.fieldmanager`)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from core import errors
from master.registry import fieldmanager as fm

DEP: dict[str, Any] = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"app": "web"}},
    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
             "template": {"metadata": {"labels": {"app": "web"}},
                          "spec": {"containers": [{"name": "c", "image": "i:1"}]}}},
}


def _apply(live: dict[str, Any], config: dict[str, Any], manager: str = "kubectl",
           force: bool = False) -> dict[str, Any]:
    return fm.apply(live, config, "Deployment", "apps/v1", manager, force, "", True)


def _entries(obj: dict[str, Any]) -> dict[tuple[str, str, str], fm.Entry]:
    return {(e.manager, e.operation, e.subresource): e for e in fm.decode(obj["metadata"]["managedFields"])}


def test_apply_owns_exactly_the_manifest_minus_server_metadata() -> None:
    obj = _apply({}, DEP)
    entry = _entries(obj)[("kubectl", "Apply", "")]
    assert ("f:metadata", "f:name") not in entry.fields and ("f:apiVersion",) not in entry.fields
    assert ("f:spec", "f:selector") in entry.fields
    raw = obj["metadata"]["managedFields"][0]
    assert list(raw) == ["manager", "operation", "apiVersion", "time", "fieldsType", "fieldsV1"]


def test_update_takes_fields_without_conflict_and_apply_then_conflicts() -> None:
    live = _apply({}, DEP)
    scaled = copy.deepcopy(live)
    scaled["spec"]["replicas"] = 5
    fm.record_update(live, scaled, "Deployment", "apps/v1", "hpa", "scale", True)
    owners = _entries(scaled)
    assert owners[("hpa", "Update", "scale")].fields == {("f:spec", "f:replicas")}
    assert ("f:spec", "f:replicas") not in owners[("kubectl", "Apply", "")].fields
    with pytest.raises(errors.Conflict) as caught:
        _apply(scaled, DEP)
    assert caught.value.message == ('Apply failed with 1 conflict: conflict with "hpa" with subresource "scale" '
                                    "using apps/v1: .spec.replicas")
    # Leaving replicas out of the manifest: no conflict, and the scaler's value stays.
    without = copy.deepcopy(DEP)
    del without["spec"]["replicas"]
    assert _apply(scaled, without)["spec"]["replicas"] == 5


def test_unchanged_write_keeps_entries_and_times() -> None:
    live = _apply({}, DEP)
    live["metadata"]["managedFields"][0]["time"] = "2020-01-01T00:00:00Z"
    again = _apply(live, DEP)
    assert again["metadata"]["managedFields"] == live["metadata"]["managedFields"]
    same = copy.deepcopy(live)
    fm.record_update(live, same, "Deployment", "apps/v1", "other", "", True)
    assert same["metadata"]["managedFields"] == live["metadata"]["managedFields"]


def test_client_sent_managed_fields() -> None:
    live = _apply({}, DEP)
    for sent, expect_kept in (([], False), ([{}], False), ([{"operation": "Bogus"}], True), (None, True)):
        new = copy.deepcopy(live)
        if sent is None:
            new["metadata"].pop("managedFields")
        else:
            new["metadata"]["managedFields"] = sent
        fm.record_update(live, new, "Deployment", "apps/v1", "x", "", True)
        assert ("managedFields" in new["metadata"]) is expect_kept, sent


def test_status_is_owned_only_through_the_status_subresource() -> None:
    live = _apply({}, DEP)
    new = copy.deepcopy(live)
    new["status"] = {"replicas": 2}
    fm.record_update(live, new, "Deployment", "apps/v1", "ctl", "", True)
    assert ("ctl", "Update", "") not in _entries(new)
    fm.record_update(live, new, "Deployment", "apps/v1", "ctl", "status", True)
    assert _entries(new)[("ctl", "Update", "status")].fields == {("f:status", "f:replicas")}


def test_managers_from_user_agents() -> None:
    assert fm.manager_from_user_agent("kubectl/v1.33.1 (linux/amd64) kubernetes/abc") == "kubectl"
    assert fm.manager_from_user_agent("x" * 200) == "x" * 128


def test_kubectl_may_take_fields_client_side_apply_left_as_applied() -> None:
    import json

    last = copy.deepcopy(DEP)
    live = copy.deepcopy(DEP)
    live["metadata"]["annotations"] = {fm.LAST_APPLIED: json.dumps(last)}
    fm.record_update(None, live, "Deployment", "apps/v1", "kubectl-client-side-apply", "", True)
    wanted = copy.deepcopy(DEP)
    wanted["spec"]["replicas"] = 4
    with pytest.raises(errors.Conflict):
        _apply(live, wanted, manager="other")
    done = _apply(live, wanted)
    assert done["spec"]["replicas"] == 4
    assert json.loads(done["metadata"]["annotations"][fm.LAST_APPLIED])["spec"]["replicas"] == 4
    moved = copy.deepcopy(live)
    moved["spec"]["replicas"] = 3  # changed since the last client-side apply: a real conflict
    with pytest.raises(errors.Conflict):
        _apply(moved, wanted)


def test_update_entries_are_capped_at_ten() -> None:
    obj = _apply({}, DEP)
    for i in range(15):
        new = copy.deepcopy(obj)
        new["metadata"].setdefault("annotations", {})[f"a{i}"] = "x"
        new["metadata"]["managedFields"] = copy.deepcopy(obj["metadata"]["managedFields"])
        fm.record_update(obj, new, "Deployment", "apps/v1", f"writer-{i:02}", "", True)
        for entry in new["metadata"]["managedFields"]:
            entry.setdefault("time", "")
            if entry["manager"] == f"writer-{i:02}":
                entry["time"] = f"2026-01-01T00:00:{i:02}Z"  # distinct seconds, oldest first
        obj = new
    entries = fm.decode(obj["metadata"]["managedFields"])
    updates = [e for e in entries if e.operation == "Update"]
    assert len(updates) == 10
    ancient = [e for e in updates if e.manager == "ancient-changes"]
    assert len(ancient) == 1
    assert ancient[0].fields == {("f:metadata", "f:annotations", f"f:a{i}") for i in range(6)}
    assert {e.manager for e in updates} == {"ancient-changes", *(f"writer-{i:02}" for i in range(6, 15))}


def test_untouched_entries_are_written_back_as_stored_and_client_entries_canonically() -> None:
    live = _apply({}, DEP)
    stored = live["metadata"]["managedFields"]
    new = copy.deepcopy(live)
    new["metadata"]["labels"]["extra"] = "1"
    fm.record_update(live, new, "Deployment", "apps/v1", "labeller", "", True)
    assert new["metadata"]["managedFields"][0] is stored[0]  # the applier's entry: not decoded nor re-encoded
    sent = copy.deepcopy(live)
    sent["metadata"]["managedFields"] = [{**stored[0], "unknown": 1}]
    fm.record_update(live, sent, "Deployment", "apps/v1", "x", "", True)
    assert "unknown" not in sent["metadata"]["managedFields"][0]
