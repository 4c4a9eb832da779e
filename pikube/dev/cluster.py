"""One dev cluster = one state directory: `dev up`, `dev down`, `dev exec` as functions.

`up` checks everything a user can get wrong before it changes anything, claims
`DIR/state.json`, then starts (or connects to) the engine, makes the images and
the boards, and finally runs the launchers that start pikube processes inside
the boards. Every step is recorded, and a failure undoes all of them. `down`
removes what the record names (and whatever else carries the run's id), and can
be repeated after a crash.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shlex
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from agent.runtime import localimages as images
from core import processes
from pikube.dev import boards, engine, launch, naming
from pikube.dev.boards import Board, Lan
from pikube.dev.engine import Engine
from pikube.dev.errors import DevError
from pikube.dev.state import (
    ENGINE_DIR,
    ENV_FILE,
    KUBECONFIG_FILE,
    LOG_DIR,
    EngineRecord,
    Phase,
    ProcessRecord,
    State,
    claim,
    load,
    save,
    state_file,
)

Report = Callable[[str], None]


def _quiet(_line: str) -> None:
    pass


@dataclass(frozen=True)
class DevSettings:
    """What `pikube dev up` needs, parsed once by the CLI."""

    state_dir: Path
    workers: int = 2
    # DOCKER_HOST as the CLI found it; None starts a private engine under the state dir.
    docker_host: str | None = None
    busybox: Path = images.BUSYBOX
    # The pod network between boards: host-gw or vxlan.
    backend: str = "host-gw"
    # Master boards: 1 (SQLite) or an odd number on etcd (`enable-master --cluster-init`, then `--join`).
    masters: int = 1


class Cluster:
    """A dev cluster's state directory and record; launchers use it to start processes."""

    def __init__(self, state_dir: Path, state: State) -> None:
        self.state_dir = state_dir
        self.state = state

    @property
    def lan(self) -> Lan:
        if self.state.lan is None:
            raise DevError("this dev cluster has no boards yet.")
        return self.state.lan

    @property
    def engine(self) -> Engine:
        record = self.state.engine
        if record is None:
            raise DevError("this dev cluster has no Docker engine yet.")
        return Engine(host=record.host, root=None if record.root is None else Path(record.root), pid=record.pid)

    @property
    def kubeconfig(self) -> Path:
        """Where the master's launcher writes the admin kubeconfig."""
        return self.state_dir / KUBECONFIG_FILE

    def board(self, name: str) -> Board:
        return self.lan.board(name)

    def update(self, **changes: object) -> None:
        self.state = dataclasses.replace(self.state, **changes)  # type: ignore[arg-type]
        save(self.state_dir, self.state)

    def start_process(self, board_name: str, name: str, argv: Sequence[str]) -> ProcessRecord:
        """Start `argv` inside a board, detached, logging to `DIR/logs/<board>-<name>.log`."""
        board = self.board(board_name)
        logs = self.state_dir / LOG_DIR
        logs.mkdir(exist_ok=True)
        log = logs / f"{board.name}-{name}.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                boards.board_command(board, argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        record = ProcessRecord(board=board.name, name=name, pid=proc.pid, argv=tuple(argv), log=str(log))
        self.update(processes=(*self.state.processes, record))
        return record

    def record_supervisors(self, board_names: Sequence[str]) -> None:
        """Add the supervisors enable-* left running in these boards to the record (`dev down` stops them)."""
        found = [r for r in (launch.supervisor_record(self.state_dir, name) for name in board_names) if r]
        if found:
            self.update(processes=(*self.state.processes, *found))


class Launcher(Protocol):
    """Starts pikube processes inside the boards once they exist (the master, then agents)."""

    def __call__(self, cluster: Cluster, report: Report) -> None: ...


def _last_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


@dataclass(frozen=True)
class MasterLauncher:
    """Board 0 runs `enable-master --init none`; its admin kubeconfig lands in `DIR/kubeconfig`. With several
    masters it starts the cluster on etcd (`--cluster-init`) and the other master boards join it, one by one
    (etcd adds one member at a time)."""

    backend: str = "host-gw"
    masters: int = 1

    def __call__(self, cluster: Cluster, report: Report) -> None:
        master = cluster.board(naming.MASTER)
        floating = str(naming.api_address(cluster.lan.subnet))
        extra = ("--cluster-init", "--api-address", floating) if self.masters > 1 else ()
        report(f"enable-master {' '.join(extra)} on board {master.name} ({master.address}, backend "
               f"{self.backend})".replace("  ", " "))
        try:
            out = launch.enable_master(cluster.state_dir, master, cluster.engine.host, self.backend,
                                       cluster.kubeconfig, extra)
        finally:
            cluster.record_supervisors([master.name])
        report(next((line for line in out.splitlines() if line.startswith("The master")), _last_line(out)))
        others = naming.board_names(0, self.masters)[1:]
        if not others:
            return
        token = launch.master_token(cluster.state_dir, master)
        for name in others:
            report(f"enable-master --join on board {name}")
            try:
                out = launch.join_master(cluster.state_dir, cluster.board(name), master, token,
                                         cluster.engine.host, self.backend)
            finally:
                cluster.record_supervisors([name])
            report(next((line for line in out.splitlines() if line.startswith("The master")), _last_line(out)))


