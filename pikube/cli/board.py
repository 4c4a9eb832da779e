"""`pikube info`, `pikube doctor [--fix]` and `pikube supervise`: looking at a board, and keeping it running.

`supervise` is the service supervisor `--init none` starts (see
`pikube.bootstrap.supervisor`); people run `pikube start` rather than it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core.host import Host
from pikube.bootstrap import record
from pikube.bootstrap.layout import CONFIG_DIR, DATA_DIR, Layout
from pikube.cli import boardenv

MARK = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}


def register(sub: Any) -> None:
    i = sub.add_parser("info", help="this board: model, arch, kernel, CPU, memory, disk, temperature, versions, "
                                    "role, cluster")
    _dirs(i)
    i.set_defaults(func=_info)
    d = sub.add_parser("doctor", help="check this board for what trips pikube up on a Pi, with the fixes")
    _dirs(d)
    d.add_argument("--backend", choices=("host-gw", "vxlan"), default=None, help="default: from the record")
    d.add_argument("--fix", action="store_true", help="apply the safe fixes (needs root)")
    d.set_defaults(func=_doctor)
    s = sub.add_parser("supervise", help="run unit files without systemd (started by `--init none`)")
    s.add_argument("--units-dir", type=Path, required=True)
    s.add_argument("--log-dir", type=Path, required=True)
    s.set_defaults(func=_supervise)


def _dirs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config-dir", type=Path, default=CONFIG_DIR)
    p.add_argument("--data-dir", type=Path, default=None, help=f"default: from the record, else {DATA_DIR}")
    p.add_argument("--docker-host", default="", help="default: from the record, else $DOCKER_HOST or the local "
                                                     "socket")


def _context(args: argparse.Namespace) -> tuple[Layout, record.NodeRecord | None, str]:
    from pikube.cli.main import CliError

    probe = Layout(config_dir=args.config_dir.absolute())
    try:
        rec = record.load(probe.record)
    except Exception as exc:
        raise CliError(str(exc)) from None
    data_dir = args.data_dir or (Path(rec.data_dir) if rec else DATA_DIR)
    docker = args.docker_host or (rec.docker_host if rec else boardenv.docker_host(""))
    return Layout(config_dir=probe.config_dir, data_dir=data_dir.absolute()), rec, docker


def board_info(host: Host, data_dir: Path, docker: tuple[bool, str], docker_host: str) -> Any:
    """The agent's reading of the board (`agent.hostfacts`, as the Node shows it) as `pikube info` shows it."""
    import platform

    from agent.hostfacts import collect
    from core import __version__
    from pikube.doctor.info import BoardInfo

    while not data_dir.exists() and data_dir != data_dir.parent:  # a board not set up yet: measure its parent
        data_dir = data_dir.parent
    facts = collect(host, data_dir)
    throttled = None if facts.throttled is None else facts.throttled_now
    return BoardInfo(model=facts.board_model, arch=facts.arch, machine=host.machine(), kernel=facts.kernel,
                     os_image=facts.os_image, cpus=facts.cpus, memory_total=facts.memory_bytes,
                     memory_available=facts.memory_available_bytes, disk_path=str(data_dir),
                     disk_total=facts.disk_bytes, disk_free=facts.disk_free_bytes,
                     temperature_c=facts.soc_temperature_c, throttled=throttled, pikube_version=__version__,
                     docker=docker[1] if docker[0] else f"not answering at {docker_host} ({docker[1]})",
                     python_version=platform.python_version())


def _info(args: argparse.Namespace) -> int:
    from pikube.bootstrap import status
    from pikube.doctor import info
    from pikube.doctor.host import RealHost

    layout, rec, docker = _context(args)
    host = RealHost()
    facts = board_info(host, layout.data_dir, host.docker_version(docker), docker)
    rows = info.render(facts)
    init = boardenv.make_init(rec.init if rec else boardenv.init_kind(None), layout)
    rows += [("role", status.role(rec)), ("services", status.services(rec, init)),
             ("cluster", status.cluster(layout, rec))]
    store = status.datastore(layout, rec)
    if store is not None:
        rows.append(("datastore", store))
    width = max(len(label) for label, _ in rows) + 1
    for label, value in rows:
        print(f"{label + ':':<{width}} {value}")
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from pikube.cli.main import CliError
    from pikube.doctor import fixes
    from pikube.doctor.checks import Status, run_checks
    from pikube.doctor.host import RealHost

    layout, rec, docker = _context(args)
    backend = args.backend or (rec.backend if rec else "host-gw")
    ctx = boardenv.doctor_context(layout, docker, backend)
    host = RealHost()
    findings = run_checks(host, ctx)
    for f in findings:
        print(f"[{MARK[f.status.value]}] {f.check}: {f.detail}")
        if f.status is not Status.OK and f.fix is not None:
            print(f"       fix: {f.fix.text}" + ("  (--fix does this)" if f.fix.safe else ""))
    if args.fix:
        if not boardenv.is_root():
            raise CliError("pikube doctor --fix must run as root (it changes system settings): use sudo.")
        if not fixes.fixable(findings):
            print("nothing that --fix can do")
        elif fixes.apply(host, findings, lambda line: print(f"pikube doctor: {line}")):
            return 1
        findings = run_checks(host, ctx)
    failed = [f for f in findings if f.status is Status.FAIL]
    print(f"{len(findings)} checks: {len(failed)} failed, "
          f"{sum(f.status is Status.WARN for f in findings)} warnings")
    return 1 if failed else 0


def _supervise(args: argparse.Namespace) -> int:
    from pikube.bootstrap.supervisor import Supervisor

    return Supervisor(args.units_dir.absolute(), args.log_dir.absolute()).run()
