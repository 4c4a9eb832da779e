"""The verbs every resource shares: get, list, create, update, patch, delete, deletecollection.

Generic over `ResourceType`: a kind's own rules come from its `Strategy`. Writes
go through `store.mutate`, so a read-modify-write is atomic and a failed
validation stores nothing.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import copy
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core import errors
from core.errors import Cause
from core.kube import timefmt
from core.kube.jsonpatch import json_patch
from core.kube.patch import json_merge_patch
from core.kube.strategic import strategic_merge_patch
from master.registry import admission, fieldmanager, meta, schemas
from master.registry.context import ApiContext, Identity
from master.registry.listing import CONTINUE_EXPIRED, ContinueExpired, ListOptions, encode_continue
from master.registry.resource import ResourceType

Obj = dict[str, Any]


@dataclass
class FieldCheck:
    """What to do with fields the kind's schema does not know (`?fieldValidation=`).

    Unknown fields are never stored: Strict refuses the request, Warn drops them and
    collects `Warning` header values, Ignore drops them silently.
    """

    mode: str = "Ignore"
    warnings: builtins.list[str] = field(default_factory=builtins.list)

    @classmethod
    def parse(cls, value: str | None) -> FieldCheck:
        mode = value or "Warn"
        if mode not in schemas.FIELD_VALIDATION:
            raise errors.BadRequest(message=f'fieldValidation parameter unsupported: "{mode}" (want one of '
                                            + ", ".join(schemas.FIELD_VALIDATION) + ")")
        return cls(mode)

    def apply(self, rt: ResourceType, obj: Obj) -> None:
        if rt.custom is not None:
            paths = rt.custom.prune(obj)
        else:
            paths = schemas.drop_unknown_fields(rt.group, rt.version, rt.kind, obj)
        if not paths:
            return
        if self.mode == "Strict":
            raise errors.BadRequest(message=schemas.strict_error_message(rt.kind, rt.version, paths))
        if self.mode == "Warn":
            self.warnings.extend(schemas.warning_headers(paths))


def not_found(rt: ResourceType, name: str) -> errors.NotFound:
    return errors.NotFound(message=f'{rt.plural}{"." + rt.group if rt.group else ""} "{name}" not found',
                           kind=rt.plural, name=name, group=rt.group)


def conflict(rt: ResourceType, name: str) -> errors.Conflict:
    gr = f'{rt.plural}{"." + rt.group if rt.group else ""}'
    return errors.Conflict(
        message=f'Operation cannot be fulfilled on {gr} "{name}": the object has been modified; '
                "please apply your changes to the latest version and try again",
        kind=rt.plural, name=name, group=rt.group)


def with_type(rt: ResourceType, obj: Obj) -> Obj:
    """`obj` (as stored) as this resource type serves it: its version's shape, apiVersion and kind."""
    if rt.conversion is not None:
        obj = rt.conversion.from_storage(obj)
    obj["apiVersion"] = rt.api_version
    obj["kind"] = rt.kind
    return obj


def _stored(rt: ResourceType, obj: Obj) -> Obj:
    """A client's object (in `rt`'s version, type checked) in the stored version's shape."""
    if rt.conversion is None:
        return obj
    if not isinstance(obj.get("metadata", {}), dict):
        raise errors.BadRequest(message="metadata must be an object")
    return rt.conversion.to_storage(obj)


def _stored_version(rt: ResourceType) -> str:
    """The apiVersion an Update entry is recorded in: the stored form's, which is what `_write` compares."""
    return rt.conversion.storage_version if rt.conversion is not None else rt.api_version


def _shape(rt: ResourceType) -> str:
    """Where server-side apply reads the kind's list and map facts: the built-in table by kind, a custom
    resource's own entries (made from its CRD's schema)."""
    return rt.custom.apply_type if rt.custom is not None else rt.kind


