"""A fake board root and a runner that records commands (and fakes useradd, usermod and udevadm)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pikube.firstboot.host import Completed, Host

ED25519 = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPtuZbnDOTIaLrcrJGaI1sTs0xTM/rrmZNxQ/0VNFaCH alice@laptop")
TOKEN = f"pikube-{'0123456789abcdef' * 4}::abcdef.0123456789abcdef"


@dataclass
class Call:
    argv: tuple[str, ...]
    input: str | None
    env: dict[str, str]


@dataclass
class FakeRunner:
    root: Path
    calls: list[Call] = field(default_factory=list)
    # argv[0] → what it returns (or does); default: exit 0, no output.
    handlers: dict[str, Callable[[Sequence[str]], Completed]] = field(default_factory=dict)

    def __call__(self, argv: Sequence[str], *, input: str | None = None, check: bool = True,
                 env: Mapping[str, str] | None = None, echo: bool = False) -> Completed:
        self.calls.append(Call(tuple(argv), input, dict(env or {})))
        name = Path(argv[0]).name
        if name in self.handlers:
            out = self.handlers[name](argv)
        elif name == "useradd":
            out = self._useradd(argv)
        elif name == "usermod":
            out = self._usermod(argv)
        else:
            out = Completed(tuple(argv), 0)
        if check and out.returncode:
            from pikube.firstboot.host import CommandFailed
            raise CommandFailed(argv, out.returncode, out.stderr)
        return out

    def argvs(self) -> list[tuple[str, ...]]:
        return [c.argv for c in self.calls]

    def _useradd(self, argv: Sequence[str]) -> Completed:
        name = argv[-1]
        home = f"/home/{name}"
        with open(self.root / "etc/passwd", "a") as f:
            f.write(f"{name}:x:{os.getuid()}:{os.getgid()}:pikube user:{home}:/bin/bash\n")
        (self.root / home.lstrip("/")).mkdir(parents=True)
        if "--groups" in argv:
            self._add_groups(name, argv[argv.index("--groups") + 1].split(","))
        return Completed(tuple(argv), 0)

    def _usermod(self, argv: Sequence[str]) -> Completed:
        self._add_groups(argv[-1], argv[argv.index("--groups") + 1].split(","))
        return Completed(tuple(argv), 0)

    def _add_groups(self, name: str, wanted: list[str]) -> None:
        path = self.root / "etc/group"
        lines = []
        for line in path.read_text().splitlines():
            parts = line.split(":")
            if parts[0] in wanted:
                members = [m for m in parts[3].split(",") if m] + [name]
                parts[3] = ",".join(members)
            lines.append(":".join(parts))
        path.write_text("\n".join(lines) + "\n")


def make_root(root: Path) -> Path:
    """A board's tree as the image leaves it, with just what the steps read."""
    (root / "etc/sudoers.d").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\n")
    (root / "etc/group").write_text("root:x:0:\nadm:x:4:\nsudo:x:27:\ndocker:x:999:\n")
    (root / "etc/hostname").write_text("pikube\n")
    (root / "etc/hosts").write_text("127.0.0.1\tlocalhost\n127.0.1.1\tpikube\n::1\t\tlocalhost ip6-localhost\n")
    (root / "root").mkdir()
    units = root / "lib/systemd/system"
    units.mkdir(parents=True)
    (units / "wpa_supplicant@.service").write_text("[Unit]\n")
    zone = root / "usr/share/zoneinfo/Europe"
    zone.mkdir(parents=True)
    (zone / "London").write_bytes(b"TZif2")
    (root / "boot/firmware").mkdir(parents=True)
    return root


def make_host(root: Path, live: bool = False) -> tuple[Host, FakeRunner, list[str], list[float]]:
    runner = FakeRunner(root)
    lines: list[str] = []
    sleeps: list[float] = []
    host = Host(root=root, run=runner, say=lines.append, live=live, sleep=sleeps.append,
                pikube=("/opt/pikube/venv/bin/python", "-m", "pikube"))
    return host, runner, lines, sleeps
