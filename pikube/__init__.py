"""pikube: the commands on top of everything (CLI, board bootstrap, doctor, process wiring, dev harness).

The parts below it are `master/`, `agent/` and `web/` side by side, and `core/`
beneath them; see docs/architecture.md for the layers and the rule that every
import points down.
"""

from core import __version__

__all__ = ["__version__"]
