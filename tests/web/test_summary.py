"""The JSON summary: board cards, Pi facts, workloads, pods by board, services and events."""

from __future__ import annotations

from typing import Any

from master.registry.context import ApiContext
from pikube.run.master import page_prefixes
from tests.web.conftest import Objects
from web import boardfacts, summary
from web.model import Summary
from web.source import Source, Watch

Obj = dict[str, Any]


def build(ctx: ApiContext) -> Summary:
    return summary.summarize(summary.read(ctx.store, page_prefixes(ctx.catalog)))


def test_temperature_levels() -> None:
    def level(raw: str) -> str | None:
        t = boardfacts.temperature({boardfacts.TEMPERATURE_ANNOTATION: raw})
        return t["level"] if t else None

    assert [level(v) for v in ("45.0", "69.9", "70.0", "79.9", "80.0", "91")] == \
        ["ok", "ok", "warn", "warn", "bad", "bad"]
    assert boardfacts.temperature({}) is None
    assert level("hot") is None


def test_throttling_flags_now_and_since_boot() -> None:
    def flags(raw: str) -> list[tuple[str, bool]]:
        return [(f["flag"], f["now"]) for f in boardfacts.throttling({boardfacts.THROTTLED_ANNOTATION: raw})]

    assert flags("0x0") == []
    assert flags("0x50000") == [("under-voltage", False), ("throttled", False)]
    # Happening now: shown once, as now.
    assert flags("0x50005") == [("under-voltage", True), ("throttled", True)]
    assert flags("0x8") == [("soft temperature limit", True)]
    assert flags("garbage") == []


def test_board_card(ctx: ApiContext, objects: Objects) -> None:
    objects.node("pi-1", cpu="4", memory="4Gi", address="192.168.1.10", labels={"node-role.kubernetes.io/master": ""},
                 annotations={boardfacts.MODEL_ANNOTATION: "Raspberry Pi 4 Model B Rev 1.4",
                              boardfacts.TEMPERATURE_ANNOTATION: "74.2", boardfacts.THROTTLED_ANNOTATION: "0x50005"})
    objects.pod("a", "pi-1", cpu="250m", memory="128Mi")
    objects.pod("b", "pi-1", cpu="1", memory="1Gi")
    objects.pod("done", "pi-1", cpu="2", memory="2Gi", phase="Succeeded")  # finished: holds nothing
    [card] = build(ctx)["boards"]
    assert card["name"] == "pi-1" and card["role"] == "master" and card["ready"] == "Ready"
    assert card["model"] == "Raspberry Pi 4 Model B Rev 1.4" and card["arch"] == "arm64"
    assert card["address"] == "192.168.1.10"
    assert card["cpu"] == {"requested": 1250, "allocatable": 4000}
    assert card["memory"] == {"requested": (128 + 1024) * 2**20, "allocatable": 4 * 2**30}
    assert card["pods"] == 2 and card["podCapacity"] == 110
    assert card["temperature"] == {"celsius": 74.2, "level": "warn"}
    assert [f["flag"] for f in card["throttling"] if f["now"]] == ["under-voltage", "throttled"]
    assert card["kubelet"] == "v1.29.0-pikube.0.1.0" and card["runtime"] == "docker://20.10.24"
    assert card["kernel"].startswith("6.1.0") and card["created"]
    assert card["tone"] == "warn"


def test_not_ready_board_says_why(ctx: ApiContext, objects: Objects) -> None:
    objects.node("pi-2", ready="Unknown")
    objects.node("pi-1")
    summ = build(ctx)
    by_name = {b["name"]: b for b in summ["boards"]}
    assert by_name["pi-2"]["ready"] == "NotReady" and by_name["pi-2"]["tone"] == "bad"
    assert "stopped posting" in by_name["pi-2"]["readyReason"]
    assert by_name["pi-1"]["ready"] == "Ready" and by_name["pi-1"]["tone"] == "ok"
    assert summ["totals"]["boards"] == 2 and summ["totals"]["boardsReady"] == 1


def test_boards_sorted_masters_first_then_naturally(ctx: ApiContext, objects: Objects) -> None:
    for name in ("pi-10", "pi-2", "pi-1"):
        objects.node(name)
    objects.node("boss", labels={"node-role.kubernetes.io/control-plane": ""})
    assert [b["name"] for b in build(ctx)["boards"]] == ["boss", "pi-1", "pi-2", "pi-10"]


def test_pods_grouped_by_board_with_tones(ctx: ApiContext, objects: Objects) -> None:
    objects.node("pi-1")
    objects.node("pi-2")
    objects.pod("ok", "pi-1")
    objects.pod("crash", "pi-1", ready=False, restarts=7, waiting="CrashLoopBackOff")
    objects.pod("starting", "pi-2", ready=False, waiting="ContainerCreating", phase="Pending")
    objects.pod("nowhere", phase="Pending", ready=False, waiting="")
    groups = build(ctx)["podsByBoard"]
    assert [g["board"] for g in groups] == ["pi-1", "pi-2", ""]
    rows = {p["name"]: p for g in groups for p in g["pods"]}
    assert (rows["ok"]["status"], rows["ok"]["tone"], rows["ok"]["ready"]) == ("Running", "ok", "1/1")
    assert (rows["crash"]["status"], rows["crash"]["tone"], rows["crash"]["restarts"]) == ("CrashLoopBackOff", "bad", 7)
    assert (rows["starting"]["status"], rows["starting"]["tone"]) == ("ContainerCreating", "busy")
    assert [p["name"] for p in groups[2]["pods"]] == ["nowhere"]
    assert build(ctx)["totals"]["podsFailing"] == 1


