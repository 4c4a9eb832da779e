"""The controllers that turn desired state into running pods, each a level-triggered `sync(key)` (see `base.py`).

They are wired together and started by `master/controllermanager.py`.
"""
