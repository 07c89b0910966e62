#!/usr/bin/env bash
# Install what building the kernel, running the VM and the host tests need.
# Idempotent: a second run with everything present takes well under a second.
set -euo pipefail

VENV=${VENV:?VENV must name the virtualenv the Makefile owns}
VNG_VERSION=${VNG_VERSION:-1.42}

pkgs=(build-essential flex bison bc cpio kmod libelf-dev libssl-dev
      qemu-system-x86 busybox-static udev ccache rsync xz-utils
      python3-venv git auditd strace
      redis-server redis-tools nginx-light wrk)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "deps: installing ${missing[*]}"
	sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ ! -x "$VENV/bin/vng" ]; then
	echo "deps: installing virtme-ng $VNG_VERSION into $VENV"
	python3 -m venv "$VENV"
	"$VENV/bin/pip" install -q "virtme-ng==$VNG_VERSION"
fi

command -v cargo >/dev/null || { echo "deps: cargo not found; install Rust (https://rustup.rs)" >&2; exit 1; }
