#!/bin/sh
# pikube in a venv at /opt/pikube/venv on Debian's python3, installed offline from wheels built or
# downloaded on the build machine (aarch64 wheels for the compiled dependencies): nothing is compiled
# under emulation. pip itself runs from its wheel and is not left in the venv. SOURCE_DATE_EPOCH makes
# the .pyc files hash-based, so two builds give the same bytes.
set -eu
VENV=/opt/pikube/venv
rm -rf "$ROOTFS$VENV" "$ROOTFS/tmp/pikube-wheels"
mkdir -p "$ROOTFS/tmp/pikube-wheels"
cp "$WHEELS"/*.whl "$ROOTFS/tmp/pikube-wheels/"
chroot "$ROOTFS" python3 -m venv --without-pip "$VENV"
PIP=$(cd "$ROOTFS/tmp/pikube-wheels" && ls pip-*.whl)
# Every wheel but pip's, named as the chroot sees them (sorted, so the install order is the same each time).
WHLS=$(cd "$ROOTFS/tmp/pikube-wheels" && LC_ALL=C ls *.whl | grep -v '^pip-' | sed 's|^|/tmp/pikube-wheels/|')
# pip runs from its wheel: it is only the installer here and is not left in the venv.
# shellcheck disable=SC2086
chroot "$ROOTFS" env SOURCE_DATE_EPOCH="$SOURCE_DATE_EPOCH" PYTHONHASHSEED=0 \
  "$VENV/bin/python" "/tmp/pikube-wheels/$PIP/pip" --disable-pip-version-check --no-cache-dir \
  install --no-index --no-deps $WHLS
rm -rf "$ROOTFS/tmp/pikube-wheels"
for cmd in pikube enable-master enable-worker; do
  ln -sf "$VENV/bin/$cmd" "$ROOTFS/usr/local/bin/$cmd"
done
chroot "$ROOTFS" "$VENV/bin/pikube" --version
