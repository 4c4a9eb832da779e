"""The garbage collector, driven step by step: the test decides when each informer catches up with the store.

Informers are never started here; `catch_up` relists one resource type into its
cache (delivering the differences to the handlers, as a real relist does), so a
lagging cache is a state the test builds on purpose rather than a timing it
hopes for. `sync` is called directly with the collector's keys.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.settings import MasterSettings
from master.client import Client, Env, InformerFactory, Recorder
from master.controllers.gc import GarbageCollector
from master.controllers.podutil import owner_ref
from master.registry.catalog import Catalog, builtin_resources
from master.registry.context import ApiContext
from master.registry.resource import ResourceType
from master.registry.verbs import Handlers
from master.store.sqlite import SqliteStore

Obj = dict[str, Any]
NS = "default"
DEPLOY_KEY = f"apps|deployments|{NS}|web"
RS_KEY = f"apps|replicasets|{NS}|web-1"


@pytest.fixture
def gc(tmp_path: Path) -> Iterator[GarbageCollector]:
    store = SqliteStore(tmp_path / "state.db")
    ctx = ApiContext(MasterSettings(data_dir=tmp_path), store, Catalog(builtin_resources()))
    client = Client(Handlers(ctx))
    client.create(client.kinds.namespaces, "", {"metadata": {"name": NS}})
    stopping = threading.Event()
    env = Env(ctx.settings, client, InformerFactory(store, stopping), Recorder(client, stopping), stopping)
    try:
        yield GarbageCollector(env)
    finally:
        stopping.set()
        store.close()


def catch_up(gc: GarbageCollector, *plurals: str) -> None:
    """Bring the caches of these types (all when none is named) up to date with the store."""
    for rt, inf in gc.types.values():
        if not plurals or rt.plural in plurals:
            inf._relist()


def template() -> Obj:
    return {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx:1"}]}}


def make_deployment(gc: GarbageCollector) -> Obj:
    return gc.client.create(gc.kinds.deployments, NS, {"metadata": {"name": "web"}, "spec": {
        "replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": template()}})


def make_replicaset(gc: GarbageCollector, *owners: Obj) -> Obj:
    refs = [owner_ref(o, "apps/v1", "Deployment") | {"blockOwnerDeletion": True} for o in owners]
    return gc.client.create(gc.kinds.replicasets, NS, {"metadata": {"name": "web-1", "ownerReferences": refs}, "spec": {
        "replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": template()}})


def live(gc: GarbageCollector, rt: ResourceType, name: str) -> Obj | None:
    return gc.client.get(rt, NS, name)


def test_a_stale_dependent_of_an_orphaned_owner_is_not_deleted(gc: GarbageCollector) -> None:
    """The race behind a flaky `test_delete_deployment_orphan`.

    The collector orphans the ReplicaSet and lets the Deployment go; the
    Deployment's DELETED event arrives while the ReplicaSet informer still holds
    the ReplicaSet *with* its reference. Acting on that cached copy (the owner
    is truly gone from the store) deleted the ReplicaSet that was just orphaned.
    """
    d = make_deployment(gc)
    make_replicaset(gc, d)
    catch_up(gc)
    gc.client.delete(gc.kinds.deployments, NS, "web", propagation="Orphan")
    catch_up(gc, "deployments")
    assert {DEPLOY_KEY, RS_KEY} <= set(drain(gc)), "the owner and its dependents are looked at"
    gc.sync(DEPLOY_KEY)
    assert live(gc, gc.kinds.deployments, "web") is None, "orphaned, then the finalizer went"
    catch_up(gc, "deployments")  # the replicaset informer lags: its copy still names the owner
    assert RS_KEY in drain(gc)
    gc.sync(RS_KEY)
    rs = live(gc, gc.kinds.replicasets, "web-1")
    assert rs is not None, "the orphaned ReplicaSet survives"
    assert not rs["metadata"].get("ownerReferences")


def test_a_dependent_seen_only_after_its_owner_was_orphaned_is_orphaned_too(gc: GarbageCollector) -> None:
    """The dependent reached the store before the owner's deletion but the cache only after the owner went."""
    d = make_deployment(gc)
    catch_up(gc)
    make_replicaset(gc, d)  # not in the cache yet
    gc.client.delete(gc.kinds.deployments, NS, "web", propagation="Orphan")
    catch_up(gc, "deployments")
    gc.sync(DEPLOY_KEY)
    assert live(gc, gc.kinds.deployments, "web") is None
    catch_up(gc)
    assert RS_KEY in drain(gc)
    gc.sync(RS_KEY)
    rs = live(gc, gc.kinds.replicasets, "web-1")
    assert rs is not None and not rs["metadata"].get("ownerReferences"), "released, not deleted"


