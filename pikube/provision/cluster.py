"""`pikube provision`'s work: from boards reachable over SSH to a cluster in the laptop's kubeconfig.

Every board at once: log in (host key checked), check sudo, copy the bundle's archive
of wheels for the board's architecture, install pikube into its venv offline. The master then
runs `enable-master` and hands its join token and admin kubeconfig over; each
worker runs `enable-worker` as soon as its own install is done and the master is
up. A board that fails gets one sentence and the others carry on (a worker
without a master cannot join, and says so). Running it again changes nothing on
boards that are already set up (enable-* say "Nothing changed").

`reset` undoes it: `pikube reset --yes`, then pikube's venv, links and uploads.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

from pikube.provision import bundle, kubeconfig
from pikube.provision.ssh import ProvisionError, Session, SshOptions, Target, connect

Report = Callable[[str], None]
PYTHON_VERSION = "3.11"  # the bundle's compiled wheels are cp311 (bookworm's python3)
LINKED = ("pikube", "enable-master", "enable-worker")


@dataclass(frozen=True)
class Paths:
    """Where pikube goes on a board (the Ansible role's defaults)."""

    venv: str = "/opt/pikube/venv"
    config_dir: str = "/etc/pikube"
    python: str = "/usr/bin/python3"
    upload: str = ".cache/pikube/bundle"  # under the login user's home

    @property
    def pikube(self) -> str:
        return f"{self.venv}/bin/pikube"


@dataclass(frozen=True)
class Settings:
    master: Target
    workers: tuple[Target, ...]
    ssh: SshOptions
    bundle: Path
    kubeconfig: Path
    context: str = "pikube"
    use_context: bool = True
    backend: str = "host-gw"
    docker_host: str = ""
    paths: Paths = Paths()
    timeout: float = 300.0


@dataclass
class BoardResult:
    target: Target
    role: str
    ok: bool = False
    result: str = ""
    seconds: float = 0.0


def install(session: Session, version: str, wheels_dir: Path, paths: Paths, say: Report) -> bool:
    """pikube `version` in the board's venv, from the bundle's archive for its arch; False when it was there."""
    code, out, _err = session.run([paths.pikube, "--version"], root=False, timeout=60)
    if code == 0 and out.split()[-1:] == [version]:
        say(f"pikube {version} is installed")
        return False
    facts = session.check(f"uname -m; {paths.python} -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])'; "
                          "echo $HOME", "looking at the board", root=False).split()
    if len(facts) != 3:
        raise ProvisionError(f"{session.target.host} has no {paths.python}: install python3 (and python3-venv)")
    arch, python, home = facts
    if arch not in bundle.ARCHES:
        raise ProvisionError(f"{session.target.host} runs a {arch} system; pikube's wheels are for "
                             f"{' and '.join(bundle.ARCHES)}: install a 64-bit OS")
    if python != PYTHON_VERSION:
        raise ProvisionError(f"{session.target.host} has Python {python}; the bundle's wheels are for "
                             f"{PYTHON_VERSION} (Debian bookworm / Raspberry Pi OS bookworm)")
    archive = wheels_dir / bundle.archive_name(arch)
    remote = f"{home}/{paths.upload}"
    sent = session.put([archive], remote)
    say(f"{'copied' if sent else 'already has'} the {arch} wheels; installing pikube {version}")
    session.check(["tar", "-xf", f"{remote}/{archive.name}", "-C", remote], "unpacking the wheels", root=False)
    session.check(f"test -x {paths.venv}/bin/pip || {paths.python} -m venv {paths.venv}", "making pikube's venv")
    session.check([f"{paths.venv}/bin/pip", "install", "-q", "--disable-pip-version-check", "--no-index",
                   "--find-links", remote, f"pikube=={version}"], "installing pikube", timeout=600)
    session.check("; ".join(f"ln -sfn {paths.venv}/bin/{c} /usr/local/bin/{c}" for c in LINKED),
                  "linking pikube's commands")
    return True


def _enable_flags(settings: Settings) -> list[str]:
    return ["--docker-host", settings.docker_host] if settings.docker_host else []


def _first_line(out: str, prefix: tuple[str, ...]) -> str:
    return next((line.strip() for line in out.splitlines() if line.startswith(prefix)), "")


def provision(settings: Settings, report: Report) -> list[BoardResult]:
    """Set every board up; one result per board (the master first), whatever failed."""
    version = bundle.pikube_version(settings.bundle)
    master_ready: Future[tuple[str, str]] = Future()

    def board(target: Target, role: str) -> BoardResult:
        res = BoardResult(target, role)
        started = time.monotonic()

        def say(line: str) -> None:
            report(f"{target.host}: {line}")

        try:
            session = connect(target, settings.ssh, say)
            try:
                session.check_sudo()
                install(session, version, settings.bundle, settings.paths, say)
                if role == "master":
                    res.result = _master(session, settings, say, master_ready)
                else:
                    try:
                        server, token = master_ready.result()
                    except Exception:
                        raise ProvisionError("not joined: the master was not set up") from None
                    say(f"enable-worker {server}")
                    out = session.check([settings.paths.pikube, "enable-worker", server, "--token", token,
                                         *_enable_flags(settings)], "enable-worker", timeout=settings.timeout)
                    res.result = ("already joined; nothing changed" if "Nothing changed" in out
                                  else "joined, Ready")
            finally:
                session.close()
            res.ok = True
        except ProvisionError as exc:
            res.result = str(exc)
        except Exception as exc:  # one board's surprise must not stop the others
            res.result = f"{target.host}: {type(exc).__name__}: {exc}"
        finally:
            if role == "master" and not master_ready.done():
                master_ready.set_exception(ProvisionError("the master failed"))
            res.seconds = time.monotonic() - started
        return res

    boards = [(settings.master, "master"), *((w, "worker") for w in settings.workers)]
    with ThreadPoolExecutor(max_workers=len(boards)) as pool:
        results = list(pool.map(lambda b: board(*b), boards))
    return results


def _master(session: Session, settings: Settings, say: Report, ready: Future[tuple[str, str]]) -> str:
    say("enable-master")
    out = session.check([settings.paths.pikube, "enable-master", "--backend", settings.backend,
                         *_enable_flags(settings)], "enable-master", timeout=settings.timeout)
    cfg = settings.paths.config_dir
    token = session.check(["cat", f"{cfg}/join-token"], "reading the join token").strip()
    admin = session.check(["cat", f"{cfg}/admin.kubeconfig"], "reading the admin kubeconfig")
    try:
        server = str(yaml.safe_load(admin)["clusters"][0]["cluster"]["server"])
    except (yaml.YAMLError, KeyError, IndexError, TypeError):
        raise ProvisionError(f"{cfg}/admin.kubeconfig on {session.target.host} names no server") from None
    ready.set_result((server, token))
    try:
        kubeconfig.merge_into(settings.kubeconfig, admin, settings.context, settings.use_context)
    except kubeconfig.KubeconfigError as exc:
        raise ProvisionError(f"the master is up, but {exc}") from None
    say(f"kubeconfig: context {settings.context} in {settings.kubeconfig}")
    if "Nothing changed" in out:
        return f"already the master ({server}); nothing changed"
    return f"Ready at {server}"


def reset(targets: Sequence[Target], ssh: SshOptions, report: Report, paths: Paths = Paths()) -> list[BoardResult]:
    """`pikube reset --yes` and pikube's software removed, on every board at once."""
    def one(target: Target) -> BoardResult:
        res = BoardResult(target, "reset")
        started = time.monotonic()
        try:
            session = connect(target, ssh, lambda line: report(f"{target.host}: {line}"))
            try:
                session.check_sudo()
                code, _out, _err = session.run(
                    f"test -x {paths.pikube} && {{ test -e {paths.config_dir}/node.json || "
                    f"test -e {paths.config_dir}/units; }}", timeout=30)
                if code == 0:
                    session.check([paths.pikube, "reset", "--yes"], "pikube reset", timeout=300)
                    res.result = "reset; pikube removed"
                else:
                    res.result = "nothing was set up; pikube removed"
                links = " ".join(f"/usr/local/bin/{c}" for c in LINKED)
                session.check(f"rm -rf {paths.venv} {links}", "removing pikube")
                session.check(f'rm -rf "$HOME/{paths.upload}"', "removing the uploaded wheels", root=False)
            finally:
                session.close()
            res.ok = True
        except ProvisionError as exc:
            res.result = str(exc)
        res.seconds = time.monotonic() - started
        return res

    with ThreadPoolExecutor(max_workers=max(1, len(targets))) as pool:
        return list(pool.map(one, targets))
