"""The HorizontalPodAutoscaler controller: every 15 s, each autoscaler sets its target's replicas from the pods' usage.

It reads the target through its `scale` subresource's fields (`spec.replicas`,
the selector) of any kind the catalog serves with `scale` (Deployment,
ReplicaSet, StatefulSet ...), the pods' usage from the master's in-memory usage
store (what the metrics API serves; agents report every 15 s), and follows
Kubernetes' reconcile step by step:

1. the target's scale (`AbleToScale` False / `FailedGetScale` when it is missing);
2. replicas out of `[minReplicas, maxReplicas]` (or 0: autoscaling off) are
   brought in range without looking at metrics;
3. otherwise each metric proposes a count (replicas.py; only resource metrics
   have a source here: Pods/Object/External metrics fail as on a cluster
   without a custom metrics API); the highest proposal wins, and a scale-down
   is refused while any metric is invalid;
4. stabilisation and rate limits (behavior.py) give the count to set;
5. the target is patched, a `SuccessfulRescale` event says why, and the status
   (current metrics, conditions with Kubernetes' reasons and messages) is
   written only when it changed, so an idle autoscaler writes nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from core import errors
from core.kube import timefmt
from core.kube.quantity import parse_quantity
from core.kube.selectors import LabelSelector
from master.client import Env, Informer, split_key
from master.controllers.base import Controller
from master.controllers.hpa import behavior as rules
from master.controllers.hpa.replicas import MetricError, Proposal, Sample, resource_replicas
from master.controllers.keys import by_namespace
from master.registry.resource import ResourceType

Obj = dict[str, Any]
COMPONENT = "horizontal-pod-autoscaler"
_SOURCE_REASON = {"Pods": "FailedGetPodsMetric", "Object": "FailedGetObjectMetric",
                  "External": "FailedGetExternalMetric"}


class HorizontalPodAutoscalerController(Controller):
    name = "horizontalpodautoscaling"
    workers = 1

    def __init__(self, env: Env) -> None:
        super().__init__(env)
        hpa = env.client.catalog.by_kind("autoscaling", "HorizontalPodAutoscaler")
        if hpa is None:
            raise LookupError("the catalog serves no HorizontalPodAutoscaler")
        self.rt: ResourceType = hpa
        self.hpas: Informer = env.informers.informer(hpa)
        self.pods: Informer = env.informers.informer(self.kinds.pods)
        self.pods.add_indexer("namespace", by_namespace)
        self.primary = self.hpas
        self.hpas.add_handler(self._changed)
        self.history: dict[str, rules.History] = {}

    def resync_period(self) -> float:
        return self.env.settings.hpa_sync_seconds

    def _changed(self, old: Obj | None, new: Obj | None) -> None:
        """A new, deleted or re-specified autoscaler is looked at now; its own status writes wait for the period."""
        if new is None or old is None or (new.get("metadata") or {}).get("generation") != \
                (old.get("metadata") or {}).get("generation"):
            self.enqueue(new or old)

    # ---- one autoscaler ------------------------------------------------------------------------------
    def sync(self, key: str) -> None:
        ns, name = split_key(key)
        hpa = self.hpas.get(ns, name)
        if hpa is None:
            self.history.pop(key, None)
            return
        now = timefmt.now()
        run = _Run(self, key, hpa, now)
        run.reconcile()

    def samples(self, namespace: str, resource: str, container: str) -> dict[str, tuple[str, Sample]]:
        """Pod name → (uid, usage) of the pods in `namespace`, from the boards' latest reports."""
        out: dict[str, tuple[str, Sample]] = {}
        for node, pod in self.env.usage.pods():
            if pod.namespace != namespace:
                continue
            taken = timefmt.parse(node.timestamp) or timefmt.now()
            containers = [c for c in pod.containers if not container or c.name == container]
            if container and not containers:
                continue
            if resource == "cpu":
                value = sum(c.cpu for c in containers) // 1_000_000  # nanocores → millicores
            else:
                value = sum(c.memory for c in containers)
            out[pod.name] = (pod.uid, Sample(value, taken, dt.timedelta(seconds=node.window)))
        return out


