"""pikube: the parts both the master and the agent use (settings, API helpers, errors, the CLI).

The master (`master/`) and the agent (`agent/`) never import each other; what
they share lives here, so that each side stays small on a 1 GB board.
"""

__version__ = "0.1.0"
