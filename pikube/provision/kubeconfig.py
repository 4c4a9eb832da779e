"""Merging a new cluster's admin kubeconfig into the laptop's, under a context name the user chose.

The board's admin kubeconfig names its cluster, user and context `pikube`; merged, they
become CONTEXT, CONTEXT-admin and CONTEXT, replacing entries of those names and
keeping every other cluster, user and context (and their order). The Ansible role
`pikube_master` merges the same way, so both paths leave the same file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from core.fsutil import write_atomic


class KubeconfigError(Exception):
    """The laptop's kubeconfig or the board's admin kubeconfig cannot be used; the message says why."""


def _entries(doc: dict[str, Any], section: str, drop: str) -> list[Any]:
    return [e for e in doc.get(section) or [] if isinstance(e, dict) and e.get("name") != drop]


def merge(existing: dict[str, Any], admin: dict[str, Any], context: str, use: bool = True) -> dict[str, Any]:
    """`existing` with `admin`'s cluster and user added as `context` (made current when `use`)."""
    try:
        cluster = admin["clusters"][0]["cluster"]
        user = admin["users"][0]["user"]
    except (KeyError, IndexError, TypeError):
        raise KubeconfigError("the master's admin kubeconfig has no cluster or user in it") from None
    user_name = f"{context}-admin"
    merged = dict(existing)
    merged["apiVersion"] = "v1"
    merged["kind"] = "Config"
    merged["clusters"] = [*_entries(existing, "clusters", context), {"name": context, "cluster": cluster}]
    merged["users"] = [*_entries(existing, "users", user_name), {"name": user_name, "user": user}]
    merged["contexts"] = [*_entries(existing, "contexts", context),
                          {"name": context, "context": {"cluster": context, "user": user_name}}]
    if use or not existing.get("current-context"):
        merged["current-context"] = context
    return merged


def read(path: Path) -> dict[str, Any]:
    """The kubeconfig at `path`, {} when there is none."""
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, yaml.YAMLError) as exc:
        raise KubeconfigError(f"cannot read the kubeconfig {path}: {exc}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise KubeconfigError(f"{path} is not a kubeconfig (not a YAML mapping)")
    return doc


def merge_into(path: Path, admin_yaml: str, context: str, use: bool = True) -> None:
    """Merge the admin kubeconfig text into the file at `path` (made 0600, in a 0700 directory if new)."""
    admin = yaml.safe_load(admin_yaml)
    if not isinstance(admin, dict):
        raise KubeconfigError("the master's admin kubeconfig is not a YAML mapping")
    merged = merge(read(path), admin, context, use)
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)
    write_atomic(path, yaml.safe_dump(merged, sort_keys=False).encode(), mode=0o600)