def test_a_dependent_whose_owner_is_gone_is_deleted(gc: GarbageCollector) -> None:
    d = make_deployment(gc)
    make_replicaset(gc, d)
    catch_up(gc)
    gc.client.delete(gc.kinds.deployments, NS, "web")  # background: gone at once
    catch_up(gc, "deployments")
    assert RS_KEY in drain(gc)
    gc.sync(RS_KEY)
    assert live(gc, gc.kinds.replicasets, "web-1") is None


def test_a_cached_owner_that_is_gone_is_confirmed_in_the_store_first(gc: GarbageCollector) -> None:
    """A dependent whose owner the cache has not seen yet is left alone: the store still has the owner."""
    d = make_deployment(gc)
    make_replicaset(gc, d)
    catch_up(gc, "replicasets")
    gc.sync(RS_KEY)
    rs = live(gc, gc.kinds.replicasets, "web-1")
    assert rs is not None and rs["metadata"]["ownerReferences"][0]["uid"] == d["metadata"]["uid"]


def test_only_the_dangling_reference_goes_when_another_owner_lives(gc: GarbageCollector) -> None:
    d = make_deployment(gc)
    configmaps = gc.client.catalog.by_kind("", "ConfigMap")
    assert configmaps is not None
    other = gc.client.create(configmaps, NS, {"metadata": {"name": "keeper"}})
    rs = make_replicaset(gc, d)
    refs = [*rs["metadata"]["ownerReferences"], {"apiVersion": "v1", "kind": "ConfigMap", "name": "keeper",
                                                  "uid": other["metadata"]["uid"]}]
    gc.client.patch(gc.kinds.replicasets, NS, "web-1", {"metadata": {"ownerReferences": refs}})
    catch_up(gc)
    gc.client.delete(gc.kinds.deployments, NS, "web")
    catch_up(gc)
    gc.sync(RS_KEY)
    left = live(gc, gc.kinds.replicasets, "web-1")
    assert left is not None
    assert [r["name"] for r in left["metadata"]["ownerReferences"]] == ["keeper"]


def test_a_write_between_the_read_and_the_delete_wins(gc: GarbageCollector, monkeypatch: pytest.MonkeyPatch) -> None:
    """The delete carries the resourceVersion the decision was made on: a reference removed meanwhile saves it."""
    d = make_deployment(gc)
    make_replicaset(gc, d)
    catch_up(gc)
    gc.client.delete(gc.kinds.deployments, NS, "web")
    catch_up(gc, "deployments")
    real_get = gc.client.get
    released = []

    def get_then_release(rt: ResourceType, ns: str, name: str) -> Obj | None:
        obj = real_get(rt, ns, name)
        if rt.plural == "replicasets" and not released:  # someone orphans it right after the collector read it
            released.append(gc.client.patch(rt, ns, name, {"metadata": {"ownerReferences": None}}))
        return obj

    monkeypatch.setattr(gc.client, "get", get_then_release)
    gc.sync(RS_KEY)  # the delete fails on the resourceVersion; a second look finds nothing to collect
    assert released, "the concurrent write happened"
    rs = live(gc, gc.kinds.replicasets, "web-1")
    assert rs is not None and not rs["metadata"].get("ownerReferences")