class WorkersLauncher:
    """The other boards run `enable-worker MASTER --token T --init none`, all at once."""

    def __call__(self, cluster: Cluster, report: Report) -> None:
        master = cluster.board(naming.MASTER)
        workers = [b for b in cluster.lan.boards if b.name.startswith("worker-")]
        if not workers:
            return
        report(f"enable-worker on {', '.join(b.name for b in workers)}")
        try:
            outs = launch.enable_workers(cluster.state_dir, workers, master, cluster.engine.host)
        finally:
            cluster.record_supervisors([b.name for b in workers])
        for out in outs:
            report(_last_line(out))


def default_launchers(backend: str = "host-gw", masters: int = 1) -> tuple[Launcher, ...]:
    """The launchers `pikube dev up` runs: the master boards, then the workers."""
    return (MasterLauncher(backend, masters), WorkersLauncher())


def require_root() -> None:
    if os.geteuid() != 0:
        raise DevError("pikube dev needs root to make network namespaces; run it with sudo.")


def _check_up(settings: DevSettings) -> Engine | None:
    """Every check `up` makes before changing anything; returns the external engine, if any."""
    require_root()
    if not 0 <= settings.workers <= naming.MAX_WORKERS:
        raise DevError(f"--workers must be between 0 and {naming.MAX_WORKERS}.")
    if settings.masters not in (1, 3, 5, 7):
        raise DevError(f"--masters must be 1, 3, 5 or 7, not {settings.masters}: an even number of etcd members "
                       "survives no more lost boards than one fewer.")
    if settings.masters > 1 and shutil.which("etcd") is None:
        raise DevError("several masters keep the cluster in etcd, which is not installed: "
                       "sudo apt-get install etcd-server")
    if state_file(settings.state_dir).exists():
        raise DevError(
            f"{settings.state_dir} already holds a dev cluster; "
            f"run `pikube dev down --state-dir {settings.state_dir}` first."
        )
    if settings.state_dir.exists() and not settings.state_dir.is_dir():
        raise DevError(f"{settings.state_dir} exists and is not a directory.")
    if settings.docker_host:
        return engine.connect(settings.docker_host)
    engine.check_can_start(settings.state_dir / ENGINE_DIR)
    try:
        images.find_busybox(settings.busybox)
    except images.ImageError as exc:
        raise DevError(str(exc)) from exc
    return None


def up(settings: DevSettings, launchers: Sequence[Launcher] = (), report: Report = _quiet) -> Cluster:
    """Bring up a dev cluster in `settings.state_dir`; on failure undo everything and re-raise."""
    state_dir = settings.state_dir.absolute()
    settings = dataclasses.replace(settings, state_dir=state_dir)
    external = _check_up(settings)
    state_dir.mkdir(parents=True, exist_ok=True)
    engine_root = state_dir / ENGINE_DIR
    record = (
        EngineRecord(host=external.host)
        if external
        else EngineRecord(host=f"unix://{engine.socket_path(engine_root)}", root=str(engine_root))
    )
    first = State(run=naming.new_run_id(), phase=Phase.STARTING, workers=settings.workers, engine=record)
    claim(state_dir, first)
    cluster = Cluster(state_dir, first)
    try:
        _bring_up(cluster, settings, external, launchers, report)
    except BaseException:
        report("dev up failed; removing what it made")
        down(state_dir)
        raise
    return cluster


def _bring_up(
    cluster: Cluster,
    settings: DevSettings,
    external: Engine | None,
    launchers: Sequence[Launcher],
    report: Report,
) -> None:
    run = cluster.state.run
    if external is None:
        report(f"starting a private Docker engine in {settings.state_dir / ENGINE_DIR}")
        started = engine.start(settings.state_dir / ENGINE_DIR)
        cluster.update(engine=EngineRecord(host=started.host, root=str(started.root), pid=started.pid))
    else:
        report(f"using the Docker engine at {external.host}")
    client = cluster.engine.client()
    try:
        made = images.ensure(client.api, settings.busybox)
    except images.ImageError as exc:
        raise DevError(str(exc)) from exc
    finally:
        client.close()
    report(f"images: made {', '.join(made)}" if made else "images: already present")
    lan = boards.create(naming.board_names(settings.workers, settings.masters), run=run)
    cluster.update(lan=lan)
    report(f"boards: {len(lan.boards)} on {lan.subnet} (bridge {lan.bridge})")
    for launcher in launchers:
        launcher(cluster, report)
    if settings.masters > 1 and launchers:
        _wait_floating(cluster, report)
    write_env(cluster)
    cluster.update(phase=Phase.UP)


