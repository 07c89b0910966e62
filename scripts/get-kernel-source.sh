#!/usr/bin/env bash
# Produce a pristine Linux 6.12 tree as a one-commit git repository in $1.
#
# Sources, first match wins:
#   1. KERNEL_SRC=dir             an unpacked 6.12 tree
#   2. $CACHE/linux-$PIN.tar.xz   a kernel.org tarball already downloaded
#                                 (checked again against the sha256 kept
#                                 beside it, when there is one)
#   3. Debian's linux-source-6.12 (trixie), fetched with apt-get download
#      through a private sources list, from the Debian mirror the system's
#      own apt configuration names (DEBIAN_MIRROR=url overrides it;
#      NO_DEBIAN_SOURCE=1 skips this step); the pinned version when offered,
#      else the newest 6.12.x
#   4. the kernel.org tarball of the pinned version, checked against the
#      sha256 kernel.org publishes beside it in sha256sums.asc, whose
#      signature is checked when gpg can have the signing key (fetched from
#      kernel.org, or KERNEL_ORG_KEY=file)
# The version used is written to $1/.offload-base and printed.
set -euo pipefail

dest=${1:?usage: get-kernel-source.sh DEST}
CACHE=${CACHE:?}
PIN=${KERNEL_PIN:?}
case $PIN in 6.12.[0-9]*) ;; *) echo "kernel source: KERNEL_PIN=$PIN is not 6.12.N" >&2; exit 1 ;; esac
KERNEL_ORG_URL=${KERNEL_ORG_URL:-https://cdn.kernel.org/pub/linux/kernel/v6.x}
# "Kernel.org checksum autosigner <autosigner@kernel.org>", the key that
# signs sha256sums.asc (kernel.org's signature.html describes it; gpg finds
# it in kernel.org's web key directory)
AUTOSIGNER_FPR=${AUTOSIGNER_FPR:-B8868C80BA62A1FFFAF5FDA9632D3A06589DA6B1}
tarball=linux-$PIN.tar.xz
mkdir -p "$CACHE"

die() { echo "kernel source: $*" >&2; exit 1; }

if [ -d "$dest/.git" ] && [ -f "$dest/.offload-base" ]; then
	echo "kernel source: $(cat "$dest/.offload-base") (already in $dest)"
	exit 0
fi
rm -rf "$dest" "$dest.tmp"
mkdir -p "$dest.tmp"

origin=
unpack_tar() { tar -C "$dest.tmp" --strip-components=1 -xf "$1"; }

# The first Debian archive the system's apt configuration names, or nothing.
# Only entries for a Debian suite count: Ubuntu's archives (GitHub's runners)
# and third-party repositories have no trixie linux-source-6.12, and the
# security archive has another layout.
debian_suite='^(buster|bullseye|bookworm|trixie|forky|duke|sid)(-updates|-backports)?$'
debian_mirror() {
	local sources=() lists=() f m=
	for f in /etc/apt/sources.list.d/*.sources; do [ -f "$f" ] && sources+=("$f"); done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do [ -f "$f" ] && lists+=("$f"); done
	if [ ${#sources[@]} -gt 0 ]; then
		# deb822 stanzas: Types, URIs, Suites, Enabled
		m=$(awk -v suite="$debian_suite" 'BEGIN { RS = "" }
		{
			types = uris = suites = ""; enabled = "yes"
			n = split($0, line, "\n")
			for (i = 1; i <= n; i++) {
				if (line[i] ~ /^[ \t]*#/) continue
				k = tolower(line[i]); sub(/:.*/, "", k)
				v = line[i]; sub(/^[^:]*:[ \t]*/, "", v)
				if (k == "types") types = v
				else if (k == "uris") uris = v
				else if (k == "suites") suites = v
				else if (k == "enabled") enabled = tolower(v)
			}
			if (enabled == "no" || (" " types " ") !~ / deb /) next
			ns = split(suites, s, /[ \t]+/)
			for (j = 1; j <= ns; j++)
				if (s[j] ~ suite) { split(uris, u, /[ \t]+/); print u[1]; exit }
		}' "${sources[@]}" 2>/dev/null || true)
	fi
	if [ -z "$m" ] && [ ${#lists[@]} -gt 0 ]; then
		# one-line entries: deb [options] uri suite component...
		m=$(awk -v suite="$debian_suite" '
		$1 == "deb" {
			i = 2
			if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
			if ($(i + 1) ~ suite) { print $i; exit }
		}' "${lists[@]}" 2>/dev/null || true)
	fi
	echo "${m%/}"
}

if [ -n "${KERNEL_SRC:-}" ]; then
	[ -f "$KERNEL_SRC/Makefile" ] || die "KERNEL_SRC=$KERNEL_SRC is not a kernel tree"
	cp -a "$KERNEL_SRC/." "$dest.tmp/"
	rm -rf "$dest.tmp/.git"
	origin="KERNEL_SRC=$KERNEL_SRC"
elif [ -f "$CACHE/$tarball" ]; then
	if [ -f "$CACHE/$tarball.sha256" ]; then
		(cd "$CACHE" && sha256sum -c --quiet "$tarball.sha256") ||
			die "$CACHE/$tarball does not match its sha256 any more; delete it"
	fi
	unpack_tar "$CACHE/$tarball"
	origin="kernel.org $tarball (cached)"
else
	deb= mirror=
	if [ -z "${NO_DEBIAN_SOURCE:-}" ] && command -v apt-get >/dev/null && command -v dpkg >/dev/null; then
		mirror=${DEBIAN_MIRROR:-} from=DEBIAN_MIRROR
		[ -n "$mirror" ] || mirror=$(debian_mirror) from="mirror from the apt configuration"
		[ -n "$mirror" ] || echo "kernel source: no Debian mirror in the apt configuration; using kernel.org"
	fi
	if [ -n "$mirror" ]; then
		d=$CACHE/apt; mkdir -p "$d/lists/partial" "$d/cache/archives/partial"
		keyring=/usr/share/keyrings/debian-archive-keyring.gpg
		opt=; [ -f "$keyring" ] && opt="[signed-by=$keyring] "
		echo "deb $opt$mirror trixie main" > "$d/sources.list"
		o=(-o Dir::Etc::SourceList="$d/sources.list" -o Dir::Etc::SourceParts=/dev/null
		   -o Dir::State::Lists="$d/lists" -o Dir::Cache="$d/cache")
		# root downloads into our cache directly, not through the _apt user
		[ "$(id -u)" = 0 ] && o+=(-o APT::Sandbox::User=root)
		echo "kernel source: looking for linux-source-6.12 in Debian trixie ($from)"
		if apt-get "${o[@]}" -qq update 2>/dev/null; then
			versions=$(apt-cache "${o[@]}" madison linux-source-6.12 | awk '{print $3}')
			want=$(echo "$versions" | grep -m1 "^$PIN-" || true)
			[ -n "$want" ] || want=$(echo "$versions" | head -n1)
			if [ -n "$want" ]; then
				rm -f "$CACHE"/linux-source-6.12_*_all.deb
				if (cd "$CACHE" && apt-get "${o[@]}" -qq download "linux-source-6.12=$want"); then
					deb=$(ls "$CACHE"/linux-source-6.12_*_all.deb | head -n1)
				else
					echo "kernel source: downloading linux-source-6.12 $want failed; using kernel.org"
				fi
			else
				echo "kernel source: found no linux-source-6.12 in Debian trixie there; using kernel.org"
			fi
		else
			echo "kernel source: apt could not read Debian trixie from that mirror; using kernel.org"
		fi
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
		# kernel.org: the tarball, checked against the sha256 kernel.org
		# publishes beside it. sha256sums.asc is signed by kernel.org's
		# checksum autosigner; when gpg can fetch that key (kernel.org's web
		# key directory) and it has the fingerprint above, the signature
		# must verify, and only the signed text is read. Without the key the
		# sums are trusted as they come, over TLS from kernel.org.
		command -v curl >/dev/null || die "curl is needed to download from kernel.org"
		k=$CACHE/kernel.org.part; rm -rf "$k"; mkdir -p "$k"
		fetch() {
			echo "kernel source: downloading $KERNEL_ORG_URL/$1"
			curl -fsSL --retry 3 -o "$k/$1" "$KERNEL_ORG_URL/$1" ||
				die "could not download $KERNEL_ORG_URL/$1; set KERNEL_SRC=dir or put $tarball into $CACHE"
		}
		fetch sha256sums.asc
		sums=$k/sha256sums.asc signed="not signature-checked: no gpg"
		if command -v gpg >/dev/null; then
			export GNUPGHOME=$k/gnupg; mkdir -m 700 "$GNUPGHOME"
			if [ -n "${KERNEL_ORG_KEY:-}" ]; then
				gpg --batch -q --import "$KERNEL_ORG_KEY" 2>/dev/null || true
			else
				timeout 60 gpg --batch -q --auto-key-locate clear,nodefault,wkd \
				    --locate-keys autosigner@kernel.org >/dev/null 2>&1 || true
			fi
			if gpg --batch --with-colons --list-keys "$AUTOSIGNER_FPR" >/dev/null 2>&1; then
				st=$(gpg --batch --status-fd 1 --output "$k/sha256sums" --decrypt "$sums" 2>/dev/null) &&
				grep -q "^\[GNUPG:\] VALIDSIG .* $AUTOSIGNER_FPR\$" <<<"$st" ||
					{ gpgconf --kill all 2>/dev/null || true
					  die "sha256sums.asc is not validly signed by $AUTOSIGNER_FPR"; }
				sums=$k/sha256sums signed="signature checked"
			else
				signed="not signature-checked: the autosigner key could not be had"
			fi
			gpgconf --kill all 2>/dev/null || true
			unset GNUPGHOME
		fi
		awk -v f="$tarball" '$2 == f' "$sums" > "$k/$tarball.sha256"
		[ "$(wc -l < "$k/$tarball.sha256")" = 1 ] ||
			die "sha256sums.asc lists no single sha256 for $tarball"
		echo "kernel source: sha256 from kernel.org's sha256sums.asc ($signed)"
		fetch "$tarball"
		(cd "$k" && sha256sum -c --quiet "$tarball.sha256") ||
			die "$tarball does not match the sha256 kernel.org publishes; not used"
		mv "$k/$tarball.sha256" "$k/$tarball" "$CACHE/"
		rm -rf "$k"
		unpack_tar "$CACHE/$tarball"
		origin="kernel.org $tarball"
	fi
fi

version=$(make -s -C "$dest.tmp" kernelversion)
case $version in 6.12.*) ;; *) die "$version is not 6.12.x" ;; esac
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
