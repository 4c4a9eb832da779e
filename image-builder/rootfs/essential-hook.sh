#!/bin/sh
# mmdebstrap --essential-hook: runs after the Essential set is unpacked, before the rest is installed.
# raspi-firmware's kernel hook reads /etc/default/raspi-firmware when it writes cmdline.txt: the root
# filesystem is found by label. (--dpkgopt=force-confold keeps this file when the package installs it.)
# The initramfs is made once at the end (customize-hook), not on every package's trigger.
set -eu
mkdir -p "$1/etc/default" "$1/etc/initramfs-tools"
printf 'ROOTPART=LABEL=RASPIROOT\nCONSOLES="ttyS1,115200 tty0"\n' > "$1/etc/default/raspi-firmware"
printf 'update_initramfs=no\n' > "$1/etc/initramfs-tools/update-initramfs.conf"
