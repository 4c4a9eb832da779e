"""`pikube doctor` (and enable-*'s preflight) and `pikube info`: what would trip pikube on a board, what it is.

Every fact the doctor reads goes through `host.Host` (read a file, run a
command, ask Docker, measure a disk, tell the time), so tests fake a Raspberry
Pi with a dict of files and a table of command outputs, and `--fix` writes
only through the same seam.
"""
