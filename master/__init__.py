"""The pikube master: a Kubernetes-compatible API server, its store, scheduler and controllers."""
