#!/usr/bin/env bash
# The version matrix: runs the test command (sql-tests/run-tests.sh) inside a
# minimal root of each Debian release given (default: trixie sid), as on a
# fresh machine of that release: the test command installs the PostgreSQL
# that release offers (bookworm 15, trixie 17, sid 18) and everything else.
#
#   bash sql-tests/matrix.sh [release...]            (as root)
#
# Roots are made with debootstrap from MIRROR into ROOTS/<release> and kept
# for the next run (a root is complete once ROOTS/<release>/.makini-root
# exists; a half-made one is made again).  Each run copies the working tree
# into the root afresh.  Everything runs in private mount and PID namespaces
# (mounts and processes end with the run, whatever happens); the tests run
# in their own network namespace too, so the simulator's port 18765 never
# meets another run's.  Prints each release's output, then one line a
# release "<release>: N passed, M failed", and as its last line the sum
# "N passed, M failed".  Exit status 0 only if nothing failed.  The output,
# pg_regress's results and diffs of each release stay in LOGS.
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MIRROR=${MIRROR:-http://deb.debian.org/debian}
ROOTS=${ROOTS:-/var/cache/makini_fdw/roots}
LOGS=${LOGS:-/var/cache/makini_fdw/logs}
MARKER=.makini-root
SRC=/usr/src/makini_fdw		# where the tree goes inside a root

log() { printf '==> %s\n' "$*" >&2; }

[ "$(id -u)" = 0 ] || { log "matrix.sh needs root (debootstrap, chroot, namespaces)"; exit 1; }
command -v debootstrap >/dev/null || { log "matrix.sh needs debootstrap (apt-get install debootstrap)"; exit 1; }

# Runs debootstrap for a release into dir, in a private mount namespace (the
# mounts it makes inside the target die with it), once more on a failure.
run_debootstrap() {
	local rel=$1 dir=$2 try
	for try in 1 2; do
		rm -rf --one-file-system "$dir"
		if unshare -m --propagation private \
			debootstrap --variant=minbase "$rel" "$dir" "$MIRROR" >"$LOGS/debootstrap-$rel.log" 2>&1; then
			return 0
		fi
		log "debootstrap $rel failed (try $try): $(tail -1 "$LOGS/debootstrap-$rel.log")"
		sleep 5
	done
	return 1
}

# Makes ROOTS/<release> unless a complete one is there: a minimal Debian with
# apt set up for a chroot (no services started by package scripts; a stale
# Release file, as sid's on the mirror, accepted).
ensure_root() {
	local rel=$1 root=$ROOTS/$1
	[ -f "$root/$MARKER" ] && return 0
	log "$rel: making a minimal root in $root (debootstrap from $MIRROR)"
	rm -rf --one-file-system "$root"
	run_debootstrap "$rel" "$root.tmp" || return 1
	echo 'Acquire::Check-Valid-Until "false";' >"$root.tmp/etc/apt/apt.conf.d/99makini-matrix"
	printf '#!/bin/sh\n# no services in a chroot\nexit 101\n' >"$root.tmp/usr/sbin/policy-rc.d"
	chmod 755 "$root.tmp/usr/sbin/policy-rc.d"
	mv "$root.tmp" "$root"
	touch "$root/$MARKER"
}

# Copies the working tree (without build output) to SRC inside the root.
copy_tree() {
	local root=$1
	rm -rf --one-file-system "$root$SRC"
	mkdir -p "$root$SRC"
	tar -C "$TOP" --exclude=.git --exclude='*.o' --exclude='*.so' --exclude='*.bc' \
		--exclude=results --exclude=regression.diffs --exclude=regression.out -cf - . |
		tar -C "$root$SRC" -xf -
}

# Runs a shell command in the root, in new mount and PID namespaces (and a
# new network namespace with only a loopback if the first argument is
# "offline"): /proc, /dev and a fresh /tmp mounted, unmounted on exit.
in_root() {
	local net=$1 root=$2 cmd=$3
	local ns=(-m -p -f --propagation private)
	[ "$net" = offline ] && ns+=(-n)
	cp -L /etc/resolv.conf "$root/etc/resolv.conf"
	unshare "${ns[@]}" bash -c '
		set -e
		root=$1 net=$2 cmd=$3
		trap "umount -R \"$root/dev\" \"$root/proc\" \"$root/tmp\" 2>/dev/null || true" EXIT
		[ "$net" = offline ] && ip link set lo up
		mount -t proc proc "$root/proc"
		mount --rbind /dev "$root/dev"
		mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
		chroot "$root" /bin/bash -c "$cmd"' in_root "$root" "$net" "$cmd"
}

# One release: the root, the tree, the test command's own install step (with
# the network), then the test command itself (without).  Prints the output;
# the closing line is what the caller reads.
run_release() {
	local rel=$1 root=$ROOTS/$1
	ensure_root "$rel" || { echo "debootstrap of $rel failed"; return 1; }
	copy_tree "$root"
	log "$rel: installing what the test command needs"
	in_root online "$root" "cd $SRC && source sql-tests/lib.sh && install_deps" || return 1
	log "$rel: the test command"
	in_root offline "$root" "cd $SRC && bash sql-tests/run-tests.sh"
}

# Keeps what pg_regress left in the root (results/, regression.diffs) in
# LOGS/<release>-results: where a new expected/NAME_1.out comes from.
keep_results() {
	local rel=$1 src=$ROOTS/$1$SRC
	rm -rf "$LOGS/$rel-results"
	mkdir -p "$LOGS/$rel-results"
	cp -a "$src/results" "$LOGS/$rel-results/" 2>/dev/null || true
	cp -a "$src/regression.diffs" "$LOGS/$rel-results/" 2>/dev/null || true
}

mkdir -p "$ROOTS" "$LOGS"
releases=("$@")
[ ${#releases[@]} -gt 0 ] || releases=(trixie sid)
for rel in "${releases[@]}"; do
	[[ $rel =~ ^[a-z][a-z0-9-]*$ ]] || { log "usage: matrix.sh [release...] (Debian code names, e.g. trixie sid)"; exit 2; }
done

total_passed=0
total_failed=0
summary=()
for rel in "${releases[@]}"; do
	start=$SECONDS
	log "=== $rel"
	set +e
	run_release "$rel" 2>&1 | tee "$LOGS/$rel.log"
	set -e
	keep_results "$rel"
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$LOGS/$rel.log" | tail -1)
	[ -n "$line" ] || line="0 passed, 1 failed"	# it did not get to run
	pg=$(grep -oE '^==> PostgreSQL [0-9]+' "$LOGS/$rel.log" | tail -1 | sed 's/^==> //')
	summary+=("$rel (${pg:-PostgreSQL ?}, $((SECONDS - start)) s): $line")
	total_passed=$((total_passed + ${line%% passed*}))
	line=${line#*, }
	total_failed=$((total_failed + ${line%% failed}))
done

printf '%s\n' "${summary[@]}"
echo "$total_passed passed, $total_failed failed"
[ "$total_failed" = 0 ]
