#!/usr/bin/env bash
# Installs what pikube's demo and tests need on a fresh Debian bookworm machine:
# Debian packages, kubectl 1.20 unpacked beside the project, and a venv.
# Idempotent: each step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

# chromium (+ a font) drives the status page's end-to-end test (tests/web/test_browser.py).
# systemd: `systemd-analyze verify` checks the unit files (tests/bootstrap/test_units.py); it is not started.
# The SD-card image (pikube image build, its tests and bench/board.py): mmdebstrap + qemu-user-static make the
# arm64 rootfs (arch-test: mmdebstrap checks with it that qemu runs the foreign architecture, a Recommends
# that --no-install-recommends leaves out); dosfstools, mtools, e2fsprogs, fdisk, bmap-tools and zstd
# assemble it without loop devices; qemu-system-arm boots it; openssh-client logs in to the booted board. etcd-server: the store tests' second
# backend and masters on etcd (tests start their own etcd on loopback).
APT_PACKAGES=(docker.io busybox-static iproute2 nftables iperf3 ca-certificates chromium fonts-dejavu-core systemd
              mmdebstrap arch-test qemu-user-static qemu-system-arm dosfstools mtools e2fsprogs fdisk bmap-tools zstd
              openssh-client openssh-server sudo dnsmasq-base etcd-server)
TOOLS=.tools
VENV=.venv
PYTHON=${PYTHON:-python3}

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
need_kubectl=0
command -v kubectl >/dev/null 2>&1 || need_kubectl=1
if [ ${#missing[@]} -gt 0 ] || [ $need_kubectl = 1 ] || [ ! -x $TOOLS/kubectl-1.20/usr/bin/kubectl ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing Debian packages (${missing[*]:-kubectl}); run as root so apt-get can install them." >&2
    exit 1
  fi
  apt-get update -qq
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ $need_kubectl = 1 ]; then
  echo "install-deps: no kubectl on PATH; installing Debian's kubernetes-client"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kubernetes-client >/dev/null
fi
# kubectl 1.20 for compatibility tests: Debian's package, unpacked, never installed
# (it conflicts with the kubectl the machine image ships).
if [ ! -x $TOOLS/kubectl-1.20/usr/bin/kubectl ]; then
  echo "install-deps: unpacking Debian's kubernetes-client (kubectl 1.20) into $TOOLS/"
  mkdir -p $TOOLS/deb
  (cd $TOOLS/deb && rm -f kubernetes-client_*.deb && apt-get download -qq kubernetes-client)
  rm -rf $TOOLS/kubectl-1.20
  dpkg -x $TOOLS/deb/kubernetes-client_*.deb $TOOLS/kubectl-1.20
fi
mkdir -p $TOOLS/bin
ln -sf ../kubectl-1.20/usr/bin/kubectl $TOOLS/bin/kubectl-1.20

# The venv, rebuilt when pyproject.toml changes.
stamp=$VENV/.pyproject.sha256
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -x $VENV/bin/python ] || [ "$(cat $stamp 2>/dev/null)" != "$want" ]; then
  echo "install-deps: creating $VENV with the project and its pinned dependencies"
  [ -x $VENV/bin/python ] || $PYTHON -m venv $VENV
  $VENV/bin/pip install -q --upgrade pip >/dev/null
  $VENV/bin/pip install -q -e '.[dev,provision]'
  echo "$want" > $stamp
fi
