"""The first-boot driver: decide whether pikube.yaml needs applying, run the steps in order, record the result.

It runs at every boot (pikube-firstboot.service) and is a no-op unless there
is something to do, which it decides from `/var/lib/pikube/firstboot.json`:

- no record yet: this is the first boot. The root file system is grown to the
  card whatever pikube.yaml says (that is the image's business, not the
  user's configuration); without a pikube.yaml nothing else happens.
- a pikube.yaml whose sha256 is the one last applied (as read, or as left on
  the card afterwards) and the run succeeded: nothing to do, nothing written.
- otherwise (a new or edited file, or a run that failed or was cut short):
  parse it; a malformed file is reported sentence by sentence in the journal
  and the record, and nothing is applied (the board boots as before, SSH
  included, and `pikube doctor` says what is wrong). A valid one is applied
  step by step; every step is idempotent, so applying again is safe. A step
  that fails is recorded and the next ones still run (a Wi-Fi problem must not
  keep a wired board out of the cluster), and the next boot tries again.

Applied to a tree that is not the running system (`pikube firstboot --root`),
the role step and growfs are skipped, the card keeps its secrets, and the
record names no file, so the board's own first boot applies it all again.

The steps before the role are quick and local, and pikube-firstboot.service is
ordered before sshd and the network: `ready()` (systemd's READY=1) is called
before the role step, which may wait minutes for a master. The record is
written with result "running" at that point, so a power cut there is visible
and the next boot tries again.

Afterwards the secrets that were applied (the Wi-Fi passphrase once Wi-Fi is
set, the join token once the board joined) are removed from the card's copy,
which is rewritten in canonical form; a file holding no secret is left as the
user wrote it. `/etc/pikube/config.yaml` gets the same keys without secrets,
for enable-master, enable-worker and pikube agent.
"""

from __future__ import annotations

import hashlib
import os
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from core import boardconfig, firstboot
from core.boardconfig import BoardConfig, ConfigError
from core.fsutil import fsync_dir, write_atomic
from core.kube import timefmt
from pikube.firstboot import accounts, growfs, network, system
from pikube.firstboot.host import CommandFailed, Host, write_file
from pikube.firstboot.role import RoleStep
from pikube.firstboot.step import Outcome, Step, StepError, changed

BOOT_CONFIG = "/boot/firmware/pikube.yaml"
ETC_CONFIG = "/etc/pikube/config.yaml"
PREFIX = "pikube firstboot"


def write_config(host: Host, cfg: BoardConfig) -> Outcome:
    """/etc/pikube/config.yaml: the same keys, without secrets, for the commands run later by hand."""
    did = write_file(host.path(ETC_CONFIG), boardconfig.to_yaml(boardconfig.without_secrets(cfg)))
    return changed(did, f"written to {ETC_CONFIG} (without secrets)", f"{ETC_CONFIG} already holds it")


def default_steps(role: Step | None = None) -> list[tuple[str, Step]]:
    """The steps in the order they run; `role` replaces the role step (tests give it a fake probe)."""
    return [
        ("growfs", growfs.growfs),
        ("hostname", system.hostname),
        ("timezone", system.timezone),
        ("user", accounts.user),
        ("ssh", accounts.sshd),
        ("wifi", network.wifi),
        ("network", network.ethernet),
        ("config", write_config),
        ("role", role or RoleStep()),
    ]


