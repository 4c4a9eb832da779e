"""Resource usage sampling for `kubectl top` and autoscaling: what the kubelet's summary API gives metrics-server."""
