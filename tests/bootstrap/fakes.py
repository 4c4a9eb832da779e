"""Fakes for the bootstrap's seams: a service manager, the hooks into master/agent, a master's API."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from core.kubeconfig import KubeConfig, write_kubeconfig
from pikube.bootstrap import api, common
from pikube.bootstrap.common import Hooks
from pikube.bootstrap.init import InitKind
from pikube.bootstrap.layout import MASTER_UNIT, Layout
from pikube.bootstrap.units import Unit, render

PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
HASH = "ab" * 32
TOKEN = f"pikube-{HASH}::abcdef.0123456789abcdef"


def kubeconfig(path: Path, server: str = "https://10.0.0.1:6443") -> None:
    fake = base64.b64encode(b"x")
    write_kubeconfig(path, KubeConfig(server=server, ca_pem=fake, cert_pem=fake, key_pem=fake))


@dataclass
class FakeInit:
    """A service manager that remembers what it was asked; the master unit writes the admin kubeconfig."""

    layout: Layout
    kind: InitKind = InitKind.NONE
    units: dict[str, str] = field(default_factory=dict)
    running: set[str] = field(default_factory=set)
    calls: list[str] = field(default_factory=list)

    def installed_text(self, name: str) -> str | None:
        return self.units.get(name)

    def install(self, unit: Unit) -> bool:
        text = render(unit)
        changed = self.units.get(unit.name) != text
        self.units[unit.name] = text
        if changed:
            self.calls.append(f"install {unit.name}")
        return changed

    def start(self, name: str, restart: bool = False) -> None:
        self.calls.append(f"{'restart' if restart else 'start'} {name}")
        self.running.add(name)
        if name == MASTER_UNIT and not self.layout.master_kubeconfig.exists():
            kubeconfig(self.layout.master_kubeconfig)

    def active(self, name: str) -> bool:
        return name in self.running

    def uninstall(self, name: str) -> None:
        if name in self.units or name in self.running:
            self.calls.append(f"uninstall {name}")
        self.units.pop(name, None)
        self.running.discard(name)

    def log_hint(self, name: str) -> str:
        return f"log of {name}"


@dataclass
class FakeBoard:
    """Hooks that record calls; `join` writes node credentials unless `join_error` is set."""

    layout: Layout
    problems: list[str] = field(default_factory=list)
    join_error: Exception | None = None
    preflight_cas: list[bytes | None] = field(default_factory=list)
    joined: list[tuple[str, str]] = field(default_factory=list)
    teardowns: int = 0
    tokens: dict[str, str] = field(default_factory=dict)
    said: list[str] = field(default_factory=list)
    made_tokens: int = 0

    def preflight(self, ca: bytes | None) -> list[str]:
        self.preflight_cas.append(ca)
        return list(self.problems)

    def join(self, agent_data: Path, server: str, node: str, token: str) -> None:
        if self.join_error is not None:
            raise self.join_error
        self.joined.append((server, node))
        kubeconfig(agent_data / "kubelet.kubeconfig", server)

    def teardown(self) -> None:
        self.teardowns += 1

    def create_token(self, data: Path, ttl: float | None, description: str) -> str:
        self.made_tokens += 1
        secret = f"tok{self.made_tokens:03d}.0123456789abcdef"
        self.tokens[secret.split(".")[0]] = description
        return f"pikube-{HASH}::{secret}"

    def hooks(self) -> Hooks:
        return Hooks(preflight=self.preflight, join=self.join, teardown_network=self.teardown,
                     create_token=self.create_token, token_exists=lambda _d, tid: tid in self.tokens,
                     report=self.said.append)


def fake_api(monkeypatch: pytest.MonkeyPatch, ready: Callable[[str], bool] = lambda _n: True,
             backend: str | None = "vxlan") -> list[str]:
    """Replace the API calls the bootstrap makes; returns the taints it was asked to add."""
    taints: list[str] = []
    monkeypatch.setattr(api, "healthy", lambda _cfg: True)
    monkeypatch.setattr(api, "node_ready", lambda _cfg, name: ready(name))
    monkeypatch.setattr(api, "cluster_backend", lambda _cfg: backend)

    def taint(_cfg: KubeConfig, name: str, key: str, effect: str = "NoSchedule") -> bool:
        new = f"{name}:{key}:{effect}" not in taints
        if new:
            taints.append(f"{name}:{key}:{effect}")
        return new

    monkeypatch.setattr(api, "ensure_taint", taint)
    monkeypatch.setattr(api, "wait_for", lambda check, timeout, interval=0.1, alive=None: check())
    assert common.api is api
    return taints


def tree(root: Path) -> dict[str, tuple[float, bytes]]:
    """Every file under `root` with its mtime and content (to show a run changed nothing)."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): (p.stat().st_mtime, p.read_bytes()) for p in sorted(root.rglob("*"))
            if p.is_file()}
