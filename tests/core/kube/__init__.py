"""Tests for the pure Kubernetes helpers in core.kube."""
