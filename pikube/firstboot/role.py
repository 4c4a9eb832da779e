"""The board's role: run `enable-master`, or `enable-worker MASTER` once the master answers.

Boards of a cluster are usually switched on together, and the master takes a
minute or two to come up; so a worker waits for its master to answer on the
API port, retrying with a doubling delay (capped at a minute) and a log line
per try, for as long as it takes. Once the master answers, enable-worker runs;
should it fail (the master still starting, a token it refuses), it is tried a
few more times and then the step fails with its last error line. The join
token goes to enable-worker in its environment (`PIKUBE_TOKEN`), not on its
command line, where any user could read it.

A board already set up with the same role (and master) per
/etc/pikube/node.json is left alone, so applying a changed pikube.yaml again,
or one whose token first boot has removed, does not run either command again.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass

from core import jointoken
from core.boardconfig import BoardConfig
from pikube.bootstrap import record
from pikube.bootstrap.errors import BootstrapError
from pikube.bootstrap.layout import CONFIG_DIR, Layout
from pikube.firstboot.host import Completed, Host
from pikube.firstboot.step import Outcome, StepError, changed, skipped

# enable-worker reads the token from here when --token is not given (pikube/cli/boardfile.py).
ENV_TOKEN = "PIKUBE_TOKEN"
WAIT_ONLINE = ("/lib/systemd/systemd-networkd-wait-online", "/usr/lib/systemd/systemd-networkd-wait-online")

NOT_LIVE = "not the running system: the role is taken when the board itself boots"
# (host, port) → None when something accepts a connection there, else why not.
Probe = Callable[[str, int], str | None]


def tcp_probe(host: str, port: int) -> str | None:
    try:
        with socket.create_connection((host, port), timeout=5.0):
            return None
    except OSError as exc:
        return exc.strerror or str(exc) or type(exc).__name__


def _last_line(out: Completed) -> str:
    text = out.stderr or out.stdout
    return next((ln.strip() for ln in reversed(text.splitlines()) if ln.strip()), f"exit status {out.returncode}")


@dataclass
class RoleStep:
    """The role step with its waiting policy (tests shrink the delays and fake the probe)."""

    probe: Probe = tcp_probe
    first_delay: float = 2.0
    max_delay: float = 60.0
    # Runs of enable-master, or of enable-worker once the master answered, before the step fails.
    attempts: int = 4

    def __call__(self, host: Host, cfg: BoardConfig) -> Outcome:
        if cfg.role in (None, "none"):
            return skipped("no role given; run enable-master or enable-worker by hand")
        try:
            rec = record.load(Layout(config_dir=host.path(str(CONFIG_DIR))).record)
        except BootstrapError as exc:
            raise StepError(str(exc)) from None
        if cfg.role == "master":
            if rec is not None and rec.role is record.Role.MASTER:
                return changed(False, "", f"already the master (node {rec.node_name})")
            if not host.live:
                return skipped(NOT_LIVE)
            return self._master(host, cfg)
        assert cfg.master is not None  # a worker's master is required by the schema
        m_host, m_port = jointoken.split_server(cfg.master)
        server = f"https://{m_host}:{m_port}" if ":" not in m_host else f"https://[{m_host}]:{m_port}"
        if rec is not None and rec.role is record.Role.WORKER and rec.server == server:
            return changed(False, "", f"already a worker of {server} (node {rec.node_name})")
        if cfg.token is None:
            raise StepError("pikube.yaml has no join token any more (first boot removes it once used); "
                            "add token: again to join this master")
        if not host.live:
            return skipped(NOT_LIVE)
        return self._worker(host, cfg, m_host, m_port, cfg.token)

    def _prepare(self, host: Host) -> None:
        wait = next((w for w in WAIT_ONLINE if host.exists(w)), None)
        if wait is not None:
            host.run([wait, "--any", "--timeout=120"], check=False)
        host.run(["systemctl", "start", "docker.service"], check=False)

    def _node_flags(self, cfg: BoardConfig) -> list[str]:
        return ["--node-name", cfg.hostname] if cfg.hostname else []

    def _master(self, host: Host, cfg: BoardConfig) -> Outcome:
        self._prepare(host)
        argv = [*host.pikube, "enable-master", *self._node_flags(cfg)]
        delay = self.first_delay
        for attempt in range(1, self.attempts + 1):
            out = host.run(argv, check=False, echo=True)
            if out.returncode == 0:
                return changed(True, "enable-master done: this board is the master", "")
            if attempt == self.attempts:
                break
            host.say(f"pikube firstboot: role: enable-master failed ({_last_line(out)}); "
                     f"try {attempt + 1} in {delay:.0f} s")
            host.sleep(delay)
            delay = min(delay * 2, self.max_delay)
        raise StepError(f"enable-master failed {self.attempts} times; the last error: {_last_line(out)}")

    def _worker(self, host: Host, cfg: BoardConfig, m_host: str, m_port: int, token: str) -> Outcome:
        self._prepare(host)
        argv = [*host.pikube, "enable-worker", cfg.master or "", *self._node_flags(cfg)]
        delay, tries, runs = self.first_delay, 0, 0
        while True:
            tries += 1
            why = self.probe(m_host, m_port)
            if why is not None:
                host.say(f"pikube firstboot: role: try {tries}: the master at {m_host}:{m_port} does not answer "
                         f"yet ({why}); next try in {delay:.0f} s")
                host.sleep(delay)
                delay = min(delay * 2, self.max_delay)
                continue
            runs += 1
            out = host.run(argv, check=False, env={ENV_TOKEN: token}, echo=True)
            if out.returncode == 0:
                return changed(True, f"enable-worker done: joined the master at {m_host}:{m_port}", "")
            if runs >= self.attempts:
                raise StepError(f"enable-worker failed {runs} times; the last error: {_last_line(out)}")
            host.say(f"pikube firstboot: role: try {tries}: enable-worker failed ({_last_line(out)}); "
                     f"next try in {delay:.0f} s")
            host.sleep(delay)
            delay = min(delay * 2, self.max_delay)
