# The sources with nothing staged on the host (issue 17). Sourced by bench/run.
#
# Rows:
#   1. work-seed, image to image (its default route: seed-size --from-image, mkfs,
#      ext4-ingest --verify --from-image, the --check comparison, e2fsck -fn, the durable
#      publish) against the stock route (ext4-rdump to a stage, then mke2fs -d, and a sync
#      of the output's directory), on a rootfs whose /root is the 20,000-entry home tree:
#      target <=0.3.
#   2. ext4-ingest --from-tar of that tree as GNU tar writes it (--format=posix --sparse)
#      against mke2fs -d of the tree extracted: target <=0.5.
#   3. As root, on a loop-mounted XFS with reflink: a /root holding 1 GiB of data seeds,
#      verified, in under 2 s (absolute), with fewer than 128 MiB of new blocks on the host.

src_work=$BENCH_WORK/sources
mkdir -p "$src_work/rootfs/etc"
bench_home_tree "$src_work/rootfs/root"
echo bench > "$src_work/rootfs/etc/hostname"
src_entries=$(find "$src_work/rootfs/root" -mindepth 1 | wc -l)
src_mkfs="mke2fs -q -F -t ext4 -E lazy_itable_init=1,nodiscard"
$src_mkfs -N 40000 -d "$src_work/rootfs" "$src_work/rootfs.ext4" 3G >/dev/null
tar -C "$src_work/rootfs/root" --format=posix --sparse -cf "$src_work/home.tar" .
rm -rf "$src_work/rootfs"

# The stage of the stock route goes to tmpfs when there is one, as bench/work-seed.sh does.
src_tmp=$src_work
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    src_tmp=$(mktemp -d /dev/shm/sources-bench.XXXXXX)
fi
src_size=$("$BIN/seed-size" --from-image "$src_work/rootfs.ext4" /root)

# An image-to-image build: work-seed itself, with the workspace's tools.
src_bin=$src_work/bin
mkdir -p "$src_bin"
cp "$BIN/seed-size" "$BIN/ext4-ingest" "$BIN/ext4-ls" "$BIN/work-seed-summary" "$BIN/work-seed-fs" \
    "$here/../tools/work-seed/work-seed" "$here/../tools/work-seed/work-seed-lib.sh" "$src_bin/"
src_seed() {
    PATH=$src_bin:/usr/sbin:/sbin:$PATH work-seed -q "$1" "$2"
}
export -f src_seed
export src_bin

BENCH_SETUP="rm -rf $src_work/seed.ext4 $src_work/stock.ext4 $src_tmp/stage $src_tmp/stage.manifest.jsonl" \
    bench_compare "seed image to image vs rdump + mke2fs -d" "<=0.3" \
    "src_seed $src_work/rootfs.ext4 $src_work/seed.ext4" \
    "$BIN/ext4-rdump -o $src_tmp/stage $src_work/rootfs.ext4 /root >/dev/null && $src_mkfs -d $src_tmp/stage $src_work/stock.ext4 $src_size && sync $src_work"

mkdir -p "$src_work/extracted"
tar -C "$src_work/extracted" -xf "$src_work/home.tar"
BENCH_SETUP="rm -f $src_work/tar.ext4" \
    bench_compare "ext4-ingest --from-tar vs mke2fs -d (${src_entries} entries)" "<=0.5" \
    "$src_mkfs $src_work/tar.ext4 2G && $BIN/ext4-ingest $src_work/tar.ext4 --from-tar $src_work/home.tar" \
    "$src_mkfs -d $src_work/extracted $src_work/tar.ext4 2G"
bench_note "tar stream: $(($(stat -c %s "$src_work/home.tar") >> 20)) MiB, GNU tar --format=posix --sparse"
rm -rf "$src_work/extracted" "$src_work/home.tar"
[ "$src_tmp" = "$src_work" ] || rm -rf "$src_tmp"

# 3. 1 GiB of data shared with the rootfs image on XFS.
if [ "$(id -u)" -eq 0 ] && command -v mkfs.xfs >/dev/null; then
    src_xfs=$src_work/xfs
    mkdir -p "$src_xfs"
    truncate -s 4G "$src_work/xfs.img"
    mkfs.xfs -q -m reflink=1 "$src_work/xfs.img"
    mount -o loop "$src_work/xfs.img" "$src_xfs"
    mkdir -p "$src_work/one-gib/root"
    head -c 1G /dev/urandom > "$src_work/one-gib/root/data.bin"
    echo small > "$src_work/one-gib/root/.profile"
    $src_mkfs -b 4096 -d "$src_work/one-gib" "$src_xfs/rootfs.ext4" 1200M >/dev/null
    rm -rf "$src_work/one-gib"
    src_times=()
    src_new=()
    for ((i = 0; i < BENCH_RUNS; i++)); do
        rm -f "$src_xfs/seed.ext4"
        sync
        src_free=$(df -B1 --output=avail "$src_xfs" | tail -n 1)
        src_times+=("$(bench_time_ns "src_seed $src_xfs/rootfs.ext4 $src_xfs/seed.ext4")")
        sync
        src_new+=($((src_free - $(df -B1 --output=avail "$src_xfs" | tail -n 1))))
    done
    src_t=$(printf '%s\n' "${src_times[@]}" | bench_median)
    src_n=$(printf '%s\n' "${src_new[@]}" | bench_median)
    awk -v l="seed of 1 GiB /root on XFS, verified (abs.)" -v o="$src_t" -v n="$src_n" -v t="<=2.0" 'BEGIN {
        limit = substr(t, 3) + 0
        verdict = (o / 1e9 <= limit && n < 128 * 1048576) ? "" : "  MISSED"
        printf "%-44s %12.3f %12s %8s %8s%s\n", l, o / 1e9, "-", "-", t, verdict
    }' | tee -a "$BENCH_WORK/results"
    bench_note "new blocks on the XFS host per seed: $((src_n >> 20)) MiB (target < 128 MiB; the data is shared with the rootfs image)"
    umount "$src_xfs"
    rm -f "$src_work/xfs.img"
else
    bench_note "seed of 1 GiB /root on XFS: skipped (needs root and mkfs.xfs)"
fi
rm -rf "$src_work"
