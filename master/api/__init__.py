"""The Kubernetes-compatible HTTP API: routes, generic verb handlers, discovery, tables, OpenAPI."""