def test_foreground_deletion_waits_for_blocking_dependents(gc: GarbageCollector) -> None:
    d = make_deployment(gc)
    make_replicaset(gc, d)
    catch_up(gc)
    gc.client.delete(gc.kinds.deployments, NS, "web", propagation="Foreground")
    catch_up(gc, "deployments")
    gc.sync(DEPLOY_KEY)
    rs = live(gc, gc.kinds.replicasets, "web-1")
    assert rs is not None and "foregroundDeletion" in rs["metadata"]["finalizers"], "deleted in the foreground too"
    catch_up(gc)
    gc.sync(DEPLOY_KEY)
    assert live(gc, gc.kinds.deployments, "web") is not None, "the owner waits for its blocking dependent"
    gc.sync(RS_KEY)
    assert live(gc, gc.kinds.replicasets, "web-1") is None, "a dependent without dependents goes"
    catch_up(gc)
    gc.sync(DEPLOY_KEY)
    assert live(gc, gc.kinds.deployments, "web") is None, "then the owner"


def configmaps(gc: GarbageCollector) -> ResourceType:
    rt = gc.client.catalog.by_kind("", "ConfigMap")
    assert rt is not None
    return rt


def make_shared_replicaset(gc: GarbageCollector) -> tuple[Obj, Obj]:
    """The Deployment `web` and a ConfigMap `keeper`, both owners of the ReplicaSet `web-1` (both blocking)."""
    d = make_deployment(gc)
    keeper = gc.client.create(configmaps(gc), NS, {"metadata": {"name": "keeper"}})
    make_replicaset(gc, d)
    refs = [owner_ref(d, "apps/v1", "Deployment"),
            owner_ref(keeper, "v1", "ConfigMap") | {"controller": False}]
    gc.client.patch(gc.kinds.replicasets, NS, "web-1", {"metadata": {"ownerReferences": refs}})
    return d, keeper


def owner_names(obj: Obj | None) -> list[str]:
    assert obj is not None
    return [r["name"] for r in obj["metadata"].get("ownerReferences") or []]


def test_foreground_deletion_leaves_a_dependent_that_has_another_live_owner(gc: GarbageCollector) -> None:
    """Kubernetes deletes a blocking dependent only if the deleted owner is its last live one; else it unlinks it."""
    make_shared_replicaset(gc)
    catch_up(gc)
    gc.client.delete(gc.kinds.deployments, NS, "web", propagation="Foreground")
    catch_up(gc, "deployments")
    gc.sync(DEPLOY_KEY)
    rs = live(gc, gc.kinds.replicasets, "web-1")
    assert rs is not None and not rs["metadata"].get("deletionTimestamp"), "the other owner keeps it"
    assert owner_names(rs) == ["keeper"], "only the reference to the deleted owner goes"
    drain(gc)
    catch_up(gc)
    assert DEPLOY_KEY in drain(gc), "a blocking reference that went away brings its owner back for a look"
    gc.sync(DEPLOY_KEY)
    assert live(gc, gc.kinds.deployments, "web") is None, "no blocking dependent left: the owner goes"
    assert owner_names(live(gc, gc.kinds.replicasets, "web-1")) == ["keeper"]


def test_the_other_owner_must_be_alive_in_the_store_not_just_in_the_cache(gc: GarbageCollector) -> None:
    """The cache still shows the other owner, the store no longer has it: the dependent goes with the owner."""
    make_shared_replicaset(gc)
    catch_up(gc)
    gc.client.delete(configmaps(gc), NS, "keeper")  # the configmap informer never hears of it
    gc.client.delete(gc.kinds.deployments, NS, "web", propagation="Foreground")
    catch_up(gc, "deployments")
    gc.sync(DEPLOY_KEY)
    rs = live(gc, gc.kinds.replicasets, "web-1")
    assert rs is not None and "foregroundDeletion" in rs["metadata"]["finalizers"], "deleted in the foreground"
    assert owner_names(rs) == ["web", "keeper"], "no reference dropped"
    catch_up(gc)
    gc.sync(DEPLOY_KEY)
    assert live(gc, gc.kinds.deployments, "web") is not None, "the owner waits for it"


