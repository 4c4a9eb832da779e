#!/bin/sh
# mmdebstrap --customize-hook: everything is installed. The kernel's postinst made the initramfs once, with every
# package already unpacked, and raspi-firmware's hook copied it and the kernel onto /boot/firmware; the triggers
# that would have remade it were held off (essential-hook). Turn updates back on for the board's own kernel
# upgrades, and make the initramfs again only if the one on /boot/firmware is missing or not /boot's.
set -eu
sed -i 's/^update_initramfs=.*/update_initramfs=yes/' "$1/etc/initramfs-tools/update-initramfs.conf"
for initrd in "$1"/boot/initrd.img-*; do
  if ! cmp -s "$initrd" "$1/boot/firmware/$(basename "$initrd")"; then
    chroot "$1" update-initramfs -u -k all
    break
  fi
done
