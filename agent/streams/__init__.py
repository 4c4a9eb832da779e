"""The agent's stream endpoints: exec, attach and port-forward into pods, as the kubelet serves them."""