def test_a_dependent_with_another_owner_in_foreground_deletion_goes_and_both_wait(gc: GarbageCollector) -> None:
    make_shared_replicaset(gc)
    catch_up(gc)
    gc.client.delete(configmaps(gc), NS, "keeper", propagation="Foreground")
    gc.client.delete(gc.kinds.deployments, NS, "web", propagation="Foreground")
    catch_up(gc)
    gc.sync(DEPLOY_KEY)
    rs = live(gc, gc.kinds.replicasets, "web-1")
    assert rs is not None and rs["metadata"].get("deletionTimestamp"), "no live owner left: it is deleted"
    assert owner_names(rs) == ["web", "keeper"]
    catch_up(gc)
    gc.sync(DEPLOY_KEY)
    gc.sync(f"|configmaps|{NS}|keeper")
    assert live(gc, gc.kinds.deployments, "web") is not None and live(gc, configmaps(gc), "keeper") is not None
    gc.sync(RS_KEY)
    assert live(gc, gc.kinds.replicasets, "web-1") is None
    catch_up(gc)
    assert {DEPLOY_KEY, f"|configmaps|{NS}|keeper"} <= set(drain(gc))
    gc.sync(DEPLOY_KEY)
    gc.sync(f"|configmaps|{NS}|keeper")
    assert live(gc, gc.kinds.deployments, "web") is None and live(gc, configmaps(gc), "keeper") is None


def test_a_blocking_dependent_being_deleted_in_the_foreground_is_waited_for(gc: GarbageCollector) -> None:
    """It has another live owner, but it is on its way out: its references stay and the owner waits until it is gone."""
    make_shared_replicaset(gc)
    rs = live(gc, gc.kinds.replicasets, "web-1")
    assert rs is not None
    held_key = f"|configmaps|{NS}|held"
    gc.client.create(configmaps(gc), NS, {"metadata": {  # a dependent of the ReplicaSet that takes its time to go
        "name": "held", "finalizers": ["example.com/hold"],
        "ownerReferences": [owner_ref(rs, "apps/v1", "ReplicaSet")]}})
    gc.client.delete(gc.kinds.replicasets, NS, "web-1", propagation="Foreground")
    catch_up(gc)
    gc.sync(RS_KEY)  # deletes `held`, and waits for it
    gc.client.delete(gc.kinds.deployments, NS, "web", propagation="Foreground")
    catch_up(gc)
    gc.sync(DEPLOY_KEY)
    rs = live(gc, gc.kinds.replicasets, "web-1")
    assert rs is not None and owner_names(rs) == ["web", "keeper"], "a dependent on its way out is left alone"
    assert "foregroundDeletion" in rs["metadata"]["finalizers"]
    catch_up(gc)
    gc.sync(DEPLOY_KEY)
    assert live(gc, gc.kinds.deployments, "web") is not None, "the owner waits"
    gc.client.patch(configmaps(gc), NS, "held", {"metadata": {"finalizers": ["foregroundDeletion"]}})
    catch_up(gc)
    gc.sync(held_key)
    catch_up(gc)
    gc.sync(RS_KEY)
    assert live(gc, gc.kinds.replicasets, "web-1") is None, "its dependent gone, the ReplicaSet goes"
    drain(gc)
    catch_up(gc)
    assert DEPLOY_KEY in drain(gc)
    gc.sync(DEPLOY_KEY)
    assert live(gc, gc.kinds.deployments, "web") is None, "then the owner"
    assert live(gc, configmaps(gc), "keeper") is not None


