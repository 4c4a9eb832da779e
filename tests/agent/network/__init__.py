"""Tests of the agent's pod network library (agent/network)."""
