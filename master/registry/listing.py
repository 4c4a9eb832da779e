"""How a list is asked for and continued: the options of a list request and the continue token of a paged one.

`parse_list_options` checks the query the way Kubernetes' ListOptions validation
does (422 with field causes, before anything is read); a continue token carries
the revision the first page was read at and the key the next page starts from,
so every page of one list shows the same snapshot (`docs/api.md`).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from core import errors
from core.errors import Cause
from core.kube import validation
from core.kube.selectors import FieldSelector, LabelSelector
from master.registry import meta
from master.registry.resource import ResourceType

Obj = dict[str, Any]


@dataclass(frozen=True)
class ListOptions:
    label_selector: LabelSelector | None = None
    field_selector: FieldSelector | None = None
    limit: int = 0
    continue_token: str = ""
    # A list's `resourceVersion` ("" = the latest, "0" = any) and `resourceVersionMatch`
    # ("", "NotOlderThan" or "Exact"); a watch reads its resourceVersion itself.
    resource_version: str = ""
    resource_version_match: str = ""

    def matches(self, obj: Obj) -> bool:
        if self.label_selector is not None and not self.label_selector.matches(
                obj.get("metadata", {}).get("labels") or {}):
            return False
        return self.field_selector is None or self.field_selector.matches(obj)


def parse_list_options(rt: ResourceType, args: dict[str, str]) -> ListOptions:
    label = args.get("labelSelector") or ""
    field = args.get("fieldSelector") or ""
    limit_text = args.get("limit") or "0"
    try:
        limit = int(limit_text)
    except ValueError:
        raise errors.BadRequest(message=f'invalid limit "{limit_text}": must be an integer') from None
    rv, match, token = args.get("resourceVersion") or "", args.get("resourceVersionMatch") or "", \
        args.get("continue") or ""
    causes = _version_option_causes(rv, match, token)
    if causes:
        raise errors.Invalid(message=meta.invalid_message("ListOptions.meta.k8s.io", "", causes), kind="ListOptions",
                             group="meta.k8s.io", causes=causes)
    return ListOptions(
        label_selector=LabelSelector.parse(label) if label else None,
        field_selector=FieldSelector.parse(field, rt.allowed_field_selectors()) if field else None,
        limit=max(limit, 0),
        continue_token=token,
        resource_version=rv,
        resource_version_match=match,
    )


def _version_option_causes(rv: str, match: str, token: str) -> list[Cause]:
    """Kubernetes' checks of a list's resourceVersion / resourceVersionMatch / continue together."""
    causes = []
    if match not in ("", "NotOlderThan", "Exact"):
        causes.append(validation.not_supported("resourceVersionMatch", match, ("Exact", "NotOlderThan", "")))
    if match and token:
        causes.append(validation.forbidden("resourceVersionMatch", "resourceVersionMatch is forbidden when "
                                           "continue is provided"))
    if match and not rv:
        causes.append(validation.forbidden("resourceVersionMatch", "resourceVersionMatch is forbidden unless "
                                           "resourceVersion is provided"))
    if match == "Exact" and rv == "0":
        causes.append(validation.forbidden("resourceVersionMatch", 'resourceVersionMatch "exact" is forbidden '
                                           'for resourceVersion "0"'))
    return causes


CONTINUE_EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. You can start a new "
    "list without the continue parameter, or use the continue token in this response to retrieve the "
    "remainder of the results. Continuing with the provided token results in an inconsistent list - "
    "objects that were created, modified, or deleted between the time the first chunk was returned and "
    "now may show up in the list.")


@dataclass
class ContinueExpired(errors.Gone):
    """410 Expired for a continue token whose revision the store can no longer read; like
    Kubernetes, the Status carries a token that continues from the same key at the current
    state (`metadata.continue`)."""

    continue_token: str = ""

    def status(self) -> dict[str, Any]:
        body = super().status()
        body["metadata"] = {"continue": self.continue_token}
        return body


def encode_continue(revision: int, start: str) -> str:
    """A continue token: the next page starts at key `start` and reads at `revision`
    (-1: at the current state)."""
    return base64.urlsafe_b64encode(json.dumps({"rv": revision, "start": start}).encode()).decode()
