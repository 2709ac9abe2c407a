# `work-seed --check` against `cmp` of the two files it compares, once extracted: a rootfs
# whose /root holds one 300 MB file, and its seed. --check reads the file from both images
# side by side; cmp reads the two extracted copies (from the page cache, as the images are).
# Sourced by bench/run.

wc_work=$BENCH_WORK/work-seed-check
mkdir -p "$wc_work/src/root" "$wc_work/bin"
head -c 300M /dev/urandom > "$wc_work/src/root/big"
mke2fs -q -F -t ext4 -d "$wc_work/src" "$wc_work/rootfs.ext4" 512M >/dev/null
rm -rf "$wc_work/src"
cp "$BIN/ext4-rdump" "$BIN/seed-size" "$BIN/ext4-ingest" "$BIN/ext4-ls" "$BIN/work-seed-summary" \
    "$BIN/work-seed-fs" "$here/../tools/work-seed/work-seed" "$here/../tools/work-seed/work-seed-lib.sh" \
    "$wc_work/bin/"
PATH=$wc_work/bin:/usr/sbin:/sbin:$PATH work-seed -q "$wc_work/rootfs.ext4" "$wc_work/seed.ext4"
debugfs -R "dump /root/big $wc_work/rootfs.big" "$wc_work/rootfs.ext4" 2>/dev/null
debugfs -R "dump /big $wc_work/seed.big" "$wc_work/seed.ext4" 2>/dev/null

bench_compare "work-seed --check (one 300 MB file) vs cmp" "<=1.5" \
    "PATH=$wc_work/bin:/usr/sbin:/sbin:\$PATH work-seed --check $wc_work/rootfs.ext4 $wc_work/seed.ext4" \
    "cmp $wc_work/rootfs.big $wc_work/seed.big"
bench_note "work-seed --check: sha256sum of one side takes $(
    start=$(date +%s%N); sha256sum "$wc_work/rootfs.big" >/dev/null; end=$(date +%s%N)
    awk -v t=$((end - start)) 'BEGIN { printf "%.3f", t / 1e9 }'
) s"
rm -rf "$wc_work"
