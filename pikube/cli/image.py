"""`pikube image build`: flags and messages only; the build is pikube.image.build."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pikube.cli.main import CliError


def register(sub: Any) -> None:
    image: argparse.ArgumentParser = sub.add_parser(
        "image", help="build the SD-card image", description="Build pikube's Raspberry Pi SD-card image.")
    verbs = image.add_subparsers(dest="image_command", metavar="VERB")
    image.set_defaults(func=lambda _a: _help(image))
    build = verbs.add_parser("build", help="build IMAGE, IMAGE.bmap, IMAGE.zst and IMAGE.manifest.json (as root)")
    build.add_argument("--board", default="rpi4", help="the board the image is for (default rpi4; see docs/image.md)")
    build.add_argument("--out", type=Path, default=Path("pikube.img"), help="the image file (default pikube.img)")
    build.add_argument("--cache", type=Path, default=None,
                       help="where the rootfs tarball and pip's downloads are kept (default ~/.cache/pikube)")
    build.add_argument("--no-compress", action="store_true", help="skip IMAGE.zst")
    build.add_argument("--zstd-level", type=int, default=12, choices=range(1, 20), metavar="1-19",
                       help="zstd level for IMAGE.zst (default 12)")
    build.set_defaults(func=_build)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _build(args: argparse.Namespace) -> int:
    from pikube.image import recipe
    from pikube.image.build import Options, build, default_cache
    from pikube.image.progress import Progress
    from pikube.image.rootfs import BuildError

    try:
        r = recipe.load()
        opts = Options(board=args.board, out=args.out.resolve(), cache=(args.cache or default_cache()).resolve(),
                       source=r.root.parent, zstd_level=None if args.no_compress else args.zstd_level)
        result = build(r, opts, Progress())
    except (recipe.RecipeError, BuildError) as exc:
        raise CliError(str(exc)) from exc
    done = result.assembled
    print(f"{done.image} ({done.size / 2**20:.0f} MiB)")
    for path in (done.bmap, done.zst, result.manifest):
        if path is not None:
            print(f"{path} ({path.stat().st_size / 2**20:.1f} MiB)")
    return 0