def _same_object(rt: ResourceType, ns: str, name: str, body: Obj) -> Obj:
    """The body's metadata, once it is known to name the object of the URL (what PUT and apply require)."""
    m = body.get("metadata")
    if not isinstance(m, dict):
        raise errors.BadRequest(message="metadata must be an object")
    if m.get("name") and m["name"] != name:
        raise errors.BadRequest(message=f'the name of the object ({m["name"]}) does not match the name on '
                                        f"the URL ({name})")
    if rt.namespaced and m.get("namespace") and m["namespace"] != ns:
        raise errors.BadRequest(message="the namespace of the provided object does not match the "
                                        "namespace sent on the request")
    return m


def revision_of(obj: Obj) -> int:
    try:
        return int(obj.get("metadata", {}).get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


class Handlers:
    """The verbs, bound to one API context."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx
        self.store = ctx.store

    # ---- reads ---------------------------------------------------------------
    def get(self, rt: ResourceType, ns: str, name: str) -> Obj:
        obj = self.store.get(rt.key(ns, name))
        if obj is None:
            raise not_found(rt, name)
        return with_type(rt, obj)

    def list(self, rt: ResourceType, ns: str, opts: ListOptions) -> Obj:
        """A list, or one page of it (`limit`). Every page of a paged list is read at the
        revision of the first page (its continue token carries it), as Kubernetes serves
        pages from one etcd revision: objects changed between pages appear as they were."""
        start, revision = "", 0  # revision 0: the current state
        if opts.continue_token:
            if opts.resource_version not in ("", "0"):
                raise errors.BadRequest(message="specifying resource version is not allowed when using continue")
            start, revision = self._decode_continue(opts.continue_token, rt, ns)
        elif opts.resource_version not in ("", "0"):
            revision = self._requested_revision(opts)
        prefix = rt.prefix(ns)
        items: builtins.list[Obj] = []
        next_key = ""
        # Read in pages until `limit` matching items are found (selectors filter after the store).
        cursor = start
        restarts = 0
        while True:
            try:
                page = self.store.list_page(prefix, start=cursor, limit=(opts.limit + 1) if opts.limit else 0,
                                            revision=revision)
            except errors.Gone:
                if opts.continue_token:
                    raise ContinueExpired(message=CONTINUE_EXPIRED,
                                          continue_token=encode_continue(-1, start)) from None
                # A first page whose own revision became unreadable between two reads (thousands
                # of writes meanwhile): start it again at the current state.
                restarts += 1
                if restarts > 3:
                    raise
                items, cursor, revision = [], start, 0
                continue
            revision = page.revision  # later reads of this request, and the next page, read at it
            for obj in page.items:
                key = rt.key(obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
                if opts.limit and len(items) == opts.limit:
                    next_key = key
                    break
                if opts.matches(obj):
                    if rt.conversion is not None:
                        obj = rt.conversion.from_storage(obj)
                    obj.pop("apiVersion", None)
                    obj.pop("kind", None)
                    items.append(obj)
            if next_key or not opts.limit or len(page.items) <= opts.limit:
                break
            last = page.items[-1]["metadata"]
            cursor = rt.key(last.get("namespace", ""), last["name"]) + "\x00"
        metadata: Obj = {"resourceVersion": str(revision)}
        if next_key:
            metadata["continue"] = encode_continue(revision, next_key)
            if opts.label_selector is None and opts.field_selector is None:
                # Without selectors the last page read holds `limit` items and then next_key's.
                metadata["remainingItemCount"] = page.remaining + 1
        return {"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": metadata, "items": items}

    def _requested_revision(self, opts: ListOptions) -> int:
        """The revision a list with `resourceVersion=N` reads at: N itself for `Exact` (a snapshot,
        410 once compacted), the current state for `NotOlderThan` (the default) if it is at least N.
        A revision the store has not reached is 504 Timeout, as Kubernetes answers it."""
        try:
            wanted = int(opts.resource_version)
        except ValueError:
            raise errors.BadRequest(message=f'invalid resource version "{opts.resource_version}"') from None
        if wanted < 0:
            raise errors.BadRequest(message=f'invalid resource version "{opts.resource_version}"')
        current = self.store.revision()
        if wanted > current:
            raise errors.Timeout(message=f"Too large resource version: {wanted}, current: {current}",
                                 retry_after=1, causes=[Cause("", f"Too large resource version: {wanted}, "
                                                                  f"current: {current}",
                                                              "ResourceVersionTooLarge")])
        if opts.resource_version_match != "Exact":
            return 0
        if wanted < self.store.compacted_revision():
            raise errors.Gone(message="The resourceVersion for the provided list is too old.")
        return wanted

    def _decode_continue(self, token: str, rt: ResourceType, ns: str) -> tuple[str, int]:
        """(first key, revision) of a continue token; revision 0 for Kubernetes' inconsistent
        continuation (-1 in the token: continue at the current state)."""
        try:
            data = json.loads(base64.urlsafe_b64decode(token.encode()))
            start, rv = str(data["start"]), int(data["rv"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise errors.BadRequest(message="continue key is not valid: illegal base64 data") from None
        if not start.startswith(rt.prefix(ns)):
            raise errors.BadRequest(message="continue key is not valid: key does not match the request")
        if rv == -1:
            return start, 0
        if rv <= 0 or rv > self.store.revision():
            raise errors.BadRequest(message="continue key is not valid: incorrect encoded start "
                                            "resourceVersion (version meta.k8s.io/v1)")
        return start, rv

    # ---- create --------------------------------------------------------------
    def create(self, rt: ResourceType, ns: str, body: Obj, dry_run: bool = False,
               fields: FieldCheck | None = None, requester: Identity | None = None,
               manager: str | None = None, applied: bool = False) -> Obj:
        """`requester`: who asks, for admission (None: the master itself, no restrictions); `manager`:
        the field manager recorded (None: the master's controllers); `applied`: the body comes from a
        server-side apply and already carries its managedFields."""
        obj = self._check_type(rt, body)
        (fields or FieldCheck()).apply(rt, obj)
        obj = _stored(rt, obj)
        m = obj.setdefault("metadata", {})
        if not isinstance(m, dict):
            raise errors.BadRequest(message="metadata must be an object")
        if rt.namespaced:
            if m.get("namespace") and m["namespace"] != ns:
                raise errors.BadRequest(message="the namespace of the provided object does not match the "
                                                "namespace sent on the request")
            m["namespace"] = ns
            self._check_namespace(ns)
        else:
            m.pop("namespace", None)
        if not m.get("name") and m.get("generateName"):
            m["name"] = meta.generated_name(str(m["generateName"]))
        for fld in ("resourceVersion", "selfLink", *meta.SERVER_FIELDS):
            m.pop(fld, None)
        m["uid"] = meta.new_uid()
        m["creationTimestamp"] = timefmt.rfc3339()
        if rt.strategy.has_status:
            m["generation"] = 1
        strategy = rt.strategy
        self._validate_meta(rt, obj)
        strategy.default(obj)
        lock = self.ctx.alloc_lock if strategy.serialize_writes else None
        if lock:
            lock.acquire()
        try:
            # Admission first, as Kubernetes' NodeRestriction: a node told it may not set a field at all
            # learns that, not what is wrong with the value (nor that another node holds it).
            admission.admit_create(rt, obj, requester)
            strategy.prepare_create(obj, self.ctx)
            self._raise_invalid(rt, obj, strategy.validate(obj))
            if rt.group == admission.RBAC:
                admission.admit_rbac(rt, obj, requester, self.ctx.rbac)
            if not applied:
                fieldmanager.record_update(None, obj, _shape(rt), _stored_version(rt),
                                           manager or fieldmanager.CONTROLLERS, "", rt.strategy.has_status)
            if dry_run:
                return with_type(rt, obj)
            try:
                stored = self.store.create(rt.key(ns, m["name"]), obj, durable=not rt.volatile)
            except errors.AlreadyExists:
                raise errors.AlreadyExists(
                    message=f'{rt.plural}{"." + rt.group if rt.group else ""} "{m["name"]}" already exists',
                    kind=rt.plural, name=m["name"], group=rt.group) from None
        finally:
            if lock:
                lock.release()
        return with_type(rt, stored)

    def _check_type(self, rt: ResourceType, body: Obj) -> Obj:
        obj = copy.deepcopy(body)
        kind, api_version = obj.get("kind"), obj.get("apiVersion")
        if api_version and api_version != rt.api_version:
            raise errors.BadRequest(message=f"the API version in the data ({api_version}) does not match the "
                                            f"expected API version ({rt.api_version})")
        if kind and kind != rt.kind:
            raise errors.BadRequest(message=f"the kind in the data ({kind}) does not match the expected kind "
                                            f"({rt.kind}) for this URL")
        obj["kind"], obj["apiVersion"] = rt.kind, rt.api_version
        return obj

    def _check_namespace(self, ns: str) -> None:
        namespace = self.store.get(f"/core/namespaces/{ns}")
        if namespace is None:
            raise errors.NotFound(message=f'namespaces "{ns}" not found', kind="namespaces", name=ns)
        if namespace.get("metadata", {}).get("deletionTimestamp"):
            raise errors.Forbidden(message=f"unable to create new content in namespace {ns} because it is "
                                           "being terminated", kind="namespaces", name=ns)

    def _validate_meta(self, rt: ResourceType, obj: Obj) -> None:
        causes = meta.validate_meta(obj, rt.namespaced, rt.strategy.name_rule)
        self._raise_invalid(rt, obj, causes)

    def _raise_invalid(self, rt: ResourceType, obj: Obj, causes: builtins.list[errors.Cause]) -> None:
        if causes:
            name = str(obj.get("metadata", {}).get("name") or obj.get("metadata", {}).get("generateName", ""))
            raise errors.Invalid(message=meta.invalid_message(rt.kind, name, causes), kind=rt.kind,
                                 name=name, group=rt.group, causes=causes)

    # ---- update and patch ----------------------------------------------------
    def update(self, rt: ResourceType, ns: str, name: str, body: Obj, subresource: str = "",
               dry_run: bool = False, fields: FieldCheck | None = None,
               requester: Identity | None = None, manager: str | None = None) -> Obj:
        new_body = self._check_type(rt, body)
        (fields or FieldCheck()).apply(rt, new_body)
        new_body = _stored(rt, new_body)
        m = _same_object(rt, ns, name, new_body)
        expect = m.get("resourceVersion")
        return self._write(rt, ns, name, lambda old: new_body, expect_rv=str(expect) if expect else "",
                           subresource=subresource, dry_run=dry_run, requester=requester, manager=manager)

    def patch(self, rt: ResourceType, ns: str, name: str, patch_type: str, patch_body: Any,
              subresource: str = "", dry_run: bool = False, fields: FieldCheck | None = None,
              requester: Identity | None = None, manager: str | None = None, force: bool = False) -> Obj:
        check = fields or FieldCheck()
        if patch_type == "apply":
            return self.apply(rt, ns, name, patch_body, subresource, dry_run, check, requester, manager or "",
                              force)[0]
        if patch_type in ("merge", "strategic") and not isinstance(patch_body, dict):
            raise errors.BadRequest(message="the patch must be a JSON object")
        if patch_type == "json" and not isinstance(patch_body, list):
            raise errors.BadRequest(message="a JSON patch must be a list of operations")
        expect = ""
        if isinstance(patch_body, dict):
            rv = (patch_body.get("metadata") or {}).get("resourceVersion") \
                if isinstance(patch_body.get("metadata"), dict) else None
            expect = str(rv) if rv else ""

        def apply(old: Obj) -> Obj:
            original = with_type(rt, copy.deepcopy(old))
            if patch_type == "merge":
                result = json_merge_patch(original, patch_body)
            elif patch_type == "json":
                result = json_patch(original, patch_body, max_bytes=self.ctx.settings.max_body_bytes)
            else:
                result = strategic_merge_patch(original, patch_body, rt.kind)
            if not isinstance(result, dict):
                raise errors.BadRequest(message="the patch did not produce an object")
            typed = self._check_type(rt, result)
            check.apply(rt, typed)
            return _stored(rt, typed)

        return self._write(rt, ns, name, apply, expect_rv=expect, subresource=subresource, dry_run=dry_run,
                           requester=requester, manager=manager)

    def apply(self, rt: ResourceType, ns: str, name: str, body: Any, subresource: str = "",
              dry_run: bool = False, fields: FieldCheck | None = None, requester: Identity | None = None,
              manager: str = "", force: bool = False,
              may_create: Callable[[], None] | None = None) -> tuple[Obj, bool]:
        """Server-side apply of `body` by `manager`: (the object, whether it was created). `may_create`
        raises when the requester may patch but not create (Kubernetes authorizes a create by apply as a
        create)."""
        config = self._apply_config(rt, ns, name, body, manager)
        (fields or FieldCheck()).apply(rt, config)
        has_status = rt.strategy.has_status
        for _ in range(3):
            if subresource or self.store.get(rt.key(ns, name)) is not None:
                break  # a subresource of a missing object is 404, from _write
            if may_create is not None:
                may_create()
            made = fieldmanager.apply({}, config, _shape(rt), rt.api_version, manager, force, subresource, has_status)
            try:
                return self.create(rt, ns, made, dry_run, None, requester, manager, applied=True), True
            except errors.AlreadyExists:
                continue

        def build(old: Obj) -> Obj:
            live = with_type(rt, copy.deepcopy(old))
            merged = fieldmanager.apply(live, config, _shape(rt), rt.api_version, manager, force, subresource,
                                        has_status)
            return _stored(rt, self._check_type(rt, merged))

        return self._write(rt, ns, name, build, expect_rv="", subresource=subresource, dry_run=dry_run,
                           requester=requester, manager=manager, applying=True), False

    def _apply_config(self, rt: ResourceType, ns: str, name: str, body: Any, manager: str) -> Obj:
        """The applied configuration, checked as Kubernetes checks it before merging."""
        fieldmanager.require_manager(manager)
        if body is None:
            body = {}  # Go decodes `null` into an empty object, refused below for its type
        if not isinstance(body, dict):
            go_type = "bool" if isinstance(body, bool) else "number" if isinstance(body, int | float) else \
                "string" if isinstance(body, str) else "array"
            raise errors.BadRequest(message=f"error decoding patch: json: cannot unmarshal {go_type} into Go "
                                            "value of type map[string]interface {}")
        if body.get("apiVersion") != rt.api_version or body.get("kind") != rt.kind:
            # apimachinery's versionCheckManager, the outermost step of the field manager: the
            # type's GroupVersionKind as Go prints it.
            raise errors.BadRequest(message=f"invalid object type: {fieldmanager.gvk_string(body)}")
        _same_object(rt, ns, name, body)
        config = copy.deepcopy(body)
        config["metadata"].setdefault("name", name)
        return config

    def _write(self, rt: ResourceType, ns: str, name: str, build: Any, expect_rv: str,
               subresource: str, dry_run: bool, requester: Identity | None = None,
               manager: str | None = None, applying: bool = False) -> Obj:
        strategy = rt.strategy
        key = rt.key(ns, name)
        result: dict[str, Obj] = {}
        durable_box = {"durable": not rt.volatile}

        def fn(old: Obj | None) -> Obj | None:
            if old is None:
                raise not_found(rt, name)
            if expect_rv and expect_rv != old["metadata"].get("resourceVersion"):
                raise conflict(rt, name)
            new: Obj = build(copy.deepcopy(old))
            new.setdefault("metadata", {})
            if not isinstance(new["metadata"], dict):
                raise errors.BadRequest(message="metadata must be an object")
            new["metadata"]["name"] = name
            if rt.namespaced:
                new["metadata"]["namespace"] = ns
            if subresource == "status":
                owners = new["metadata"].get("managedFields")
                new = strategy.prepare_status_update(new, old)
                if applying:  # the apply's bookkeeping, not the old metadata's
                    new["metadata"] = {**new["metadata"], "managedFields": owners}
                    if owners is None:
                        new["metadata"].pop("managedFields")
            # Before prepare_update and validation (see create); after the status reset, which keeps the
            # old labels and spec, so a status write is never judged on fields it cannot change.
            admission.admit_update(rt, new, old, requester)
            if subresource != "status":
                strategy.prepare_update(new, old, self.ctx)
            nm, om = new["metadata"], old["metadata"]
            for fld in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                        "generation"):
                if fld in om:
                    nm[fld] = om[fld]
                else:
                    nm.pop(fld, None)
            nm.pop("resourceVersion", None)
            nm.pop("selfLink", None)
            self._validate_meta(rt, new)
            if subresource != "status":
                strategy.default(new)
                self._raise_invalid(rt, new, strategy.validate(new))
            self._raise_invalid(rt, new, meta.validate_meta_update(new, old) + strategy.validate_update(new, old))
            if rt.group == admission.RBAC and subresource != "status":
                admission.admit_rbac(rt, new, requester, self.ctx.rbac)
            if subresource != "status" and strategy.spec_changed(new, old):
                nm["generation"] = int(om.get("generation") or 1) + 1
            if not applying:
                fieldmanager.record_update(old, new, _shape(rt), _stored_version(rt),
                                           manager or fieldmanager.CONTROLLERS, subresource, strategy.has_status)
            result["new"] = new
            if new_equals(new, old):
                raise _Unchanged()
            if not rt.volatile:
                durable_box["durable"] = not strategy.is_volatile_update(new, old)
            if dry_run:
                raise _Unchanged()
            if nm.get("deletionTimestamp") and not nm.get("finalizers") and \
                    not int(nm.get("deletionGracePeriodSeconds") or 0) and not strategy.holds_deletion(new):
                return None
            return new

        lock = self.ctx.alloc_lock if strategy.serialize_writes else None
        if lock:
            lock.acquire()
        try:
            try:
                old, new = self._mutate(key, fn, durable_box, volatile_capable(rt))
            except _Unchanged:
                if dry_run:
                    return with_type(rt, result["new"])
                current = self.store.get(key)
                if current is None:
                    raise not_found(rt, name) from None
                return with_type(rt, current)
        finally:
            if lock:
                lock.release()
        if new is None:
            assert old is not None
            return with_type(rt, old)
        return with_type(rt, new)

    def _mutate(self, key: str, fn: Any, box: dict[str, bool],
                maybe_volatile: bool) -> tuple[Obj | None, Obj | None]:
        """Write through `fn`; a heartbeat-only change (decided inside fn) stays in memory.

        A kind that can have volatile updates is tried volatile first; if fn finds a real
        change it asks for a durable retry, so a real change is never kept in memory only.
        """
        if not maybe_volatile:
            return self.store.mutate(key, fn, durable=box["durable"])
        chosen = False

        def guarded(old: Obj | None) -> Obj | None:
            out: Obj | None = fn(old)
            if box["durable"] and not chosen:
                raise _NeedsDurable()
            return out

        try:
            return self.store.mutate(key, guarded, durable=False)
        except _NeedsDurable:
            chosen = True
            box["durable"] = True
            return self.store.mutate(key, guarded, durable=True)

    # ---- delete ----------------------------------------------------------------
    def delete(self, rt: ResourceType, ns: str, name: str, options: Obj, dry_run: bool = False) -> Obj:
        grace = options.get("gracePeriodSeconds")
        policy = options.get("propagationPolicy")
        if options.get("orphanDependents") is True and not policy:
            policy = "Orphan"
        if policy not in (None, "Orphan", "Foreground", "Background"):
            raise errors.BadRequest(message=f'propagationPolicy "{policy}" is not supported: one of '
                                            '"Orphan", "Foreground", "Background"')
        pre = options.get("preconditions") or {}
        key = rt.key(ns, name)
        result: dict[str, Obj] = {}

        def fn(old: Obj | None) -> Obj | None:
            if old is None:
                raise not_found(rt, name)
            rt.strategy.check_delete(old)
            m = old["metadata"]
            if pre.get("uid") and pre["uid"] != m.get("uid"):
                raise errors.Conflict(message=f"Precondition failed: UID in precondition: {pre['uid']}, UID in "
                                              f"object meta: {m.get('uid')}", name=name, kind=rt.plural)
            if pre.get("resourceVersion") and pre["resourceVersion"] != m.get("resourceVersion"):
                raise errors.Conflict(message="Precondition failed: ResourceVersion in precondition: "
                                              f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                                              f"{m.get('resourceVersion')}", name=name, kind=rt.plural)
            new = copy.deepcopy(old)
            nm = new["metadata"]
            finalizers = list(nm.get("finalizers") or [])
            if policy == "Orphan" and "orphan" not in finalizers:
                finalizers.append("orphan")
            if policy == "Foreground" and "foregroundDeletion" not in finalizers:
                finalizers.append("foregroundDeletion")
            wait = self._grace(rt, old, grace)
            if rt.kind == "Namespace":
                new.setdefault("status", {})["phase"] = "Terminating"
            pending = bool(finalizers) or wait > 0 or rt.strategy.holds_deletion(new)
            result["last"] = new
            if not pending:
                if dry_run:
                    raise _Unchanged()
                return None
            if finalizers:
                nm["finalizers"] = finalizers
            if not nm.get("deletionTimestamp") or wait < int(nm.get("deletionGracePeriodSeconds") or 0):
                when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=wait)
                nm["deletionTimestamp"] = timefmt.rfc3339(when)
                nm["deletionGracePeriodSeconds"] = wait
            if dry_run or new_equals(new, old):
                raise _Unchanged()
            return new

        try:
            old, new = self.store.mutate(key, fn)
        except _Unchanged:
            return with_type(rt, result["last"])
        if new is None:
            assert old is not None
            rt.strategy.release(old, self.ctx)
            return with_type(rt, old)
        return with_type(rt, new)

    @staticmethod
    def _grace(rt: ResourceType, obj: Obj, requested: Any) -> int:
        if rt.kind != "Pod":
            return 0
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
            return 0
        if requested is None:
            return int(spec.get("terminationGracePeriodSeconds") or 30)
        try:
            value = int(requested)
        except (TypeError, ValueError):
            raise errors.BadRequest(message=f"gracePeriodSeconds must be an integer, got {requested!r}") from None
        return max(value, 0)

    def delete_collection(self, rt: ResourceType, ns: str, opts: ListOptions, options: Obj,
                          dry_run: bool = False) -> Obj:
        listing = self.list(rt, ns, ListOptions(opts.label_selector, opts.field_selector))
        items = []
        for obj in listing["items"]:
            m = obj["metadata"]
            try:
                items.append(self.delete(rt, m.get("namespace", ""), m["name"], options, dry_run))
            except errors.NotFound:
                continue
        for item in items:
            item.pop("apiVersion", None)
            item.pop("kind", None)
        return {"kind": rt.list_kind, "apiVersion": rt.api_version,
                "metadata": {"resourceVersion": str(self.store.revision())}, "items": items}


class _Unchanged(Exception):
    """Raised inside a mutation to leave the stored object as it is."""


class _NeedsDurable(Exception):
    """Raised when a write first tried as volatile turns out to change real state."""


def volatile_capable(rt: ResourceType) -> bool:
    from master.registry.resource import Strategy

    return not rt.volatile and type(rt.strategy).is_volatile_update is not Strategy.is_volatile_update


def new_equals(new: Obj, old: Obj) -> bool:
    a, b = copy.deepcopy(new), copy.deepcopy(old)
    for o in (a, b):  # managedFields count: a write that changes only them (a reset) is stored
        o.get("metadata", {}).pop("resourceVersion", None)
    return a == b