class _Run:
    """One reconcile of one autoscaler: what it found, the conditions and events it makes."""

    def __init__(self, ctl: HorizontalPodAutoscalerController, key: str, hpa: Obj, now: dt.datetime) -> None:
        self.ctl, self.key, self.hpa, self.now = ctl, key, hpa, now
        self.spec: Obj = hpa.get("spec") or {}
        self.ns = hpa["metadata"]["namespace"]
        self.conditions: dict[str, tuple[str, str, str, str]] = {}
        self.current_metrics: list[Obj] = []

    def event(self, type_: str, reason: str, message: str) -> None:
        self.ctl.env.recorder.event(self.hpa, type_, reason, message, COMPONENT)

    def set(self, kind: str, status: str, reason: str, message: str) -> None:
        self.conditions[kind] = (kind, status, reason, message)

    # ---- the steps -------------------------------------------------------------------------------
    def reconcile(self) -> None:
        ref = self.spec.get("scaleTargetRef") or {}
        low, high = int(self.spec.get("minReplicas") or 1), int(self.spec.get("maxReplicas") or 1)
        status = self.hpa.get("status") or {}
        target_rt, target = self._target(ref)
        if target_rt is None or target is None:
            self._write_status(int(status.get("currentReplicas") or 0), int(status.get("desiredReplicas") or 0),
                               rescaled=False, keep_metrics=False)
            return
        self.set("AbleToScale", "True", "SucceededGetScale", "the HPA controller was able to get the target's "
                                                              "current scale")
        replicas = (target.get("spec") or {}).get("replicas")
        current = int(replicas) if isinstance(replicas, int) else 1
        desired, reason = 0, ""
        if current == 0 and low != 0:
            self.set("ScalingActive", "False", "ScalingDisabled", "scaling is disabled since the replica count of "
                                                                  "the target is zero")
        elif current > high:
            desired, reason = high, "Current number of replicas above Spec.MaxReplicas"
        elif current < low:
            desired, reason = low, "Current number of replicas below Spec.MinReplicas"
        else:
            computed = self._from_metrics(target, current)
            if computed is None:  # the metrics could not say: change nothing
                self._write_status(current, int(status.get("desiredReplicas") or current), rescaled=False,
                                   keep_metrics=True)
                return
            proposed, metric_name = computed
            decision = self._normalize(current, proposed, low, high)
            desired = decision.replicas
            self.set("ScalingLimited", decision.limited.status, decision.limited.reason, decision.limited.message)
            if decision.stabilized:
                self.set("AbleToScale", "True", decision.stabilized,
                         "recent recommendations were higher than current one, applying the highest recent "
                         "recommendation" if decision.stabilized == "ScaleDownStabilized" else
                         "recent recommendations were lower than current one, applying the lowest recent "
                         "recommendation")
            else:
                self.set("AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size")
            if desired > current:
                reason = f"{metric_name} above target"
            elif desired < current:
                reason = "All metrics below target"
        rescaled = False
        if desired != current and not (current == 0 and low != 0):
            try:
                self.ctl.client.patch(target_rt, self.ns, target["metadata"]["name"], {"spec": {"replicas": desired}})
            except errors.ApiError as exc:
                self.event("Warning", "FailedRescale", f"New size: {desired}; reason: {reason}; error: {exc.message}")
                self.set("AbleToScale", "False", "FailedUpdateScale",
                         f"the HPA controller was unable to update the target scale: {exc.message}")
                self._write_status(current, int(status.get("desiredReplicas") or current), rescaled=False,
                                   keep_metrics=True)
                raise
            self.history().record_scale(self.now, current, desired, dt.timedelta(minutes=30))
            self.event("Normal", "SuccessfulRescale", f"New size: {desired}; reason: {reason}")
            self.set("AbleToScale", "True", "SucceededRescale",
                     f"the HPA controller was able to update the target scale to {desired}")
            rescaled = True
        else:
            desired = current if current == 0 and low != 0 else desired
        self._write_status(current, desired, rescaled, keep_metrics=False)

    def history(self) -> rules.History:
        return self.ctl.history.setdefault(self.key, rules.History())

    def _target(self, ref: Obj) -> tuple[ResourceType | None, Obj | None]:
        kind, name = str(ref.get("kind") or ""), str(ref.get("name") or "")
        api_version = str(ref.get("apiVersion") or "")
        group = api_version.rpartition("/")[0]
        rt = self.ctl.client.catalog.by_api_version(api_version, kind)
        if rt is None or "scale" not in rt.subresources:
            error = f'no matches for kind "{kind}" in group "{group}"'
            self._failed_scale(error)
            return None, None
        obj = self.ctl.client.get(rt, self.ns, name)
        if obj is None:
            self._failed_scale(f'{rt.plural}{"." + rt.group if rt.group else ""} "{name}" not found')
            return rt, None
        return rt, obj

    def _failed_scale(self, error: str) -> None:
        self.event("Warning", "FailedGetScale", error)
        self.set("AbleToScale", "False", "FailedGetScale",
                 f"the HPA controller was unable to get the target's current scale: {error}")

    def _normalize(self, current: int, proposed: int, low: int, high: int) -> rules.Decision:
        window = dt.timedelta(seconds=self.ctl.env.settings.hpa_downscale_stabilization_seconds)
        behavior = self.spec.get("behavior")
        if isinstance(behavior, dict):
            return rules.with_behavior(self.history(), self.now, current, proposed, low, high, behavior, window)
        return rules.without_behavior(self.history(), self.now, current, proposed, low, high, window)

    # ---- metrics ---------------------------------------------------------------------------------
    def _from_metrics(self, target: Obj, current: int) -> tuple[int, str] | None:
        """(the highest proposal, its metric's name), or None when no count may be taken from the metrics."""
        try:
            raw = (target.get("spec") or {}).get("selector")
            selector = LabelSelector.from_set(raw) if target.get("kind") == "ReplicationController" and raw \
                else LabelSelector.from_dict(raw)
        except ValueError as exc:
            self.event("Warning", "InvalidSelector", str(exc))
            self.set("ScalingActive", "False", "InvalidSelector",
                     f"the HPA target's scale has an invalid selector: {exc}")
            return None
        pods = sorted((p for p in self.ctl.pods.by_index("namespace", self.ns)
                       if selector.matches((p.get("metadata") or {}).get("labels") or {})),
                      key=lambda p: str(p["metadata"]["name"]))
        metrics = self.spec.get("metrics") or []
        best: tuple[int, str] | None = None
        invalid, first_error = 0, ""
        for metric in metrics:
            try:
                replicas, name, status = self._one(metric, pods, current)
            except MetricError as exc:
                invalid += 1
                kind = metric.get("type")
                wrapped = self._wrapped(metric, exc.message)
                self.event("Warning", exc.reason, wrapped)
                self.set("ScalingActive", "False", exc.reason,
                         f"the HPA was unable to compute the replica count: {wrapped}")
                if not first_error:
                    first_error = f"failed to get {self._describe(metric, kind)} metric value: {wrapped}"
                self.current_metrics.append({"type": kind})
                continue
            self.current_metrics.append(status)
            if best is None or replicas > best[0]:
                best = (replicas, name)
        if invalid and (best is None or best[0] < current):
            self.event("Warning", "FailedComputeMetricsReplicas",
                       f"invalid metrics ({invalid} invalid out of {len(metrics)}), first error is: {first_error}")
            return None
        if best is None:
            return None
        self.set("ScalingActive", "True", "ValidMetricFound",
                 f"the HPA was able to successfully calculate a replica count from {best[1]}")
        return best

    @staticmethod
    def _describe(metric: Obj, kind: Any) -> str:
        if kind in ("Resource", "ContainerResource"):
            src = metric.get("resource" if kind == "Resource" else "containerResource") or {}
            return f"{src.get('name')} resource" if kind == "Resource" else \
                f"{src.get('name')} container resource"
        src = metric.get(str(kind).lower()) or {}
        return f"{(src.get('metric') or {}).get('name')} {str(kind).lower()}"

    @staticmethod
    def _wrapped(metric: Obj, message: str) -> str:
        kind = metric.get("type")
        if kind in ("Resource", "ContainerResource"):
            src = metric.get("resource" if kind == "Resource" else "containerResource") or {}
            target = src.get("target") or {}
            what = "utilization" if target.get("averageUtilization") is not None else "usage"
            return f"failed to get {src.get('name')} {what}: {message}"
        return message

    def _one(self, metric: Obj, pods: list[Obj], current: int) -> tuple[int, str, Obj]:
        kind = metric.get("type")
        if kind not in ("Resource", "ContainerResource"):
            src = metric.get(str(kind).lower()) or {}
            name = (src.get("metric") or {}).get("name")
            raise MetricError(_SOURCE_REASON.get(str(kind), "FailedGetMetric"),
                              f"unable to get metric {name}: no custom or external metrics API is served by "
                              "pikube (custom.metrics.k8s.io, external.metrics.k8s.io)")
        field = "resource" if kind == "Resource" else "containerResource"
        src = metric.get(field) or {}
        resource, container = str(src.get("name") or ""), str(src.get("container") or "")
        if resource not in ("cpu", "memory"):
            raise MetricError("FailedGetResourceMetric", f"unable to get metrics for resource {resource}: no "
                                                         "metrics returned from resource metrics API")
        target = src.get("target") or {}
        utilization = target.get("averageUtilization")
        average: int | None = None
        if utilization is None:
            raw = parse_quantity(target.get("averageValue") or 0)
            average = int(raw * 1000) if resource == "cpu" else int(raw)
            if average <= 0:
                raise MetricError("FailedGetResourceMetric", "the target average value must be positive")
        found = self.ctl.samples(self.ns, resource, container)
        uids = {p["metadata"]["name"]: p["metadata"].get("uid") for p in pods}
        samples = {n: s for n, (uid, s) in found.items() if n in uids and (not uid or uid == uids[n])}
        proposal: Proposal = resource_replicas(current, pods, samples, resource,
                                               int(utilization) if utilization is not None else None, average,
                                               self.ctl.env.settings.hpa_tolerance, self.now, container)
        described = f"{resource} resource utilization (percentage of request)" if utilization is not None \
            else f"{resource} resource"
        if kind == "ContainerResource":
            described = described.replace("resource", "container resource", 1)
        value = f"{proposal.average}m" if resource == "cpu" else str(proposal.average)
        current_status: Obj = {"name": resource, "current": {"averageValue": value}}
        if proposal.utilization is not None:
            current_status["current"]["averageUtilization"] = proposal.utilization
        if container:
            current_status["container"] = container
        return proposal.replicas, described, {"type": kind, field: current_status}

    # ---- status ----------------------------------------------------------------------------------
    def _write_status(self, current: int, desired: int, rescaled: bool, keep_metrics: bool) -> None:
        old = self.hpa.get("status") or {}
        status: Obj = {"currentReplicas": current, "desiredReplicas": desired}
        generation = (self.hpa.get("metadata") or {}).get("generation")
        if generation is not None:
            status["observedGeneration"] = generation
        last = timefmt.rfc3339(self.now) if rescaled else old.get("lastScaleTime")
        if last:
            status["lastScaleTime"] = last
        metrics = [m for m in self.current_metrics if len(m) > 1]
        if keep_metrics and not metrics:
            metrics = old.get("currentMetrics") or []
        if metrics:
            status["currentMetrics"] = metrics
        status["conditions"] = self._conditions(old.get("conditions") or [])
        if status == old:
            return
        fresh = self.ctl.client.get(self.ctl.rt, self.ns, self.hpa["metadata"]["name"])
        if fresh is None:
            return
        fresh["status"] = status
        self.ctl.client.update_status(self.ctl.rt, fresh)

    def _conditions(self, old: list[Obj]) -> list[Obj]:
        """Old conditions updated with this run's, in Kubernetes' order; a condition's time moves only
        when its status does."""
        by_type = {str(c.get("type")): c for c in old}
        stamp = timefmt.rfc3339(self.now)
        for kind, status, reason, message in self.conditions.values():
            before = by_type.get(kind)
            changed = before is None or before.get("status") != status
            since = stamp if changed or before is None else before.get("lastTransitionTime", stamp)
            by_type[kind] = {"type": kind, "status": status, "lastTransitionTime": since,
                             "reason": reason, "message": message}
        order = ["AbleToScale", "ScalingActive", "ScalingLimited"]
        return [by_type[k] for k in order if k in by_type] + [c for k, c in by_type.items() if k not in order]
