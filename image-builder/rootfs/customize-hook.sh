#!/bin/sh
# mmdebstrap --customize-hook: everything is installed; make the initramfs once (zstd) and let
# raspi-firmware's hook copy it and the kernel onto /boot/firmware.
set -eu
sed -i 's/^update_initramfs=.*/update_initramfs=yes/' "$1/etc/initramfs-tools/update-initramfs.conf"
chroot "$1" update-initramfs -u -k all
