#!/bin/sh
# Leave nothing of the build in the image: its logs, caches and temporary files.
set -eu
R=$ROOTFS
rm -rf "$R"/var/log/*.log "$R"/var/log/apt/* "$R"/var/cache/debconf/*-old "$R"/var/lib/dpkg/*-old
rm -rf "$R"/tmp/* "$R"/var/tmp/* "$R"/root/.cache
