# Sourced by prepare-tree.sh and export-patches.sh: which patches make the
# series, and the record of which series the kernel tree's HEAD carries
# (KSRC/.git/offload-applied: "<hash of the patches> <HEAD commit>").

# The series' patches in order, without the cover letter.
series_patches() {	# PATCHDIR
	ls "$1"/*.patch 2>/dev/null | grep -v '/0000-' || true
}

series_hash() {		# PATCHDIR
	cat $(series_patches "$1") | sha256sum | cut -c1-16
}

# Record that the tree's HEAD is the series in PATCHDIR.
series_record() {	# KSRC PATCHDIR
	echo "$(series_hash "$2") $(git -C "$1" rev-parse HEAD)" > "$1/.git/offload-applied"
}
