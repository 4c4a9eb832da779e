"""Run a master with settings a test chooses (timings the CLI does not expose): used as a subprocess."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from core.settings import MasterSettings
from pikube.run.master import run


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir", type=Path, required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--settings", default="{}", help="JSON of MasterSettings fields")
    args = p.parse_args()
    overrides = json.loads(args.settings)
    if "disabled_controllers" in overrides:
        overrides["disabled_controllers"] = frozenset(overrides["disabled_controllers"])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run(MasterSettings(data_dir=args.data_dir, bind="127.0.0.1", port=args.port, **overrides))


if __name__ == "__main__":
    main()
