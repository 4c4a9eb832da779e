"""The kubelet half of the agent: node registration and heartbeats, the pod sync loop, status, probes."""