def _wait_floating(cluster: Cluster, report: Report, timeout: float = 90.0) -> None:
    """kubectl's kubeconfig names the masters' floating address: up once a board announces it."""
    from core.kubeconfig import read_kubeconfig
    from pikube.bootstrap import api

    cfg = read_kubeconfig(cluster.kubeconfig)
    if not api.wait_for(lambda: api.healthy(cfg), timeout, interval=0.5):
        raise DevError(f"the masters' floating address {cfg.server} did not answer within {timeout:.0f} s.")
    report(f"the masters answer at their floating address {cfg.server}")


def env_lines(cluster: Cluster) -> list[str]:
    """The `export` lines of `DIR/env`; KUBECONFIG only once a master has written it."""
    lines = [f"# pikube dev cluster {cluster.state.run}: source this file to use it"]
    if cluster.state.engine is not None:
        lines.append(f"export DOCKER_HOST={shlex.quote(cluster.state.engine.host)}")
    if cluster.kubeconfig.exists():
        lines.append(f"export KUBECONFIG={shlex.quote(str(cluster.kubeconfig))}")
    return lines


def write_env(cluster: Cluster) -> None:
    (cluster.state_dir / ENV_FILE).write_text("\n".join(env_lines(cluster)) + "\n")


def open_cluster(state_dir: Path) -> Cluster:
    state_dir = state_dir.absolute()
    return Cluster(state_dir, load(state_dir))


def _stop_processes(cluster: Cluster) -> None:
    # A recorded pid counts only while it still runs the recorded command (pids get reused).
    pids = [p.pid for p in cluster.state.processes if processes.cmdline(p.pid) == list(p.argv)]
    processes.terminate(pids)


def _remove_containers(cluster: Cluster, report: Report) -> None:
    if cluster.state.engine is None:
        return
    label = f"{naming.RUN_LABEL}={cluster.state.run}"
    try:
        client = cluster.engine.client(timeout=30)
        try:
            for container in client.containers.list(all=True, filters={"label": label}):
                container.remove(force=True)
        finally:
            client.close()
    except Exception as exc:
        if cluster.state.engine.root is None:
            report(f"could not remove the run's containers from {cluster.state.engine.host}: {exc}")


def down(state_dir: Path, report: Report = _quiet) -> bool:
    """Remove everything the run in `state_dir` made, then its state files.

    Idempotent: returns False when the directory holds no run (any more). The
    directory itself stays; a missing directory is a DevError (likely a typo).
    """
    require_root()
    if state_dir.is_dir() and not state_file(state_dir).exists():
        return False
    cluster = open_cluster(state_dir)
    cluster.update(phase=Phase.STOPPING)
    if cluster.state.lan is not None:
        for problem in launch.reset_boards(cluster.state_dir, cluster.state.lan.boards):
            report(problem)
    _stop_processes(cluster)
    _remove_containers(cluster, report)
    boards.teardown(cluster.state.run)
    report(f"boards of run {cluster.state.run} removed")
    if cluster.state.engine is not None and cluster.state.engine.root is not None:
        engine.stop(cluster.engine)
        engine.remove_files(Path(cluster.state.engine.root))
        report("private Docker engine stopped and its data removed")
    for name in (ENV_FILE, KUBECONFIG_FILE):
        with contextlib.suppress(FileNotFoundError):
            (cluster.state_dir / name).unlink()
    shutil.rmtree(cluster.state_dir / LOG_DIR, ignore_errors=True)
    shutil.rmtree(cluster.state_dir / launch.BOARDS_DIR, ignore_errors=True)
    state_file(cluster.state_dir).unlink()
    return True


def exec_in_board(state_dir: Path, board_name: str, argv: Sequence[str]) -> int:
    """Run `argv` inside a board with the caller's terminal; return its exit status."""
    cluster = open_cluster(state_dir)
    board = cluster.board(board_name)
    if not argv:
        raise DevError("give the command to run after `--`, e.g. `-- ip addr`.")
    require_root()
    code = subprocess.run(boards.board_command(board, argv), check=False).returncode
    return 128 - code if code < 0 else code


def leftovers(state: State) -> list[str]:
    """What the run recorded in `state` still has on this machine (for checks after `down`)."""
    found = boards.leftovers(state.run)
    if state.engine is not None and state.engine.root is not None:
        root = Path(state.engine.root)
        found += [f"process {pid}" for pid in engine.leftover_processes(root)]
        found += [f"mount {m}" for m in engine.leftover_mounts(root)]
    found += [f"process {p.pid}" for p in state.processes if processes.cmdline(p.pid) == list(p.argv)]
    return found
