#!/bin/sh
# System packages itops' lab and integration tests need (Debian/Ubuntu). Idempotent: installs only
# what is missing, and runs `apt-get update` at most once. Run as root (or through sudo).
#   python3-venv    `python3 -m venv` for the project venv (Debian splits it out)
#   openssh-server  the sshd every lab host runs (/usr/sbin/sshd)
#   openssh-client  ssh/ssh-keygen (generating chroot host keys; poking at the lab by hand)
#   debootstrap     builds the cached Debian root for chrooted lab hosts
#   busybox-static  the fast minimal chroot root (must be the static build)
#   util-linux      unshare/mount: each lab sshd gets its own hostname and a private /proc mount
#   debian-archive-keyring, ca-certificates: debootstrap verifies the archive it downloads
#   gzip tar zstd   backup integrity tests and restores of file backups (gzip -t, tar -t, zstd -t)
#   restic          restic backup verification (snapshots, check --read-data-subset, restore) and its tests
#   postgresql postgresql-client: pg_restore/psql for postgres_dump verification and restore tests; the
#                   tests initdb a throwaway server (Debian's service is not started: policy-rc.d / no systemd)
#   libpango-1.0-0 libpangoft2-1.0-0: weasyprint's text layout (the optional pdf report format, tested)
#   prometheus      promtool, to check the node_exporter textfile of `itops backup verify --prom-file`
set -eu

PACKAGES="python3-venv openssh-server openssh-client debootstrap busybox-static util-linux ca-certificates debian-archive-keyring chromium fonts-dejavu-core gzip tar zstd restic postgresql postgresql-client prometheus libpango-1.0-0 libpangoft2-1.0-0"

if [ "$(id -u)" -ne 0 ]; then
    exec sudo -- "$0" "$@"
fi

missing=""
for pkg in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $pkg"
    fi
done

if [ -z "$missing" ]; then
    echo "install-system-deps: all present ($PACKAGES)"
    exit 0
fi

echo "install-system-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update
# shellcheck disable=SC2086  # word splitting of the package list is intended
apt-get install -y --no-install-recommends $missing

# Debian's openssh-server postinst may start the system sshd; the lab never needs it, but we leave
# the system's service state alone.