def write_fat(path: Path, text: str) -> None:
    """Replace a file on the FAT boot partition: a temporary file renamed over it, both fsynced.

    No chmod or chown (vfat refuses them; its mount options decide modes).
    """
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class FirstBoot:
    """One run of first boot on `host` (see the module docstring)."""

    host: Host
    steps: Sequence[tuple[str, Step]] = field(default_factory=default_steps)
    # Called once, before the role step or at the end: the local configuration is in place.
    ready: Callable[[], None] = lambda: None
    boot_config: str = BOOT_CONFIG
    state: str = str(firstboot.STATE_PATH)
    _ready_sent: bool = False

    def say(self, line: str) -> None:
        self.host.say(f"{PREFIX}: {line}")

    def _ready(self) -> None:
        if not self._ready_sent:
            self._ready_sent = True
            self.ready()

    def _save(self, rec: firstboot.Record) -> None:
        write_atomic(self.host.path(self.state), rec.to_json(), 0o644, make_parents=True)

    def run(self) -> int:
        """Apply pikube.yaml if needed; 0 unless a step failed (a malformed file is not a failure of the boot)."""
        try:
            return self._run()
        finally:
            self._ready()

    def _run(self) -> int:
        prev = firstboot.load(self.host.path(self.state))
        fat = self.host.path(self.boot_config)
        try:
            raw: bytes | None = fat.read_bytes()
        except FileNotFoundError:
            raw = None
        if raw is None:
            if prev is not None:
                self.say(f"no {self.boot_config}; nothing to do")
                return 0
            self.say(f"no {self.boot_config}: only growing the root file system")
            return self._apply(None, "", prev, only=("growfs",))
        sha = _sha(raw)
        if prev is not None and prev.result == firstboot.APPLIED and sha in (prev.config_sha256,
                                                                              prev.written_sha256):
            self.say(f"{self.boot_config} was applied at {prev.finished or prev.started}; nothing to do")
            return 0
        if prev is not None and prev.result == firstboot.INVALID and sha == prev.config_sha256:
            self._report_invalid(list(prev.problems))
            return 0
        secrets_removed = prev is not None and prev.result != firstboot.INVALID and prev.result != firstboot.ABSENT
        try:
            text = raw.decode("utf-8")
            cfg = boardconfig.parse_text(text, source=self.boot_config, secrets_removed=secrets_removed)
        except UnicodeDecodeError:
            return self._invalid(sha, prev, [f"{self.boot_config}: the file is not UTF-8 text."])
        except ConfigError as exc:
            return self._invalid(sha, prev, exc.problems)
        self.say(f"applying {self.boot_config} (sha256 {sha[:12]})")
        return self._apply(cfg, sha, prev)

    def _report_invalid(self, problems: list[str]) -> None:
        self.say(f"{self.boot_config} is not valid; nothing was applied. Fix it and reboot:")
        for problem in problems:
            self.say(f"  {problem}")

    def _invalid(self, sha: str, prev: firstboot.Record | None, problems: list[str]) -> int:
        self._report_invalid(problems)
        started = timefmt.rfc3339()
        grow = dict(self.steps).get("growfs")
        steps = (self._growfs(grow, prev),) if grow is not None else ()  # the first boot still grows the card
        self._save(firstboot.Record(result=firstboot.INVALID, source=self.boot_config, config_sha256=sha,
                                    started=started, finished=timefmt.rfc3339(), problems=tuple(problems),
                                    steps=steps))
        return 0

    def _step(self, name: str, step: Step, cfg: BoardConfig) -> firstboot.StepRecord:
        started, t0 = timefmt.rfc3339(), time.monotonic()
        try:
            out = step(self.host, cfg)
        except (StepError, CommandFailed) as exc:
            self.say(f"{name}: FAILED: {exc}")
            return firstboot.StepRecord(name, firstboot.STEP_FAILED, error=str(exc), time=started,
                                        seconds=round(time.monotonic() - t0, 3))
        except Exception as exc:  # a bug or the unexpected (a full disk): recorded, the next steps still run
            self.say(f"{name}: FAILED: {type(exc).__name__}: {exc}")
            self.host.say(traceback.format_exc().rstrip())
            return firstboot.StepRecord(name, firstboot.STEP_FAILED, error=f"{type(exc).__name__}: {exc}",
                                        time=started, seconds=round(time.monotonic() - t0, 3))
        self.say(f"{name}: {out.message}" + ("" if out.status == firstboot.DONE else f" ({out.status})"))
        return firstboot.StepRecord(name, out.status, message=out.message, time=started,
                                    seconds=round(time.monotonic() - t0, 3))

    def _growfs(self, step: Step, prev: firstboot.Record | None) -> firstboot.StepRecord:
        """Grow the card once: a previous run's success is carried forward, a failure is tried again."""
        before = next((s for s in prev.steps if s.name == "growfs"), None) if prev is not None else None
        if before is not None and before.status in (firstboot.DONE, firstboot.UNCHANGED):
            return before
        return self._step("growfs", step, BoardConfig())

    def _apply(self, cfg: BoardConfig | None, sha: str, prev: firstboot.Record | None,
               only: tuple[str, ...] = ()) -> int:
        started = timefmt.rfc3339()
        if not self.host.live:
            sha = ""  # applied to a tree, not to a booted board: the board's own first boot applies it again
        base = firstboot.Record(result=firstboot.RUNNING, source=self.boot_config, config_sha256=sha,
                                started=started)
        done: list[firstboot.StepRecord] = []
        for name, step in self.steps:
            if only and name not in only:
                continue
            if name == "growfs":
                done.append(self._growfs(step, prev))
                continue
            if name == "role":
                self._ready()
                if cfg is not None and cfg.role in ("master", "worker"):
                    self._save(replace(base, steps=tuple(done)))
            done.append(self._step(name, step, cfg or BoardConfig()))
        status = {s.name: s.status for s in done}
        written = sha
        if cfg is not None and self.host.live:
            written = self._strip_secrets(cfg, status) or sha
        failed = [s.name for s in done if s.status == firstboot.STEP_FAILED]
        result = firstboot.FAILED if failed else (firstboot.APPLIED if cfg is not None else firstboot.ABSENT)
        self._save(replace(base, result=result, written_sha256=written, finished=timefmt.rfc3339(),
                           steps=tuple(done)))
        changed_count = sum(s.status == firstboot.DONE for s in done)
        summary = f"{len(done)} steps, {changed_count} changed"
        if failed:
            self.say(f"{summary}, failed: {', '.join(failed)}; the next boot tries again "
                     f"(details in {self.state})")
            return 1
        self.say(f"{summary}; recorded in {self.state}")
        return 0

    def _strip_secrets(self, cfg: BoardConfig, status: dict[str, str]) -> str | None:
        """Rewrite the card's pikube.yaml without the secrets applied; the new sha256, or None if unchanged."""
        ok = (firstboot.DONE, firstboot.UNCHANGED)
        stripped = cfg
        if cfg.token is not None and status.get("role") in ok:
            stripped = replace(stripped, token=None)
        if cfg.wifi is not None and cfg.wifi.passphrase is not None and status.get("wifi") in ok:
            stripped = replace(stripped, wifi=replace(cfg.wifi, passphrase=None))
        if stripped == cfg:
            return None
        text = boardconfig.to_yaml(stripped)
        try:
            write_fat(self.host.path(self.boot_config), text)
        except OSError as exc:
            self.say(f"could not remove the secrets from {self.boot_config}: {exc}")
            return None
        self.say(f"removed the applied secrets from {self.boot_config}")
        return _sha(text.encode())
