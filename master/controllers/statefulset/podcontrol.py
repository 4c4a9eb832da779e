"""What the StatefulSet controller does to pods and claims, with Kubernetes' events (its StatefulPodControl).

A pod is made only after its claims: a missing claim is made (with the owners
the retention policy asks, claims.py), one being deleted or still owned by a
pod scaled away earlier holds the pod back. Claims are looked up in the cache,
then in the store (a claim made a moment ago may not be cached yet). Every
create and delete is an event on the set in Kubernetes' words.
"""

from __future__ import annotations

import contextlib
from typing import Any

from core import errors
from master.client import Client, Informer, Kinds, Recorder
from master.controllers import podutil
from master.controllers.statefulset import claims, identity

Obj = dict[str, Any]
COMPONENT = "statefulset-controller"


def _name(obj: Obj) -> str:
    return str(podutil.meta(obj).get("name"))


def _deleting(obj: Obj) -> bool:
    return bool(podutil.meta(obj).get("deletionTimestamp"))


class PodControl:
    def __init__(self, client: Client, kinds: Kinds, recorder: Recorder, cache: Informer) -> None:
        self.client, self.kinds, self.recorder, self.cache = client, kinds, recorder, cache

    def create(self, sts: Obj, ordinal: int, template: Obj, revision: str) -> Obj | None:
        """Make the pod of `ordinal` from `template` (after its claims); None if it must wait or was made already."""
        ns, set_name = str(podutil.meta(sts).get("namespace")), _name(sts)
        pod = identity.new_pod(sts, template, revision, ordinal)
        existing = self.claims_of(sts, ordinal)
        if claims.policy(sts)[0] != claims.RETAIN and any(
                claims.is_stale(c, pod) for c in existing.values() if c is not None):
            return None  # a claim of the pod scaled away is still to be collected
        try:
            self.ensure_claims(sts, ordinal, pod, existing)
            made = self.client.create(self.kinds.pods, ns, pod)
        except errors.AlreadyExists:
            return None  # made by an earlier sync the cache has not shown yet
        except errors.ApiError as exc:
            self.recorder.event(sts, "Warning", "FailedCreate", f"create Pod {_name(pod)} in StatefulSet "
                                f"{set_name} failed error: {exc.message}", COMPONENT)
            raise
        self.recorder.event(sts, "Normal", "SuccessfulCreate",
                            f"create Pod {_name(pod)} in StatefulSet {set_name} successful", COMPONENT)
        self.fix_claims(sts, made, scaled_down=False)
        return made

    def recreate(self, sts: Obj, pod: Obj) -> None:
        where = f"StatefulSet {podutil.meta(sts).get('namespace')}/{_name(sts)}"
        if (pod.get("status") or {}).get("phase") == "Failed":
            self.recorder.event(sts, "Warning", "RecreatingFailedPod",
                                    f"{where} is recreating failed Pod {_name(pod)}", COMPONENT)
        else:
            self.recorder.event(sts, "Normal", "RecreatingTerminatedPod",
                                    f"{where} is recreating terminated Pod {_name(pod)}", COMPONENT)
        self.delete(sts, pod)

    def delete(self, sts: Obj, pod: Obj) -> None:
        m = podutil.meta(pod)
        if self.client.delete(self.kinds.pods, str(m.get("namespace")), str(m["name"]), uid=str(m.get("uid"))) \
                is None:
            return
        self.recorder.event(sts, "Normal", "SuccessfulDelete",
                                f"delete Pod {m['name']} in StatefulSet {_name(sts)} successful", COMPONENT)

    def claims_of(self, sts: Obj, ordinal: int) -> dict[str, Obj | None]:
        """The claims of `ordinal` by name, None for those not found (the cache first, then the store)."""
        ns, set_name = str(podutil.meta(sts).get("namespace")), _name(sts)
        found: dict[str, Obj | None] = {}
        for template in (sts.get("spec") or {}).get("volumeClaimTemplates") or []:
            name = claims.name(template, set_name, ordinal)
            found[name] = self.cache.get(ns, name) or self.client.get(self.kinds.persistentvolumeclaims, ns, name)
        return found

    def ensure_claims(self, sts: Obj, ordinal: int, pod: Obj, existing: dict[str, Obj | None] | None = None) -> None:
        """Make the claims of `ordinal` that are missing; an error if one failed or is being deleted."""
        ns, set_name = str(podutil.meta(sts).get("namespace")), _name(sts)
        if existing is None:
            existing = self.claims_of(sts, ordinal)
        problems: list[str] = []
        for template in (sts.get("spec") or {}).get("volumeClaimTemplates") or []:
            body = claims.body(sts, template, ordinal)
            found = existing.get(_name(body))
            if found is not None:
                if _deleting(found):
                    problems.append(f"pvc {_name(body)} is being deleted")
                continue
            owners = claims.owners(body, sts, pod, scaled_down=False)
            if owners:
                body["metadata"]["ownerReferences"] = owners
            try:
                self.client.create(self.kinds.persistentvolumeclaims, ns, body)
            except errors.AlreadyExists:
                continue
            except errors.ApiError as exc:
                problems.append(f"failed to create PVC {_name(body)}: {exc.message}")
                self.recorder.event(sts, "Warning", "FailedCreate", f"create Claim {_name(body)} for Pod "
                                        f"{_name(pod)} in StatefulSet {set_name} failed error: {exc.message}",
                                        COMPONENT)
                continue
            self.recorder.event(sts, "Normal", "SuccessfulCreate", f"create Claim {_name(body)} Pod "
                                    f"{_name(pod)} in StatefulSet {set_name} success", COMPONENT)
        if problems:
            raise errors.ApiError(message="; ".join(problems))

    def fix_claims(self, sts: Obj, pod: Obj, scaled_down: bool) -> None:
        """Give the pod's claims the owners the retention policy asks for."""
        ordinal = identity.ordinal(_name(sts), _name(pod))
        if ordinal is None:
            return
        for found in self.claims_of(sts, ordinal).values():
            if found is None or claims.up_to_date(found, sts, pod, scaled_down):
                continue
            m = podutil.meta(found)
            owners = claims.owners(found, sts, pod, scaled_down)
            with contextlib.suppress(errors.NotFound):
                self.client.patch(self.kinds.persistentvolumeclaims, str(m.get("namespace")), str(m["name"]),
                                  {"metadata": {"ownerReferences": owners or None,
                                                "resourceVersion": m.get("resourceVersion")}})
