#!/bin/sh
# Install image-builder/overlay/ (configuration files, units) into the rootfs, owned by root.
set -eu
cp -rT --no-preserve=ownership "$IMAGE_BUILDER/overlay" "$ROOTFS"
