"""Turning a board into a cluster member: `enable-master`, `enable-worker`, `disable`, `reset`.

The steps are plain functions over a `Layout` (where config, data and units
live) and an `Init` (systemd, or pikube's own supervisor where there is no
systemd). Everything that needs `master/` or `agent/` (making a join token,
trading one for node credentials, undoing the pod network) comes in as a
callable from the CLI layer, which alone may import those packages.
"""
