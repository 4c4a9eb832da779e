"""The scheduler: which node each pending pod runs on (see `scheduler.py`; filters and scores in `fit.py`)."""
