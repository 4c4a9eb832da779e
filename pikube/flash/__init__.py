"""`pikube flash` and `pikube preseed`: writing SD cards on the laptop, safely and verified.

Laptop-side only: nothing that runs on a board imports this package (an
import-linter contract says so). The modules, bottom up: `errors`; `mbr`,
`bmap`, `guard` (pure); `probe`, `source`, `target`, `fat`, `progress`;
`writer`, `verify`, `seed`, `settings`; `flasher`, which strings them together.
`preseed(path, cfg)` is the one call a test needs to put a BoardConfig on a card.
"""

from __future__ import annotations

from pikube.flash.seed import preseed

__all__ = ["preseed"]
