"""First boot of an SD-card image: apply `pikube.yaml` from the boot partition, once, step by step.

`run.py` decides whether there is anything to do and runs the steps in order;
each step module (`system`, `accounts`, `network`, `growfs`, `role`) works on a
root prefix and runs commands through an injected runner (`host.py`), so every
step is unit-tested on a temporary directory. docs/firstboot.md is the user's
side of it.
"""
