# clonecp: a 1 GiB sparse image holding 128 MiB of data in 1 MiB pieces scattered over it.
# On the host file system against cp --sparse=always, both followed by a flush of the copy
# (clonecp fsyncs the copy and its directory before it reports success; cp does not, so the
# stock command gets a `sync` of the copy to do the same work). As root, from a tmpfs to the
# host file system (the read/write fallback), and on XFS (xfsprogs and a loop device) the
# clone against cp --reflink=always. Sourced by bench/run.

clonecp_image() {
    local img=$1 i
    truncate -s 1G "$img"
    for ((i = 0; i < 128; i++)); do
        # Every 8 MiB, at an offset that is not a multiple of the piece size.
        dd if=/dev/urandom of="$img" bs=64K count=16 seek=$((i * 128 + 3)) conv=notrunc \
            status=none
    done
    sync "$img"
}

clonecp_method() {
    sed 's/.*"method":"\([a-z_]*\)".*/\1/'
}

clonecp_sizes() {
    local f
    for f in "$@"; do
        printf '%s=%s ' "$(basename "$f")" "$(du -B1 "$f" | cut -f1)"
    done
}

clonecp_bench() {
    local w=$BENCH_WORK/clonecp
    mkdir -p "$w"
    clonecp_image "$w/seed.img"

    BENCH_SETUP="rm -f '$w/ours.img' '$w/stock.img'" bench_compare \
        "clonecp vs cp --sparse=always (host fs)" "<=1.1" \
        "'$BIN/clonecp' '$w/seed.img' '$w/ours.img'" \
        "cp --reflink=auto --sparse=always '$w/seed.img' '$w/stock.img' && sync '$w/stock.img'"
    # One more run of each, kept for the checks and the sizes.
    rm -f "$w/ours.img" "$w/stock.img"
    local method
    method=$("$BIN/clonecp" --json "$w/seed.img" "$w/ours.img" | clonecp_method)
    cp --reflink=auto --sparse=always "$w/seed.img" "$w/stock.img" && sync "$w/stock.img"
    cmp "$w/seed.img" "$w/ours.img"
    bench_note "host fs $(df --output=fstype "$w" | tail -1): clonecp method $method; allocated bytes:" \
        "$(clonecp_sizes "$w/seed.img" "$w/ours.img" "$w/stock.img")"
    rm -f "$w/ours.img" "$w/stock.img"

    # Across file systems (tmpfs to the host): the read/write fallback.
    if [ "$(id -u)" != 0 ]; then
        bench_note "SKIPPED: tmpfs to host fs (mounting tmpfs needs root)"
    else
        mkdir -p "$w/tmpfs"
        mount -t tmpfs -o size=512m tmpfs "$w/tmpfs"
        (
            trap 'umount "$w/tmpfs"' EXIT
            cp --sparse=always "$w/seed.img" "$w/tmpfs/seed.img"
            BENCH_SETUP="rm -f '$w/ours.img' '$w/stock.img'" bench_compare \
                "clonecp vs cp --sparse=always (tmpfs->host)" "<=1.1" \
                "'$BIN/clonecp' '$w/tmpfs/seed.img' '$w/ours.img'" \
                "cp --reflink=auto --sparse=always '$w/tmpfs/seed.img' '$w/stock.img' && sync '$w/stock.img'"
            rm -f "$w/ours.img" "$w/stock.img"
            local method
            method=$("$BIN/clonecp" --json "$w/tmpfs/seed.img" "$w/ours.img" | clonecp_method)
            cp --reflink=auto --sparse=always "$w/tmpfs/seed.img" "$w/stock.img"
            sync "$w/stock.img"
            cmp "$w/tmpfs/seed.img" "$w/ours.img"
            bench_note "tmpfs->host: clonecp method $method; allocated bytes:" \
                "$(clonecp_sizes "$w/ours.img" "$w/stock.img")"
            rm -f "$w/ours.img" "$w/stock.img"
        )
    fi

    local why=""
    if [ "$(id -u)" != 0 ]; then
        why="not root"
    elif ! command -v mkfs.xfs >/dev/null; then
        why="mkfs.xfs not installed (apt-get install xfsprogs)"
    fi
    if [ -z "$why" ]; then
        truncate -s 2G "$w/xfs.img"
        mkdir -p "$w/xfs"
        if ! mkfs.xfs -q -m reflink=1 "$w/xfs.img" || ! mount -o loop "$w/xfs.img" "$w/xfs"; then
            why="cannot make or loop-mount XFS"
        fi
    fi
    if [ -n "$why" ]; then
        bench_note "SKIPPED: clone on XFS ($why)"
    else
        # In a subshell whose exit unmounts, whatever fails.
        (
            trap 'umount "$w/xfs"' EXIT
            cp --sparse=always "$w/seed.img" "$w/xfs/seed.img" && sync "$w/xfs/seed.img"
            BENCH_SETUP="rm -f '$w/xfs/ours.img' '$w/xfs/stock.img'" bench_compare \
                "clonecp vs cp --reflink=always (XFS)" "<=1.1" \
                "'$BIN/clonecp' '$w/xfs/seed.img' '$w/xfs/ours.img'" \
                "cp --reflink=always '$w/xfs/seed.img' '$w/xfs/stock.img' && sync '$w/xfs/stock.img'"
            rm -f "$w/xfs/ours.img"
            local before method after
            before=$(df -B1 --output=avail "$w/xfs" | tail -1)
            method=$("$BIN/clonecp" --json "$w/xfs/seed.img" "$w/xfs/ours.img" | clonecp_method)
            after=$(df -B1 --output=avail "$w/xfs" | tail -1)
            cmp "$w/xfs/seed.img" "$w/xfs/ours.img"
            bench_note "XFS: clonecp method $method; free bytes before $before, after $after"
        )
    fi
    rm -rf "$w"
}

clonecp_bench
