"""One SSH session to a board for `pikube provision`: connect, verify its host key, run commands as root, copy files.

paramiko is the client (the project pins it; no `ssh` binary or agent is assumed).
Every way a board can refuse becomes one `ProvisionError` sentence that names
the board: unreachable, an unknown or changed host key, a refused login key, a
sudo that wants a password or refuses it. Host keys are checked against a
known_hosts file; a board not in it is refused unless `accept_new` is set, in which
case its key's fingerprint is reported and appended to the file (like OpenSSH's
`StrictHostKeyChecking=accept-new`).
"""

from __future__ import annotations

import base64
import hashlib
import shlex
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Report = Callable[[str], None]


class ProvisionError(Exception):
    """One sentence about one board, for the user."""


@dataclass(frozen=True)
class Target:
    """`[user@]host[:port]` as given on the command line."""

    user: str
    host: str
    port: int = 22

    @classmethod
    def parse(cls, text: str, default_user: str) -> Target:
        user, _, rest = text.rpartition("@")
        host, port = rest, 22
        if rest.startswith("["):  # [v6]:port
            host, _, tail = rest[1:].partition("]")
            if tail.startswith(":"):
                port = int(tail[1:])
        elif rest.count(":") == 1:
            host, _, port_text = rest.partition(":")
            if not port_text.isdigit():
                raise ValueError(f"{text!r}: the port after ':' must be a number")
            port = int(port_text)
        if not host:
            raise ValueError(f"{text!r} names no host; write USER@HOST")
        return cls(user=user or default_user, host=host, port=port)

    @property
    def known_hosts_name(self) -> str:
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"

    def __str__(self) -> str:
        return f"{self.user}@{self.host}" + ("" if self.port == 22 else f":{self.port}")


def fingerprint(key: Any) -> str:
    """OpenSSH's form: `ED25519 SHA256:...`."""
    digest = base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")
    kind = key.get_name().replace("ssh-", "").upper()
    return f"{kind} SHA256:{digest}"


@dataclass(frozen=True)
class SshOptions:
    known_hosts: Path
    accept_new: bool = False
    key_file: Path | None = None
    connect_timeout: float = 10.0
    # None: sudo must not ask (sudo -n); a string is fed to `sudo -S`.
    sudo_password: str | None = None
    use_sudo: bool = True


_KNOWN_HOSTS_LOCK = threading.Lock()


class _Policy:
    """paramiko's missing-host-key hook: refuse, or accept-new (report and remember)."""

    def __init__(self, target: Target, options: SshOptions, report: Report) -> None:
        self.target = target
        self.options = options
        self.report = report

    def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
        if not self.options.accept_new:
            raise ProvisionError(
                f"{self.target.host} is not in {self.options.known_hosts}; its host key is {fingerprint(key)}. "
                "Check that fingerprint on the board (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) and "
                "run again with --accept-new-host-keys")
        with _KNOWN_HOSTS_LOCK:
            self.options.known_hosts.parent.mkdir(parents=True, exist_ok=True)
            with open(self.options.known_hosts, "a") as f:
                f.write(f"{self.target.known_hosts_name} {key.get_name()} {key.get_base64()}\n")
        self.report(f"new host key {fingerprint(key)}, added to {self.options.known_hosts}")


