"""The build as data: reads image-builder/ (rootfs settings, package lists, boards, steps, overlay) once.

pi-gen's lesson is that the tree is the program: what goes into the image lives
as plain files under image-builder/, and this module only reads them into typed
values for the builder. The rootfs cache key is a hash of exactly the files that
decide the rootfs (image-builder/rootfs/), so a change to pikube's own code or to
a later step never rebuilds the 10-20 minute emulated rootfs.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path

# Bump when the way the builder turns image-builder/rootfs/ into a tarball changes.
ROOTFS_FORMAT = 1


class RecipeError(Exception):
    """image-builder/ is incomplete or malformed; the message names the file."""


@dataclass(frozen=True)
class Board:
    name: str
    model: str
    dtbs: tuple[str, ...]
    supported: bool
    note: str


@dataclass(frozen=True)
class Rootfs:
    suite: str
    architecture: str
    variant: str
    components: tuple[str, ...]
    mirrors: tuple[str, ...]
    source_date_epoch: int
    packages: tuple[str, ...]
    dpkg_options: tuple[str, ...]
    essential_hook: Path
    customize_hook: Path
    key: str  # sha256 over every input file, as hex


@dataclass(frozen=True)
class Recipe:
    root: Path
    rootfs: Rootfs
    boards: dict[str, Board]
    steps: tuple[Path, ...]
    overlay: Path
    board_excludes: tuple[str, ...]  # pikube's dependencies a board does not need


def default_root() -> Path:
    """image-builder/ beside the installed package (a source checkout or an editable install)."""
    return Path(__file__).resolve().parents[2] / "image-builder"


def _lines(path: Path) -> tuple[str, ...]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise RecipeError(f"{path}: {exc.strerror}") from exc
    return tuple(s for line in text.splitlines() if (s := line.split("#", 1)[0].strip()))


def _toml(path: Path) -> dict[str, object]:
    try:
        return tomllib.loads(path.read_text())
    except OSError as exc:
        raise RecipeError(f"{path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"{path}: {exc}") from exc


def _str(data: dict[str, object], key: str, path: Path) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise RecipeError(f"{path}: `{key}` must be a non-empty string")
    return value


def _strs(data: dict[str, object], key: str, path: Path) -> tuple[str, ...]:
    value = data.get(key)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise RecipeError(f"{path}: `{key}` must be a non-empty list of strings")
    return tuple(value)


def rootfs_key(folder: Path) -> str:
    """sha256 over the names and contents of every file in image-builder/rootfs/, and ROOTFS_FORMAT."""
    h = hashlib.sha256(f"pikube-rootfs-{ROOTFS_FORMAT}\n".encode())
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = f.relative_to(folder).as_posix()
        h.update(f"{rel}\0{f.stat().st_mode & 0o111:o}\0{len(f.read_bytes())}\0".encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def load_rootfs(folder: Path) -> Rootfs:
    conf = folder / "rootfs.toml"
    data = _toml(conf)
    epoch = data.get("source_date_epoch")
    if not isinstance(epoch, int) or epoch <= 0:
        raise RecipeError(f"{conf}: `source_date_epoch` must be a positive integer")
    hooks = (folder / "essential-hook.sh", folder / "customize-hook.sh")
    for hook in hooks:
        if not hook.is_file():
            raise RecipeError(f"{hook}: missing")
    packages = _lines(folder / "packages.txt")
    if not packages:
        raise RecipeError(f"{folder / 'packages.txt'}: lists no package")
    return Rootfs(
        suite=_str(data, "suite", conf), architecture=_str(data, "architecture", conf),
        variant=_str(data, "variant", conf), components=_strs(data, "components", conf),
        mirrors=_strs(data, "mirrors", conf), source_date_epoch=epoch, packages=packages,
        dpkg_options=_lines(folder / "dpkg-exclude.txt"), essential_hook=hooks[0], customize_hook=hooks[1],
        key=rootfs_key(folder))


def load_boards(path: Path) -> dict[str, Board]:
    data = _toml(path)
    boards: dict[str, Board] = {}
    for name, entry in data.items():
        if not isinstance(entry, dict):
            raise RecipeError(f"{path}: [{name}] must be a table")
        dtbs = entry.get("dtbs", [])
        if not isinstance(dtbs, list) or not all(isinstance(d, str) for d in dtbs):
            raise RecipeError(f"{path}: [{name}].dtbs must be a list of file names")
        boards[name] = Board(name=name, model=_str(entry, "model", path), dtbs=tuple(dtbs),
                             supported=bool(entry.get("supported", True)), note=str(entry.get("note", "")))
    if not boards:
        raise RecipeError(f"{path}: no board")
    return boards


def load(root: Path | None = None) -> Recipe:
    root = root or default_root()
    if not root.is_dir():
        raise RecipeError(f"{root}: no image-builder folder here (pikube image build runs from a source checkout)")
    steps = tuple(sorted(p for p in (root / "steps").glob("*.sh") if p.is_file()))
    if not steps:
        raise RecipeError(f"{root / 'steps'}: no steps")
    return Recipe(root=root, rootfs=load_rootfs(root / "rootfs"), boards=load_boards(root / "boards.toml"),
                  steps=steps, overlay=root / "overlay", board_excludes=_lines(root / "python-exclude.txt"))
