"""The Job controller.

`progress.py` counts a Job's pods and decides whether it is done (pure functions
of job, pods and time); `controller.py` acts on it.
"""
