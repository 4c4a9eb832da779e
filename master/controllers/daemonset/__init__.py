"""The DaemonSet controller.

`plan.py` decides, node by node, what should run and what runs (a pure function);
`controller.py` acts on it.
"""