def test_empty_board_still_has_a_group(ctx: ApiContext, objects: Objects) -> None:
    objects.node("pi-1")
    assert build(ctx)["podsByBoard"] == [{"board": "pi-1", "pods": []}]


def test_pod_owner_names_the_deployment(ctx: ApiContext, objects: Objects) -> None:
    from web.pods import owner

    pod = {"metadata": {"labels": {"pod-template-hash": "5d8f9"}, "ownerReferences": [
        {"kind": "ReplicaSet", "name": "web-5d8f9", "controller": True}]}}
    assert owner(pod) == "Deployment/web"
    assert owner({"metadata": {"ownerReferences": [{"kind": "Job", "name": "backup", "controller": True}]}}) == \
        "Job/backup"
    assert owner({"metadata": {}}) == ""


def test_workloads(ctx: ApiContext, objects: Objects) -> None:
    template = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}}
    objects.create("deployments", "default", {"metadata": {"name": "web"}, "spec": {
        "replicas": 3, "selector": {"matchLabels": {"app": "x"}}, "template": template}}, group="apps")
    objects.set_status("deployments", "default", "web", {"replicas": 3, "updatedReplicas": 3, "readyReplicas": 2,
                                                         "availableReplicas": 2}, group="apps")
    objects.create("daemonsets", "default", {"metadata": {"name": "agent"}, "spec": {
        "selector": {"matchLabels": {"app": "x"}}, "template": template}}, group="apps")
    objects.set_status("daemonsets", "default", "agent", {"desiredNumberScheduled": 3, "numberReady": 3,
                                                          "updatedNumberScheduled": 3}, group="apps")
    job_template = {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}
    objects.create("jobs", "default", {"metadata": {"name": "backup"}, "spec": {"completions": 2,
                                                                               "template": job_template}},
                   group="batch")
    objects.set_status("jobs", "default", "backup", {"succeeded": 2, "conditions": [
        {"type": "Complete", "status": "True"}]}, group="batch")
    rows = {w["kind"]: w for w in build(ctx)["workloads"]}
    assert (rows["Deployment"]["ready"], rows["Deployment"]["desired"], rows["Deployment"]["tone"]) == (2, 3, "warn")
    assert rows["Deployment"]["images"] == ["nginx:1.25"]
    assert (rows["DaemonSet"]["ready"], rows["DaemonSet"]["desired"], rows["DaemonSet"]["tone"]) == (3, 3, "ok")
    assert (rows["Job"]["ready"], rows["Job"]["desired"], rows["Job"]["status"]) == (2, 2, "complete")


