"""Tests for the pure Kubernetes helpers in pikube.kube."""