class Session:
    """A logged-in SSH connection to one board."""

    def __init__(self, target: Target, client: Any, options: SshOptions) -> None:
        self.target = target
        self.client = client
        self.options = options

    def close(self) -> None:
        self.client.close()

    def run(self, argv: Sequence[str] | str, root: bool = True, timeout: float = 300.0) -> tuple[int, str, str]:
        """Run a command (as root through sudo unless `root` is False); its exit status, stdout and stderr."""
        command = argv if isinstance(argv, str) else shlex.join(argv)
        stdin_data = None
        if root and self.options.use_sudo:
            if self.options.sudo_password is None:
                command = f"sudo -n -- sh -c {shlex.quote(command)}"
            else:
                command = f"sudo -S -p '' -- sh -c {shlex.quote(command)}"
                stdin_data = self.options.sudo_password + "\n"
        stdin, stdout, stderr = self.client.exec_command(command, timeout=timeout)
        if stdin_data is not None:
            stdin.write(stdin_data)
            stdin.flush()
        stdin.channel.shutdown_write()
        out = stdout.read().decode(errors="replace")
        err = stderr.read().decode(errors="replace")
        return stdout.channel.recv_exit_status(), out, err

    def check(self, argv: Sequence[str] | str, what: str, timeout: float = 300.0, root: bool = True) -> str:
        """stdout of a command that must succeed; ProvisionError with its last line otherwise."""
        code, out, err = self.run(argv, root=root, timeout=timeout)
        if code != 0:
            lines = [line for line in (err.strip() or out.strip() or f"exit status {code}").splitlines() if line]
            raise ProvisionError(f"{what} failed on {self.target.host}: {lines[-1].strip().rstrip('.')}")
        return out

    def check_sudo(self) -> None:
        if not self.options.use_sudo:
            return
        code, _out, err = self.run("true", timeout=30)
        if code == 0:
            return
        why = err.strip().splitlines()[-1] if err.strip() else f"exit status {code}"
        if self.options.sudo_password is None:
            raise ProvisionError(
                f"sudo on {self.target.host} did not let {self.target.user} run commands as root without a password "
                f"({why}): give the password with --ask-sudo-password, or allow {self.target.user} sudo with NOPASSWD")
        raise ProvisionError(f"sudo on {self.target.host} refused {self.target.user} with that password ({why})")

    def put(self, files: Sequence[Path], remote_dir: str, report: Report | None = None) -> int:
        """Copy `files` into `remote_dir` (as the login user) unless the same size is there; how many were sent."""
        self.check(["mkdir", "-p", remote_dir], "making the upload directory", root=False)
        sent = 0
        sftp = self.client.open_sftp()
        try:
            present = {a.filename: a.st_size for a in sftp.listdir_attr(remote_dir)}
            for path in files:
                if present.get(path.name) == path.stat().st_size:
                    continue
                sftp.put(str(path), f"{remote_dir}/{path.name}.part")
                sftp.posix_rename(f"{remote_dir}/{path.name}.part", f"{remote_dir}/{path.name}")
                sent += 1
        finally:
            sftp.close()
        return sent


def connect(target: Target, options: SshOptions, report: Report) -> Session:
    """A logged-in session; ProvisionError (one sentence) when the board cannot be reached or refuses."""
    import paramiko

    client = paramiko.SSHClient()
    if options.known_hosts.exists():
        client.load_host_keys(str(options.known_hosts))
    client.set_missing_host_key_policy(_Policy(target, options, report))
    try:
        client.connect(target.host, port=target.port, username=target.user,
                       key_filename=str(options.key_file) if options.key_file else None,
                       look_for_keys=options.key_file is None, allow_agent=options.key_file is None,
                       timeout=options.connect_timeout, banner_timeout=options.connect_timeout,
                       auth_timeout=options.connect_timeout)
    except ProvisionError:
        client.close()
        raise
    except paramiko.BadHostKeyException as exc:
        client.close()
        raise ProvisionError(
            f"the host key of {target.host} does not match {options.known_hosts}: it offered "
            f"{fingerprint(exc.key)}, the file has {fingerprint(exc.expected_key)}. If the board was reinstalled, "
            f"remove the old key with `ssh-keygen -R {target.known_hosts_name}`; otherwise someone may be "
            "intercepting the connection") from None
    except paramiko.AuthenticationException as exc:
        client.close()
        raise ProvisionError(f"{target} refused the login ({exc}): is your key in ~{target.user}/.ssh/"
                             "authorized_keys on the board? (--ssh-key picks the key)") from None
    except TimeoutError:
        client.close()
        raise ProvisionError(f"cannot reach {target.host}:{target.port}: no answer within "
                             f"{options.connect_timeout:.0f} s") from None
    except (OSError, paramiko.SSHException) as exc:
        client.close()
        # paramiko's NoValidConnectionsError keeps each address's own error in `errors`
        inner = list(getattr(exc, "errors", {}).values())
        first = inner[0] if inner and isinstance(inner[0], OSError) else exc
        reason = first.strerror if isinstance(first, OSError) and first.strerror else str(first)
        raise ProvisionError(f"cannot reach {target.host}:{target.port}: {reason.rstrip('.').lower()}") from None
    return Session(target, client, options)
