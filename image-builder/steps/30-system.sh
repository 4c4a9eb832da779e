#!/bin/sh
# The board's system: which units run, the file systems, and what each board must make for itself.
set -eu
R=$ROOTFS
wants() {  # enable UNIT for TARGET the way `systemctl enable` would, without running systemctl
  mkdir -p "$R/etc/systemd/system/$2.wants"
  ln -sf "$3/$1" "$R/etc/systemd/system/$2.wants/$1"
}
wants systemd-networkd.service multi-user.target /lib/systemd/system
wants systemd-resolved.service multi-user.target /lib/systemd/system
wants systemd-timesyncd.service sysinit.target /lib/systemd/system
wants docker.service multi-user.target /lib/systemd/system
wants ssh.service multi-user.target /lib/systemd/system
wants pikube-ssh-keygen.service ssh.service /etc/systemd/system
ln -sf /run/systemd/resolve/stub-resolv.conf "$R/etc/resolv.conf"

# SD-card life: apt's daily timers (downloads and man-db) off; no swap (none is configured).
for t in apt-daily.timer apt-daily-upgrade.timer man-db.timer e2scrub_all.timer fstrim.timer; do
  rm -f "$R/etc/systemd/system/timers.target.wants/$t"
done

cat > "$R/etc/fstab" <<FSTAB
# pikube: both partitions by label (see cmdline.txt's root=). noatime and a 60 s commit interval
# spare the SD card; /tmp lives in RAM.
LABEL=RASPIROOT  /               ext4   rw,noatime,commit=60,errors=remount-ro  0 1
LABEL=RASPIFIRM  /boot/firmware  vfat   rw,noatime,umask=0077                  0 2
tmpfs            /tmp            tmpfs  nosuid,nodev,size=25%                  0 0
FSTAB

echo pikube > "$R/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tpikube\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' > "$R/etc/hosts"

# Made on each board's first boot, never shared: SSH host keys, machine-id, the random seed.
rm -f "$R"/etc/ssh/ssh_host_*
: > "$R/etc/machine-id"
rm -f "$R/var/lib/dbus/machine-id" "$R/var/lib/systemd/random-seed"
