# The whole work-seed build against the stock route (debugfs rdump, then mke2fs -d; it loses
# ownership, holes and special files) on a rootfs whose /root is a 20,000-entry home
# directory. work-seed flushes the seed and then its directory before it reports success;
# mke2fs flushes its image when it closes it, so the stock route gets a `sync` of the
# directory too, and both do the same work. Sourced by bench/run.

ws_work=$BENCH_WORK/work-seed
mkdir -p "$ws_work/src/root" "$ws_work/bin"
for ((d = 0; d < 200; d++)); do
    dir=$ws_work/src/root/dir$d
    mkdir "$dir"
    for ((f = 0; f < 95; f++)); do
        printf 'file %d of directory %d\n' "$f" "$d" > "$dir/file$f"
    done
    for l in 0 1 2; do ln -s "file$l" "$dir/link$l"; done
    ln "$dir/file0" "$dir/hard0"
done
head -c 8M /dev/urandom > "$ws_work/src/root/blob.bin"
printf 'start' > "$ws_work/src/root/sparse.img"
truncate -s 1G "$ws_work/src/root/sparse.img"
mkdir -p "$ws_work/src/etc" && echo bench > "$ws_work/src/etc/hostname"
mke2fs -q -F -t ext4 -N 32768 -d "$ws_work/src" "$ws_work/rootfs.ext4" 256M >/dev/null
rm -rf "$ws_work/src"
cp "$BIN/ext4-rdump" "$BIN/seed-size" "$BIN/ext4-ingest" "$BIN/ext4-ls" "$BIN/work-seed-summary" \
    "$BIN/work-seed-fs" "$here/../tools/work-seed/work-seed" "$here/../tools/work-seed/work-seed-lib.sh" \
    "$ws_work/bin/"

# Both routes stage 20,000 files on the host. This host's disk file system spends ~0.7 ms of
# kernel time on every file creation, which swamps both routes alike and measures the disk,
# not the tools; so both stages go to tmpfs when there is one (as bench/ext4-rdump.sh does).
ws_tmp=$ws_work
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    ws_tmp=$(mktemp -d /dev/shm/work-seed-bench.XXXXXX)
fi

ws_size=$("$BIN/ext4-rdump" -o "$ws_work/probe" "$ws_work/rootfs.ext4" /root | "$BIN/seed-size")
chmod -R u+rwX "$ws_work/probe"; rm -rf "$ws_work/probe" "$ws_work/probe.manifest.jsonl"

BENCH_SETUP="rm -rf $ws_work/ours.ext4 $ws_work/stock.ext4 $ws_tmp/stage && mkdir $ws_tmp/stage" \
    bench_compare "work-seed build vs debugfs rdump + mke2fs -d" "<=1.0" \
    "TMPDIR=$ws_tmp PATH=$ws_work/bin:/usr/sbin:/sbin:\$PATH work-seed -q $ws_work/rootfs.ext4 $ws_work/ours.ext4" \
    "debugfs -R 'rdump /root $ws_tmp/stage' $ws_work/rootfs.ext4 2>/dev/null && mke2fs -q -F -t ext4 -d $ws_tmp/stage/root $ws_work/stock.ext4 $ws_size && sync $ws_work"

rm -f "$ws_work/ours.ext4"
ws_json=$(TMPDIR=$ws_tmp PATH=$ws_work/bin:/usr/sbin:/sbin:$PATH work-seed --json "$ws_work/rootfs.ext4" "$ws_work/ours.ext4")
bench_note "work-seed: stages in $ws_tmp"
bench_note "work-seed: per stage (s): $(printf '%s' "$ws_json" | sed 's/.*"seconds":{\([^}]*\)}.*/\1/')"
bench_note "work-seed: seed on disk $(du -k "$ws_work/ours.ext4" | cut -f1) KiB, stock route $(du -k "$ws_work/stock.ext4" 2>/dev/null | cut -f1) KiB (the 1 GiB sparse file: kept sparse vs written out)"
[ "$ws_tmp" = "$ws_work" ] || rm -rf "$ws_tmp"
