"""`pikube doctor`, `pikube info` and enable-*'s preflight: what a board is, and what would trip pikube on it.

Every fact is read through `host.Host` (read a file, run a command, ask
Docker, measure a disk, tell the time), so tests fake a Raspberry Pi with a
dict of files and a table of command outputs, and `--fix` writes only through
the same seam.
"""
