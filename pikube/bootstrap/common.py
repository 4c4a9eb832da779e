"""Pieces enable-master and enable-worker share: the hooks the CLI supplies, files, waits, undoing.

The hooks are how the bootstrap reaches what lives in `master/` and `agent/`
without importing them (the import contract allows that only in `pikube/cli/`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.fsutil import write_atomic
from core.kubeconfig import KubeConfig, read_kubeconfig
from pikube.bootstrap import api
from pikube.bootstrap.errors import NotReady, PreflightFailed
from pikube.bootstrap.init import Init
from pikube.bootstrap.layout import ALL_UNITS, Layout

Report = Callable[[str], None]


@dataclass(frozen=True)
class UserFile:
    """A file written for the invoking user (e.g. `~/.kube/config`), owned by them when known."""

    path: Path
    uid: int | None = None
    gid: int | None = None


@dataclass(frozen=True)
class Hooks:
    """What the CLI plugs in; tests pass fakes."""

    # Blocking problems the doctor finds (one sentence each); given the CA once it is pinned, only the
    # clock is checked again (against the CA's notBefore).
    preflight: Callable[[bytes | None], Sequence[str]]
    # Trade `token` for node credentials in the agent's data dir (pins the CA first); raises what
    # `core.jointoken.join` raises (or a BootstrapError).
    join: Callable[[Path, str, str, str], None]
    # Undo the pod network and service rules of this board (the agent's own `agent.teardown.remove_network`).
    teardown_network: Callable[[], None]
    # On the master: a new join token for the master data dir (None: never expires), and whether
    # a token (by id) still exists there.
    create_token: Callable[[Path, float | None, str], str] = field(default=lambda _d, _t, _s: "")
    token_exists: Callable[[Path, str], bool] = field(default=lambda _d, _t: False)
    report: Report = field(default=lambda _line: None)


def check_preflight(hooks: Hooks, ca_pem: bytes | None = None) -> None:
    problems = list(hooks.preflight(ca_pem))
    if problems:
        listed = "; ".join(p.rstrip(".") for p in problems)
        raise PreflightFailed(f"this board is not ready for pikube: {listed} (`pikube doctor` says how to fix "
                              "each; `pikube doctor --fix` applies the safe fixes).")


def write_private(path: Path, data: bytes, owner: UserFile | None = None) -> bool:
    """Write `data` to `path` 0600, atomically, unless it already holds it; True when written."""
    with contextlib.suppress(FileNotFoundError):
        if path.read_bytes() == data:
            return False
    uid, gid = (owner.uid, owner.gid) if owner is not None and owner.uid is not None else (None, None)
    write_atomic(path, data, 0o600, make_parents=True, uid=uid, gid=gid)
    if uid is not None and path.parent.name == ".kube":  # made for the user: let them own the directory too
        with contextlib.suppress(OSError):
            os.chown(path.parent, uid, gid if gid is not None else -1)
    return True


def wait_ready(init: Init, unit: str, cfg_path: Path, node_name: str, timeout: float) -> float:
    """Wait until `node_name` is Ready (asked with the kubeconfig at `cfg_path`); seconds it took."""
    start = time.monotonic()
    cfg: list[KubeConfig] = []

    def ready() -> bool:
        if not cfg:
            cfg.append(read_kubeconfig(cfg_path))
        return api.node_ready(cfg[0], node_name)

    if not api.wait_for(ready, timeout):
        raise NotReady(f"node {node_name} did not become Ready within {timeout:.0f} s; "
                       f"see the agent's log (`{init.log_hint(unit)}`).")
    return time.monotonic() - start


def missing_dirs(layout: Layout) -> list[Path]:
    """The board's directories that do not exist yet: what undoing a failed set-up may delete."""
    dirs = (layout.config_dir, layout.supervised_units, layout.data_dir, layout.master_data, layout.agent_data,
            layout.etcd_data, layout.logs)
    return [d for d in dirs if not d.exists()]


def undo(init: Init, hooks: Hooks, made_dirs: Sequence[Path], made_files: Sequence[Path]) -> None:
    """Undo a set-up that failed half-way: its services, the network it made, the files and directories
    it created (and nothing that was there before)."""
    for unit in reversed(ALL_UNITS):
        with contextlib.suppress(Exception):
            init.uninstall(unit)
    with contextlib.suppress(Exception):
        hooks.teardown_network()
    for path in made_files:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    for directory in sorted(made_dirs, key=lambda d: len(d.parts), reverse=True):
        shutil.rmtree(directory, ignore_errors=True)
