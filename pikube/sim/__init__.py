"""Simulated boards: small fake agents that join a real master over HTTPS.

Tests and benchmarks use them to drive the scheduler and controllers with
boards that register Nodes, renew Leases, run pods on paper and report their
status with a node identity, exactly as the real agent does at the API. They
speak HTTPS with `requests` only and never import `master` or `agent`.
"""

from pikube.sim.api import Api, Credentials
from pikube.sim.board import Board, BoardSpec
from pikube.sim.fleet import Fleet, join

__all__ = ["Api", "Board", "BoardSpec", "Credentials", "Fleet", "join"]
