"""core: the bottom layer every other part of pikube builds on, importing nothing of ours.

Errors (the Kubernetes `Status` hierarchy), frozen settings, the work queue, atomic
file writes, join tokens, kubeconfig, process helpers, pikube's wire names and the
Kubernetes object helpers (`core.kube`). The master, the agent and the status page
sit side by side above it and never import each other; the commands sit on top.
"""

__version__ = "0.1.0"
