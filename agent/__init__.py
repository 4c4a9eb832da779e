"""The pikube agent: a kubelet-like node agent that runs pods in Docker and wires the pod network."""
