"""Tests of the agent's service proxy library (agent/proxy)."""
