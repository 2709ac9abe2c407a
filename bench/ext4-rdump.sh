# ext4-rdump against `debugfs -R "rdump DIR DEST"` on the same image: a 20,000-entry home
# directory holding a 1 GiB sparse file, made with mkfs.ext4 -d; both run as the same
# unprivileged user (nobody, via setpriv, when we are root). Sourced by bench/run.

rd_work=$BENCH_WORK/ext4-rdump
mkdir -p "$rd_work/src/home/user" "$rd_work/bin"
# Where both tools write their trees. This host's disk file system spends ~0.8 ms of
# kernel time on every file creation, which swamps both tools equally and measures the disk,
# not the tools; so the trees go to tmpfs when there is one (BENCH_RDUMP_OUT overrides).
rd_out=${BENCH_RDUMP_OUT:-}
if [ -z "$rd_out" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
    rd_out=$(mktemp -d /dev/shm/ext4-rdump-bench.XXXXXX)
    trap 'chmod -R u+rwX "$BENCH_WORK" "$rd_out" 2>/dev/null; rm -rf "$BENCH_WORK" "$rd_out"' EXIT
fi
rd_out=${rd_out:-$rd_work}
for ((d = 0; d < 200; d++)); do
    dir=$rd_work/src/home/user/dir$d
    mkdir "$dir"
    for ((f = 0; f < 99; f++)); do
        printf 'file %d of directory %d\n' "$f" "$d" > "$dir/file$f"
    done
done
printf 'start' > "$rd_work/src/home/user/sparse.img"
truncate -s 1G "$rd_work/src/home/user/sparse.img"
mke2fs -q -F -t ext4 -N 32768 -d "$rd_work/src" "$rd_work/home.ext4" 256M >/dev/null
rm -rf "$rd_work/src"
cp "$BIN/ext4-rdump" "$rd_work/bin/"
chmod 755 "$rd_work/bin/ext4-rdump"

rd_as=""
if [ "$(id -u)" = 0 ]; then
    chmod 755 "$BENCH_WORK"
    chown -R 65534:65534 "$rd_work" "$rd_out"
    chmod 755 "$rd_out"
    rd_as="setpriv --reuid=65534 --regid=65534 --clear-groups"
fi
rd_mkdir="$rd_as mkdir $rd_out/stock"

BENCH_SETUP="rm -rf $rd_out/ours $rd_out/ours.manifest.jsonl $rd_out/stock && $rd_mkdir" \
    bench_compare "ext4-rdump vs debugfs rdump" "<=0.5" \
    "$rd_as $rd_work/bin/ext4-rdump -o $rd_out/ours $rd_work/home.ext4 /home/user" \
    "$rd_as debugfs -R 'rdump /home/user $rd_out/stock' $rd_work/home.ext4"

# Peak memory of one run of each, in KiB (GNU time when present, else the kernel's
# high-water mark of the process read from /proc by a wrapper shell).
rd_peak() {
    if [ -x /usr/bin/time ]; then
        /usr/bin/time -f %M bash -c "$1" 2>&1 >/dev/null | tail -1
    else
        bash -c "$1 & pid=\$!; peak=0; while kill -0 \$pid 2>/dev/null; do
            v=\$(awk '/VmHWM/ {print \$2}' /proc/\$pid/status 2>/dev/null); [ -n \"\$v\" ] && peak=\$v
            sleep 0.01; done; echo \$peak" 2>/dev/null | tail -1
    fi
}
rm -rf "$rd_out/ours" "$rd_out/ours.manifest.jsonl" "$rd_out/stock"
bash -c "$rd_mkdir"
rd_ours_kib=$(rd_peak "$rd_as $rd_work/bin/ext4-rdump -o $rd_out/ours $rd_work/home.ext4 /home/user 2>/dev/null")
rd_stock_kib=$(rd_peak "$rd_as debugfs -R 'rdump /home/user $rd_out/stock' $rd_work/home.ext4 2>/dev/null")
rd_entries=$(($(wc -l < "$rd_out/ours.manifest.jsonl") - 2))
rd_ours_du=$(du -sk "$rd_out/ours" | cut -f1)
rd_stock_du=$(du -sk "$rd_out/stock" | cut -f1)
rm -rf "$rd_out/ours" "$rd_out/ours.manifest.jsonl" "$rd_out/stock"
bench_note "ext4-rdump: trees written to $rd_out"
bench_note "ext4-rdump: $rd_entries entries in /home/user; peak memory ours ${rd_ours_kib} KiB, debugfs ${rd_stock_kib} KiB (target < 65536 KiB)"
bench_note "ext4-rdump: tree on disk ours ${rd_ours_du} KiB, debugfs ${rd_stock_du} KiB (the 1 GiB sparse file stays sparse)"
if [ "${rd_ours_kib:-0}" -ge 65536 ]; then
    bench_note "ext4-rdump: peak memory target MISSED"
fi
