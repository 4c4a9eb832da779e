"""`pikube flash IMAGE DEVICE` and `pikube preseed IMAGE-OR-DEVICE`: write and set up SD cards (on the laptop).

Flags become board settings checked by the board's own schema code; every
check runs before anything is written (`pikube.flash.flasher.plan`); a card
is written only after the user confirms (or `--yes`), a fixed disk only after
they type its path. Progress goes to stderr: a bar on a terminal, lines in a
log. Ctrl-C says plainly that the card is incomplete.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from core.boardconfig import BoardConfig, ConfigError

MASK = "<hidden>"


def register(sub: Any) -> None:
    f: argparse.ArgumentParser = sub.add_parser(
        "flash", help="write a pikube image to an SD card, verify it, and preseed the board's settings",
        description="Write IMAGE (.img, .img.zst, .img.xz, .img.gz; only the mapped blocks when IMAGE.bmap is "
                    "beside it) to DEVICE (a card, or a file for later), read it back to verify it, and write "
                    "the board's settings (pikube.yaml) onto it. The laptop's own disks are refused.")
    f.add_argument("image", metavar="IMAGE", nargs="?", type=Path)
    f.add_argument("device", metavar="DEVICE", nargs="?", type=Path,
                   help="the card, e.g. /dev/sdb or /dev/mmcblk0 (`pikube flash --list`), or a file")
    f.add_argument("--list", action="store_true", help="list the cards that can be written, and nothing else")
    f.add_argument("--yes", "-y", action="store_true", help="do not ask before erasing the card")
    f.add_argument("--no-verify", action="store_true", help="skip reading the card back (not recommended)")
    f.add_argument("--no-bmap", action="store_true", help="ignore IMAGE.bmap and write every byte")
    _target_flags(f)
    _settings_flags(f)
    f.set_defaults(func=_flash)

    p: argparse.ArgumentParser = sub.add_parser(
        "preseed", help="write the board's settings (pikube.yaml) onto a flashed card or an image file",
        description="Replace pikube.yaml in the FAT partition of TARGET (a flashed card or an .img file) with "
                    "the given settings; nothing else on TARGET changes. For ten boards: flash once per card, "
                    "then preseed each with its own --hostname (shared settings in --config).")
    p.add_argument("target", metavar="IMAGE-OR-DEVICE", type=Path)
    _target_flags(p)
    _settings_flags(p)
    p.set_defaults(func=_preseed)


def _target_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--force-system-disk", action="store_true",
                   help="allow a fixed or NVMe disk (you will be asked to type its path); never the running "
                        "system's disk")
    p.add_argument("--allow-loop", action="store_true", help="allow a loop device (for tests)")


def _settings_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("board settings (written to pikube.yaml; see docs/flash.md)")
    g.add_argument("--config", type=Path, metavar="FILE",
                   help="a pikube.yaml with shared settings; the options below override it")
    g.add_argument("--hostname", metavar="NAME")
    g.add_argument("--role", metavar="ROLE", help="master, worker or none")
    g.add_argument("--master", metavar="ADDR", help="a worker's master: HOST or HOST:PORT")
    g.add_argument("--token", metavar="T", help="a worker's join token (from enable-master or pikube token create)")
    g.add_argument("--user", metavar="NAME", help="a login user to create")
    g.add_argument("--ssh-key", action="append", type=Path, default=[], metavar="FILE",
                   help="a public key file (e.g. ~/.ssh/id_ed25519.pub) to authorize; repeat for more")
    g.add_argument("--wifi-ssid", metavar="NAME")
    g.add_argument("--wifi-password", metavar="PASSPHRASE", help="8 to 63 characters")
    g.add_argument("--wifi-country", metavar="CC", help="two-letter country code, e.g. GB (required with Wi-Fi)")
    g.add_argument("--static-ip", metavar="A/N", help="a static address such as 192.168.1.20/24 (default DHCP)")
    g.add_argument("--gateway", metavar="G")
    g.add_argument("--dns", action="append", default=[], metavar="D", help="a DNS server; repeat or comma-separate")
    g.add_argument("--timezone", metavar="TZ", help="e.g. Europe/London")


def _error(text: str) -> Exception:
    from pikube.cli.main import CliError

    return CliError(text)


def settings_from(args: argparse.Namespace) -> BoardConfig:
    """The flags (over --config) as validated board settings; CliError listing every problem."""
    from pikube.flash import settings

    try:
        flags = settings.Flags(
            hostname=args.hostname, role=args.role, master=args.master, token=args.token, user=args.user,
            wifi_ssid=args.wifi_ssid, wifi_password=args.wifi_password,
            wifi_country=args.wifi_country, static_ip=args.static_ip, gateway=args.gateway,
            dns=tuple(d.strip() for item in args.dns for d in item.split(",") if d.strip()),
            timezone=args.timezone)
        return settings.board_config(flags, args.config, args.ssh_key)
    except ConfigError as exc:
        problems = exc.problems
        head = "the board settings are not valid" + (":" if len(problems) > 1 else "; ")
        raise _error(head + ("\n  " + "\n  ".join(problems) if len(problems) > 1 else problems[0])) from None


def summary(cfg: BoardConfig) -> str:
    """The settings in one line, secrets masked."""
    parts = [f"{name}={getattr(cfg, name)}" for name in ("hostname", "role", "master", "user", "timezone")
             if getattr(cfg, name) is not None]
    if cfg.token is not None:
        parts.append(f"token={MASK}")
    if cfg.ssh_authorized_keys:
        parts.append(f"ssh keys={len(cfg.ssh_authorized_keys)}")
    if cfg.wifi is not None:
        secret = f", passphrase {MASK}" if cfg.wifi.passphrase else ""
        parts.append(f"wifi={cfg.wifi.ssid} ({cfg.wifi.country}{secret})")
    if cfg.network is not None:
        parts.append(f"address={cfg.network.address}")
    return ", ".join(parts) or "nothing"


def _ask(prompt: str, stdin: TextIO) -> str:
    print(prompt, end="", file=sys.stderr, flush=True)
    line = stdin.readline()
    if not line:
        raise _error("no answer (stdin closed); nothing was written.")
    return line.strip()


def confirm(target: str, what: str, *, yes: bool, needs_path: bool, stdin: TextIO = sys.stdin) -> None:
    """Ask before erasing: y/N (skipped by --yes), and for a fixed disk, typing its path (never skipped)."""
    if needs_path:
        print(f"{target} is not a removable card. If you really mean to erase it, {what}.", file=sys.stderr)
        if _ask(f"Type {target} to go on: ", stdin) != target:
            raise _error("not confirmed; nothing was written.")
        return
    if yes:
        return
    if not stdin.isatty():
        raise _error(f"{what} needs confirmation: run it in a terminal, or add --yes.")
    if _ask(f"This will {what}. Go on? [y/N] ", stdin).lower() not in ("y", "yes"):
        raise _error("not confirmed; nothing was written.")


def _list() -> int:
    from pikube.flash import guard, probe

    try:
        found = guard.candidates(probe.host())
    except probe.ProbeError as exc:
        raise _error(str(exc)) from None
    if not found:
        print("No cards found. Insert one (fixed disks and loop devices are never listed).")
        return 0
    rows = [("DEVICE", "SIZE", "TRANSPORT", "MODEL", "")]
    for cand in found:
        dev = cand.device
        model = " ".join(p for p in (dev.vendor, dev.model) if p and not p.startswith("0x")) or "-"
        rows.append((dev.path, guard.human_size(dev.size), dev.transport or "-", model, cand.note))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + ("  " + row[4] if row[4] else ""))
    return 0


def _interrupted(target: Path, what: str) -> int:
    print(f"\npikube: interrupted: {target} is not ready ({what}). Run the same command again before using it.",
          file=sys.stderr)
    return 130


def _flash(args: argparse.Namespace) -> int:
    from pikube.flash import flasher, guard, progress, settings
    from pikube.flash.errors import FlashError

    if args.list:
        return _list()
    if args.image is None or args.device is None:
        raise _error("give the image and the card: pikube flash IMAGE DEVICE (`pikube flash --list` shows the "
                     "cards).")
    cfg = settings_from(args)
    try:
        plan = flasher.plan(args.image, args.device, use_bmap=not args.no_bmap,
                            allow_system_disk=args.force_system_disk, allow_loop=args.allow_loop)
    except FlashError as exc:
        raise _error(f"{exc} Nothing was written.") from None
    image = plan.image
    if plan.decision is not None and plan.decision.device is not None:
        what = (f"erase {args.device} ({plan.decision.device.description}) and write {image.path.name} "
                f"({guard.human_size(image.size)})")
        confirm(str(args.device), what, yes=args.yes, needs_path=plan.decision.needs_second_confirmation)
    elif plan.target.exists and plan.target.size > 0:
        confirm(str(args.device), f"overwrite the file {args.device}", yes=args.yes, needs_path=False)
    out = progress.for_stream(sys.stderr)
    config = None if settings.is_empty(cfg) else settings.to_bytes(cfg)
    try:
        report = flasher.run(plan, config=config, check=not args.no_verify, progress=out)
    except KeyboardInterrupt:
        return _interrupted(args.device, "stopped while writing or verifying: it may not boot")
    except FlashError as exc:
        raise _error(str(exc)) from None
    written = report.written
    skipped = f"; {guard.human_size(written.skipped)} left out thanks to the bmap" if written.skipped else ""
    print(f"Wrote {image.path.name} to {args.device}: {guard.human_size(written.covered)} in "
          f"{report.write_seconds:.1f} s{skipped}.")
    if report.verified is not None:
        print(f"Verified: {guard.human_size(report.verified.bytes)} read back from {args.device} match the image "
              "(SHA-256).")
    else:
        print("Not verified (--no-verify).")
    if report.seeded is not None:
        print(f"Board settings in pikube.yaml (read back and checked): {summary(cfg)}.")
    print(f"{args.device} is ready." + (" You can remove the card." if plan.target.is_block else ""))
    return 0


def _preseed(args: argparse.Namespace) -> int:
    from pikube.flash import flasher, seed, settings, target
    from pikube.flash.errors import FlashError

    cfg = settings_from(args)
    if settings.is_empty(cfg):
        raise _error("nothing to preseed: give at least one setting (--hostname, --config, ...).")
    try:
        info = target.describe(args.target)
        if not info.exists:
            raise _error(f"{args.target} does not exist.")
        if info.is_block:
            flasher.check_device(args.target, allow_system_disk=args.force_system_disk, allow_loop=args.allow_loop)
        seeded = seed.preseed_bytes(args.target, settings.to_bytes(cfg))
    except KeyboardInterrupt:
        return _interrupted(args.target, "pikube.yaml may be half written")
    except FlashError as exc:
        raise _error(f"{exc}") from None
    verb = "Replaced" if seeded.replaced else "Wrote"
    print(f"{verb} pikube.yaml on {args.target} (read back and checked): {summary(cfg)}.")
    return 0
