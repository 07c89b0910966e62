#!/usr/bin/env bash
# Produce a pristine Linux 6.12 tree as a one-commit git repository in $1.
#
# Sources, first match wins (DESIGN.md "Base kernel and how the tree is made"):
#   1. KERNEL_SRC=dir             an unpacked 6.12 tree
#   2. $CACHE/linux-$PIN.tar.xz   a kernel.org tarball already downloaded
#   3. Debian's linux-source-6.12 (trixie), fetched with apt-get download
#      through a private sources list; the pinned version when offered,
#      else the newest 6.12.x
#      (elsewhere: that package of the pinned version from Debian's pool,
#      checked against its sha256)
#   4. the kernel.org tarball of the pinned version, checked against
#      KERNEL_PIN_SHA256
# The version used is written to $1/.offload-base and printed.
set -euo pipefail

dest=${1:?usage: get-kernel-source.sh DEST}
CACHE=${CACHE:?}
PIN=${KERNEL_PIN:?}
PIN_SHA256=${KERNEL_PIN_SHA256:-}
# Debian's package of the pinned version, for machines without Debian's apt
DEB_VERSION=${DEB_VERSION-6.12.117-1}
DEB_SHA256=${DEB_SHA256:-9141325315c7f1eca682113d185a8c77c82814aa6e32f7e127e61d6106403835}
mkdir -p "$CACHE"

if [ -d "$dest/.git" ] && [ -f "$dest/.offload-base" ]; then
	echo "kernel source: $(cat "$dest/.offload-base") (already in $dest)"
	exit 0
fi
rm -rf "$dest" "$dest.tmp"
mkdir -p "$dest.tmp"

origin=
unpack_tar() { tar -C "$dest.tmp" --strip-components=1 -xf "$1"; }

if [ -n "${KERNEL_SRC:-}" ]; then
	[ -f "$KERNEL_SRC/Makefile" ] || { echo "KERNEL_SRC=$KERNEL_SRC is not a kernel tree" >&2; exit 1; }
	cp -a "$KERNEL_SRC/." "$dest.tmp/"
	rm -rf "$dest.tmp/.git"
	origin="KERNEL_SRC=$KERNEL_SRC"
elif [ -f "$CACHE/linux-$PIN.tar.xz" ]; then
	unpack_tar "$CACHE/linux-$PIN.tar.xz"
	origin="kernel.org linux-$PIN.tar.xz (cached)"
else
	deb=
	if [ -z "${NO_DEBIAN_SOURCE:-}" ] && command -v apt-get >/dev/null &&
	   grep -qx "ID=debian" /etc/os-release 2>/dev/null; then
		d=$CACHE/apt; mkdir -p "$d/lists/partial"
		mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
		[ -n "$mirror" ] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list)
		echo "deb $mirror trixie main" > "$d/sources.list"
		o=(-o Dir::Etc::SourceList="$d/sources.list" -o Dir::Etc::SourceParts=/dev/null
		   -o Dir::State::Lists="$d/lists" -o Dir::Cache::archives="$d/archives")
		# root downloads into our cache directly, not through the _apt user
		[ "$(id -u)" = 0 ] && o+=(-o APT::Sandbox::User=root)
		if apt-get "${o[@]}" -qq update 2>/dev/null; then
			versions=$(apt-cache "${o[@]}" madison linux-source-6.12 | awk '{print $3}')
			want=$(echo "$versions" | grep -m1 "^$PIN-" || true)
			[ -n "$want" ] || want=$(echo "$versions" | head -n1)
			if [ -n "$want" ]; then
				rm -f "$CACHE"/linux-source-6.12_*_all.deb
				(cd "$CACHE" && apt-get "${o[@]}" -qq download "linux-source-6.12=$want")
				deb=$(ls "$CACHE"/linux-source-6.12_*_all.deb | head -n1)
			fi
		fi
	fi
	# Without Debian's apt (other distributions, CI runners): the same
	# package straight from Debian's pool, checked against its pinned sha256.
	if [ -z "$deb" ] && [ -z "${NO_DEBIAN_SOURCE:-}" ] && [ -n "$DEB_VERSION" ]; then
		f=linux-source-6.12_${DEB_VERSION}_all.deb
		for base in ${DEBIAN_MIRROR:-https://deb.debian.org/debian} \
			    https://snapshot.debian.org/archive/debian/${DEB_SNAPSHOT:-20261125T000000Z}; do
			echo "kernel source: downloading $base/pool/main/l/linux/$f"
			if curl -fL --retry 3 -o "$CACHE/$f.part" "$base/pool/main/l/linux/$f" &&
			   echo "$DEB_SHA256  $CACHE/$f.part" | sha256sum -c --quiet -; then
				mv "$CACHE/$f.part" "$CACHE/$f"
				deb=$CACHE/$f want=$DEB_VERSION
				break
			fi
			rm -f "$CACHE/$f.part"
		done
	fi
	if [ -n "$deb" ]; then
		rm -rf "$CACHE/deb"; dpkg -x "$deb" "$CACHE/deb"
		unpack_tar "$CACHE"/deb/usr/src/linux-source-6.12.tar.xz
		rm -rf "$CACHE/deb"
		# Debian's .gitignore ends with "/*" (hide everything at the top
		# level from its packaging repository): drop that block so the
		# tree behaves like upstream's. The series does not touch the file.
		sed -i '/^# Debian packaging/,$d' "$dest.tmp/.gitignore"
		sed -i '$ {/^#$/d}' "$dest.tmp/.gitignore"
		origin="Debian linux-source-6.12 $want"
	else
		url=https://cdn.kernel.org/pub/linux/kernel/v6.x/linux-$PIN.tar.xz
		echo "kernel source: downloading $url"
		curl -fL --retry 3 -o "$CACHE/linux-$PIN.tar.xz.part" "$url"
		if [ -n "$PIN_SHA256" ]; then
			echo "$PIN_SHA256  $CACHE/linux-$PIN.tar.xz.part" | sha256sum -c --quiet -
		else
			echo "kernel source: no KERNEL_PIN_SHA256 set, refusing an unchecked tarball" >&2; exit 1
		fi
		mv "$CACHE/linux-$PIN.tar.xz.part" "$CACHE/linux-$PIN.tar.xz"
		unpack_tar "$CACHE/linux-$PIN.tar.xz"
		origin="kernel.org linux-$PIN.tar.xz"
	fi
fi

version=$(make -s -C "$dest.tmp" kernelversion)
case $version in 6.12.*) ;; *) echo "kernel source: $version is not 6.12.x" >&2; exit 1 ;; esac
(
	cd "$dest.tmp"
	git init -q -b base
	git config user.name "syscall-offload build"
	git config user.email "build@localhost"
	git add -A -f .
	git commit -q -m "Linux $version ($origin)"
)
echo "$version ($origin)" > "$dest.tmp/.offload-base"
printf '/.offload-base\n' >> "$dest.tmp/.git/info/exclude"
mv "$dest.tmp" "$dest"
echo "kernel source: $version ($origin)"
