"""CronJob's rules (batch/v1): Kubernetes' defaults, and a schedule, time zone and job template that must be valid.

Defaults: `concurrencyPolicy: Allow`, `suspend: false`, history limits 3
successful and 1 failed, the job template's pod defaults as a Job gets them.
Validation words the errors as Kubernetes does (`spec.schedule: Invalid value:
"…": …`, unknown `spec.timeZone`, an unsupported concurrency policy, a job
template whose pods are not OnFailure/Never).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.errors import Cause
from core.kube import cron
from master.registry.resource import Strategy
from master.registry.tables import AGE, NAME, Column, TableDef, since
from master.registry.workloads import JobStrategy, _template_causes

Obj = dict[str, Any]
POLICIES = ("Allow", "Forbid", "Replace")


def zone(name: str | None) -> dt.tzinfo:
    """The zone `spec.timeZone` names (UTC when unset); ZoneInfoNotFoundError or ValueError when unknown."""
    if not name:
        return dt.UTC
    if name.startswith(("/", ".")) or ".." in name:
        raise ValueError(name)
    return ZoneInfo(name)


class V1beta1Conversion:
    """batch/v1beta1 CronJob (what kubectl 1.20 creates and reads) as a view of the stored batch/v1 object.

    The two versions have the same fields but `spec.timeZone`, which a v1beta1 object
    simply does not carry when its client never sets it; nothing else differs.
    """

    storage_version = "batch/v1"

    def from_storage(self, obj: Obj) -> Obj:
        return {**obj, "apiVersion": "batch/v1beta1"}

    def to_storage(self, obj: Obj) -> Obj:
        return {**obj, "apiVersion": "batch/v1"}


class CronJobStrategy(Strategy):
    has_status = True

    def default(self, obj: Obj) -> None:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        spec.setdefault("concurrencyPolicy", "Allow")
        spec.setdefault("suspend", False)
        spec.setdefault("successfulJobsHistoryLimit", 3)
        spec.setdefault("failedJobsHistoryLimit", 1)
        template = spec.get("jobTemplate")
        if isinstance(template, dict) and isinstance(template.get("spec"), dict):
            job = {"spec": template["spec"]}
            JobStrategy().default(job)

    def validate(self, obj: Obj) -> list[Cause]:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [Cause("spec", "Required value", "FieldValueRequired")]
        causes: list[Cause] = []
        schedule = spec.get("schedule")
        if not schedule:
            causes.append(Cause("spec.schedule", "Required value", "FieldValueRequired"))
        elif not isinstance(schedule, str):
            causes.append(Cause("spec.schedule", f"Invalid value: {schedule!r}: must be a string"))
        else:
            try:
                cron.parse(schedule)
            except cron.CronError as exc:
                causes.append(Cause("spec.schedule", f'Invalid value: "{schedule}": {exc}'))
        tz = spec.get("timeZone")
        if tz is not None:
            try:
                zone(str(tz))
            except (ZoneInfoNotFoundError, ValueError):
                causes.append(Cause("spec.timeZone", f'Invalid value: "{tz}": unknown time zone {tz}'))
        policy = spec.get("concurrencyPolicy")
        if policy not in POLICIES:
            causes.append(Cause("spec.concurrencyPolicy", f'Unsupported value: "{policy}": supported values: '
                                + ", ".join(f'"{p}"' for p in POLICIES), "FieldValueNotSupported"))
        for key in ("startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
            value = spec.get(key)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                causes.append(Cause(f"spec.{key}", f"Invalid value: {value}: must be greater than or equal to 0"))
        template = spec.get("jobTemplate")
        job_spec = template.get("spec") if isinstance(template, dict) else None
        if not isinstance(job_spec, dict):
            causes.append(Cause("spec.jobTemplate.spec", "Required value", "FieldValueRequired"))
        else:
            for c in _template_causes(job_spec, ("OnFailure", "Never"), check_selector=False):
                causes.append(Cause("spec.jobTemplate." + c.field, c.message, c.reason))
        return causes


def _last_schedule(o: Obj, now: dt.datetime) -> str:
    last = (o.get("status") or {}).get("lastScheduleTime")
    return since(last, now) if last else "<none>"


def _containers(o: Obj, field: str) -> str:
    pod = ((((o.get("spec") or {}).get("jobTemplate") or {}).get("spec") or {}).get("template") or {}).get("spec")
    return ",".join(str(c.get(field)) for c in (pod or {}).get("containers") or [])


TABLE = TableDef((
    NAME,
    Column("Schedule", lambda o, n: (o.get("spec") or {}).get("schedule"), description="The schedule."),
    Column("Timezone", lambda o, n: (o.get("spec") or {}).get("timeZone") or "<none>",
           description="The time zone the schedule runs in."),
    Column("Suspend", lambda o, n: "True" if (o.get("spec") or {}).get("suspend") else "False",
           description="Whether new jobs are started."),
    Column("Active", lambda o, n: len((o.get("status") or {}).get("active") or []), type="integer",
           description="The jobs running now."),
    Column("Last Schedule", _last_schedule, description="When the last job was scheduled."),
    AGE,
    Column("Containers", lambda o, n: _containers(o, "name"), priority=1, description="The containers."),
    Column("Images", lambda o, n: _containers(o, "image"), priority=1, description="The images."),
    Column("Selector", lambda o, n: "<none>", priority=1, description="The selector."),
))
