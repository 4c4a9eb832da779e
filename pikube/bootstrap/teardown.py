"""`pikube disable` and `pikube reset`: take a board out of service, with or without its data.

`disable` stops and removes the services, stops the board's pod containers
and removes its pod network and service rules, and keeps everything under
the data and config directories: `enable-master` / `enable-worker` bring the
same cluster back. `reset` does that and also removes the pods' containers,
the data (store, CA, credentials) and what enable-* wrote to the config dir,
so the board is as if pikube had never run (the Node object, if the cluster
lives on, is the admin's to delete).
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pikube.bootstrap import pods
from pikube.bootstrap.common import Report
from pikube.bootstrap.etcdmember import EtcdClient, EtcdUnavailable
from pikube.bootstrap.init import Init
from pikube.bootstrap.layout import AGENT_UNIT, ETCD_UNIT, MASTER_UNIT, Layout
from pikube.bootstrap.record import NodeRecord
from pikube.bootstrap.services import LOCAL_ETCD

LEAVE_SECONDS = 20.0
RETRY_TEXTS = ("unhealthy cluster", "not enough started members")


@dataclass(frozen=True)
class Board:
    """What teardown acts on: the directories, the record (None if enable-* never finished), the init, and
    the agent's own teardown (`agent.teardown`): the network alone, or the node's containers and the network."""

    layout: Layout
    record: NodeRecord | None
    init: Init
    remove_network: Callable[[], None]
    reset_agent: Callable[[], None]


def disable(board: Board, report: Report, stop_pods: bool = True) -> bool:
    """Stop everything pikube runs on the board; False when nothing was installed or running."""
    did = False
    for unit in (AGENT_UNIT, MASTER_UNIT, ETCD_UNIT):
        if board.init.installed_text(unit) is not None or board.init.active(unit):
            board.init.uninstall(unit)
            report(f"{unit} stopped and removed")
            did = True
    if not did and board.record is None:
        return False
    if board.record is not None and stop_pods:
        try:
            stopped = pods.stop(board.record.docker_host, board.record.node_name)
        except Exception as exc:
            report(f"could not stop the pods' containers at {board.record.docker_host}: {exc}")
        else:
            if stopped:
                report(f"{stopped} pod containers stopped")
    try:
        board.remove_network()
    except Exception as exc:
        report(f"could not remove the pod network: {exc}")
    else:
        report("pod network and service rules removed")
    return True


def leave_etcd(board: Board, report: Report) -> None:
    """A master on etcd leaves the etcd cluster before its member's data goes: the others then count one
    member less for their quorum (a member gone for good but still listed would count against it)."""
    rec, lay = board.record, board.layout
    if rec is None or rec.datastore != "etcd":
        return
    client = EtcdClient(LOCAL_ETCD, lay.master_data / "pki" / "etcd", timeout=5.0)
    deadline = time.monotonic() + LEAVE_SECONDS
    while True:
        try:
            members = client.members()
            me = next((m for m in members if m.name == rec.node_name), None)
            if me is None or len(members) < 2:
                return  # the last member: nobody is left to tell
            client.remove(me.id)
        except EtcdUnavailable as exc:
            # etcd lets a member go only once the others have been connected to it for 5 s (its check that
            # the rest still make a quorum, "unhealthy cluster"): after a member's restart it is asked again.
            if any(t in str(exc) for t in RETRY_TEXTS) and time.monotonic() < deadline:
                time.sleep(0.5)
                continue
            report(f"could not take this board's etcd member out of the cluster ({exc}): if other masters "
                   f"remain, remove it on one of them (`etcdctl member list`, then `etcdctl member remove ID`)")
            return
        report(f"etcd member {rec.node_name} removed from the cluster ({len(members) - 1} members left)")
        return


def reset(board: Board, report: Report, user_kubeconfig: Path | None = None) -> None:
    """`disable`, then delete the pods' containers, the data and what enable-* wrote to the config dir; a
    master on etcd first leaves the etcd cluster."""
    lay = board.layout
    leave_etcd(board, report)
    disable(board, report, stop_pods=False)  # they are removed (killed) below: no grace period to wait for
    if board.record is not None:
        try:
            board.reset_agent()
        except Exception as exc:
            report(f"could not remove the pods' containers: {exc}")
        else:
            report("pod containers and volumes removed")
    if user_kubeconfig is not None:
        with contextlib.suppress(OSError):
            if user_kubeconfig.read_bytes() == lay.admin_kubeconfig.read_bytes():
                user_kubeconfig.unlink()
                report(f"removed {user_kubeconfig} (it was this cluster's admin kubeconfig)")
    for path in (lay.admin_kubeconfig, lay.join_token, lay.record):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    shutil.rmtree(lay.supervised_units, ignore_errors=True)
    with contextlib.suppress(OSError):
        lay.config_dir.rmdir()  # only when empty: it may hold someone's own files
    for directory in (lay.master_data, lay.agent_data, lay.etcd_data, lay.logs):
        shutil.rmtree(directory, ignore_errors=True)
    with contextlib.suppress(OSError):
        lay.data_dir.rmdir()
    report(f"data removed ({lay.data_dir}) and configuration removed ({lay.config_dir})")
