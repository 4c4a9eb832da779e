"""Persistent volumes: binding claims to volumes, their phases, protection, and reclaiming released ones."""
