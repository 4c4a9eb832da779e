"""The wheels the image's venv is installed from, all made or fetched on the build machine.

pikube's own wheel is built from the source tree; its dependencies (less those
image-builder/python-exclude.txt lists: laptop-side provisioning) are downloaded as
aarch64 wheels for the board's Python, binary-only, so nothing is ever compiled
under emulation. Every package is held to the version installed where the build
runs (the one the tests ran with), so the board runs the tested set and two builds
a week apart fetch the same wheels. pip caches the downloads.
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from pikube.image.rootfs import BuildError


@dataclass(frozen=True)
class PythonTarget:
    version: str
    abi: str
    platforms: tuple[str, ...]
    pip: str


def load_target(path: Path) -> PythonTarget:
    data = tomllib.loads(path.read_text())
    return PythonTarget(version=str(data["python_version"]), abi=str(data["abi"]),
                        platforms=tuple(str(p) for p in data["platforms"]), pip=str(data["pip"]))


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    return re.sub(r"[-_.]+", "-", match.group(0)).lower() if match else ""


def board_requirements(pyproject: Path, excludes: tuple[str, ...]) -> list[str]:
    """pikube's pinned runtime dependencies, less the ones a board never uses."""
    deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    drop = {_name(e) for e in excludes}
    return [d for d in deps if _name(d) not in drop]


def tested_versions() -> str:
    """A pip constraints file: every distribution installed beside this builder, at its version."""
    pins = {_name(d.metadata["Name"]): d.version for d in importlib.metadata.distributions() if d.metadata["Name"]}
    return "".join(f"{n}=={v}\n" for n, v in sorted(pins.items()) if n != "pikube")


def download_command(target: PythonTarget, requirements: list[str], dest: Path, constraints: Path) -> list[str]:
    cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q", "--only-binary=:all:",
           "--python-version", target.version, "--implementation", "cp", "--abi", target.abi, "--abi", "abi3",
           "--abi", "none", "-c", str(constraints), "-d", str(dest)]
    for platform in target.platforms:
        cmd += ["--platform", platform]
    return [*cmd, "--platform", "any", *requirements, f"pip=={target.pip}"]


def collect(source: Path, target: PythonTarget, excludes: tuple[str, ...], dest: Path) -> list[Path]:
    """Build pikube's wheel and fetch the board's dependency wheels into `dest`; the wheels, sorted."""
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.glob("*.whl"):
        old.unlink()
    _run([sys.executable, "-m", "pip", "wheel", "--disable-pip-version-check", "-q", "--no-deps",
          "-w", str(dest), str(source)], "building pikube's wheel")
    constraints = dest / "constraints.txt"
    constraints.write_text(tested_versions())
    _run(download_command(target, board_requirements(source / "pyproject.toml", excludes), dest, constraints),
         "downloading the board's aarch64 wheels")
    return sorted(dest.glob("*.whl"))


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise BuildError(f"{what} failed:\n" + "\n".join(proc.stdout.splitlines()[-20:]))