def test_a_write_between_the_read_and_the_unlinking_wins(gc: GarbageCollector, monkeypatch: pytest.MonkeyPatch) -> None:
    """Dropping the reference to the owner carries the resourceVersion read: the other owner released meanwhile
    makes it fail, and on the new state (no live owner left) the dependent is deleted instead."""
    make_shared_replicaset(gc)
    catch_up(gc)
    gc.client.delete(gc.kinds.deployments, NS, "web", propagation="Foreground")
    catch_up(gc, "deployments")
    real_get = gc.client.get
    released = []

    def get_then_release(rt: ResourceType, ns: str, name: str) -> Obj | None:
        obj = real_get(rt, ns, name)
        if rt.plural == "replicasets" and not released:  # `keeper` lets go of it right after the collector read it
            refs = [r for r in (obj or {})["metadata"]["ownerReferences"] if r["name"] != "keeper"]
            released.append(gc.client.patch(rt, ns, name, {"metadata": {"ownerReferences": refs}}))
        return obj

    monkeypatch.setattr(gc.client, "get", get_then_release)
    gc.sync(DEPLOY_KEY)
    assert released, "the concurrent write happened"
    rs = live(gc, gc.kinds.replicasets, "web-1")
    assert rs is not None and owner_names(rs) == ["web"], "the stale decision was not written"
    assert "foregroundDeletion" in rs["metadata"]["finalizers"], "decided again: its last owner is going"


def drain(gc: GarbageCollector) -> list[str]:
    keys = []
    while (key := gc.queue.get(timeout=0.01)) is not None:
        keys.append(key)
        gc.queue.done(key)
    return keys


def test_the_collector_caches_metadata_and_writes_only_metadata(gc: GarbageCollector) -> None:
    """Its informers hold projections; orphaning and finalizer removal must not write a projection back."""
    assert all(inf.metadata_only for _, inf in gc.types.values()), "no other controller asked for full objects"
    configmaps = gc.client.catalog.by_kind("", "ConfigMap")
    assert configmaps is not None
    owner = gc.client.create(configmaps, NS, {"metadata": {"name": "owner", "finalizers": ["example.com/hold"]},
                                              "data": {"a": "1"}})
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
    gc.client.create(configmaps, NS, {"metadata": {"name": "dep", "ownerReferences": [ref]}, "data": {"b": "2"}})
    catch_up(gc)
    assert set(gc.types["|configmaps"][1].get(NS, "dep") or {}) == {"apiVersion", "kind", "metadata"}
    gc.client.delete(configmaps, NS, "owner", propagation="Orphan")
    catch_up(gc)
    gc.sync(f"|configmaps|{NS}|owner")
    dep, held = live(gc, configmaps, "dep"), live(gc, configmaps, "owner")
    assert dep is not None and not dep["metadata"].get("ownerReferences") and dep["data"] == {"b": "2"}
    assert held is not None and held["metadata"]["finalizers"] == ["example.com/hold"] and held["data"] == {"a": "1"}


def test_only_the_types_no_controller_reads_in_full_stay_metadata_only(tmp_path: Path) -> None:
    from master.controllermanager import CONTROLLERS

    store = SqliteStore(tmp_path / "state.db")
    ctx = ApiContext(MasterSettings(data_dir=tmp_path), store, Catalog(builtin_resources()))
    client = Client(Handlers(ctx))
    stopping = threading.Event()
    env = Env(ctx.settings, client, InformerFactory(store, stopping), Recorder(client, stopping), stopping)
    try:
        built = {name: make(env) for name, make in CONTROLLERS.items()}
        collector = built["garbagecollector"]
        assert isinstance(collector, GarbageCollector)
        light = sorted(rt.plural for rt, inf in collector.types.values() if inf.metadata_only)
        assert light == ["apiservices", "clusterrolebindings", "configmaps", "customresourcedefinitions",
                         "rolebindings", "roles", "secrets"]
        assert env.informers.informer(env.kinds.pods) is collector.types["|pods"][1]
    finally:
        stopping.set()
        store.close()