def test_nodeport_links_point_at_ready_boards(ctx: ApiContext, objects: Objects) -> None:
    objects.node("pi-1", address="192.168.1.10")
    objects.node("pi-2", address="192.168.1.11", ready="Unknown")
    objects.create("services", "default", {"metadata": {"name": "web"}, "spec": {
        "type": "NodePort", "selector": {"app": "x"}, "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30080}]}})
    svc = next(s for s in build(ctx)["services"] if s["name"] == "web")
    assert svc["type"] == "NodePort" and svc["clusterIP"].startswith("10.")
    [port] = svc["ports"]
    assert (port["port"], port["targetPort"], port["nodePort"]) == (80, "8080", 30080)
    assert port["urls"] == ["http://192.168.1.10:30080/"]
    assert port["externalUrls"] == [] and svc["externalIPs"] == [] and not svc["pending"]


def test_external_addresses_are_listed_and_linked_as_kubectl_shows_them(ctx: ApiContext, objects: Objects) -> None:
    objects.create("services", "default", {"metadata": {"name": "lb"}, "spec": {
        "type": "LoadBalancer", "selector": {"app": "x"}, "externalIPs": ["192.168.1.50"],
        "ports": [{"name": "web", "port": 80, "targetPort": 8080}, {"name": "dns", "port": 53, "protocol": "UDP"}]}})
    objects.create("services", "default", {"metadata": {"name": "waiting"}, "spec": {
        "type": "LoadBalancer", "selector": {"app": "y"}, "ports": [{"port": 81}]}})
    objects.set_status("services", "default", "lb", {"loadBalancer": {"ingress": [{"ip": "192.168.1.10"}]}})
    rows = {s["name"]: s for s in build(ctx)["services"]}
    assert rows["lb"]["externalIPs"] == ["192.168.1.10", "192.168.1.50"] and not rows["lb"]["pending"]
    tcp, udp = rows["lb"]["ports"]
    assert tcp["externalUrls"] == ["http://192.168.1.10:80/", "http://192.168.1.50:80/"]
    assert udp["externalUrls"] == []
    assert rows["waiting"]["externalIPs"] == [] and rows["waiting"]["pending"]


def test_recent_events_warnings_first(ctx: ApiContext, objects: Objects) -> None:
    def event(name: str, kind: str, at: str) -> None:
        objects.create("events", "default", {
            "metadata": {"name": name}, "type": kind, "reason": name, "message": f"{name} happened",
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"}, "count": 2,
            "firstTimestamp": at, "lastTimestamp": at})

    event("old-warning", "Warning", "2024-01-01T00:00:00Z")
    for i in range(40):
        event(f"normal-{i:02d}", "Normal", f"2024-01-02T00:00:{i:02d}Z")
    event("new-warning", "Warning", "2024-01-02T00:00:30Z")
    rows = build(ctx)["events"]
    assert len(rows) == 30
    assert rows[0]["reason"] == "new-warning" and rows[0]["object"] == "Pod/p" and rows[0]["count"] == 2
    assert rows[1]["reason"] == "normal-39"  # then the newest normal ones
    assert "old-warning" not in [e["reason"] for e in rows]  # not recent


class SpyStore:
    """A store that records which prefixes were read or watched."""

    def __init__(self, store: Source) -> None:
        self.store = store
        self.read: list[str] = []

    def list(self, prefix: str) -> tuple[list[Obj], int]:
        self.read.append(prefix)
        return self.store.list(prefix)

    def watch(self, prefix: str, since: int) -> Watch:
        self.read.append(prefix)
        return self.store.watch(prefix, since)

    def revision(self) -> int:
        return self.store.revision()


def test_never_reads_secrets(ctx: ApiContext, objects: Objects) -> None:
    import threading

    from web.feed import ChangeFeed, SummaryCache

    spy = SpyStore(ctx.store)
    prefixes = page_prefixes(ctx.catalog)
    stop = threading.Event()
    feed = ChangeFeed(spy, prefixes.values(), stop)
    cache = SummaryCache(feed, lambda: summary.build(spy, prefixes))
    try:
        cache.current()
    finally:
        stop.set()
        feed.join(3)
    assert spy.read and not [p for p in spy.read if "secrets" in p or "configmaps" in p or "serviceaccounts" in p]
    assert set(spy.read) == set(prefixes.values())


def test_cronjobs_are_listed_with_their_schedule() -> None:
    from web.workloads import cronjob

    base = {"metadata": {"namespace": "default", "name": "backup"}, "spec": {"schedule": "0 3 * * *", "jobTemplate": {
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "restic"}]}}}}}}
    idle = cronjob(base)
    assert (idle["kind"], idle["status"], idle["images"]) == ("CronJob", "every 0 3 * * *", ["restic"])
    running = cronjob({**base, "status": {"active": [{"name": "backup-1"}]}})
    assert (running["ready"], running["status"]) == (1, "1 running (0 3 * * *)")
    assert cronjob({**base, "spec": {**base["spec"], "suspend": True}})["status"] == "suspended (0 3 * * *)"


def test_statefulsets_are_listed_with_their_progress() -> None:
    from web.summary import summarize

    base = {"metadata": {"namespace": "db", "name": "pg"}, "spec": {"replicas": 3, "template": {"spec": {
        "containers": [{"name": "c", "image": "postgres"}]}}, "updateStrategy": {"rollingUpdate": {"partition": 0}}}}
    done = {**base, "status": {"replicas": 3, "readyReplicas": 3, "updatedReplicas": 3, "currentRevision": "pg-a",
                               "updateRevision": "pg-a"}}
    starting = {**base, "status": {"replicas": 1, "readyReplicas": 1, "updatedReplicas": 1,
                                   "currentRevision": "pg-a", "updateRevision": "pg-a"}}
    rolling = {**base, "status": {"replicas": 3, "readyReplicas": 3, "updatedReplicas": 1, "currentRevision": "pg-a",
                                  "updateRevision": "pg-b"}}
    rows = {}
    for name, obj in (("done", done), ("starting", starting), ("rolling", rolling)):
        [row] = summarize({"statefulsets": [{**obj, "metadata": {**obj["metadata"], "name": name}}]})["workloads"]
        rows[name] = row
    assert (rows["done"]["kind"], rows["done"]["status"], rows["done"]["ready"], rows["done"]["images"]) == (
        "StatefulSet", "available", 3, ["postgres"])
    assert (rows["starting"]["status"], rows["starting"]["ready"], rows["starting"]["desired"]) == (
        "starting in order", 1, 3)
    assert rows["rolling"]["status"] == "rolling out"
    # OnDelete: pods change only when deleted, so an old template is no rollout to wait for.
    on_delete = {**rolling, "spec": {**base["spec"], "updateStrategy": {"type": "OnDelete"}}}
    [row] = summarize({"statefulsets": [on_delete]})["workloads"]
    assert (row["status"], row["tone"]) == ("2 to update on delete", "ok")
    parallel = {**starting, "spec": {**base["spec"], "podManagementPolicy": "Parallel"}}
    [row] = summarize({"statefulsets": [parallel]})["workloads"]
    assert row["status"] == "starting"
