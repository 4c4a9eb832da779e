"""The stream protocols kubectl and the Python client speak for exec, attach, cp and port-forward (sans-IO)."""
