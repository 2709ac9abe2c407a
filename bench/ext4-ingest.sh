# ext4-ingest against the stock ways of filling an image from a tree. Sourced by bench/run.
#
# Data: a generated 20,000-entry home directory (420 directories, 18,000 small files, three
# 16 MiB files, a 1 GiB sparse file, 800 symlinks, 776 extra hard links).
# Rows:
#   1. mkfs + ext4-ingest vs mkfs + `mke2fs -d` on the same tree (the fastest single-pass
#      e2fsprogs route, which cannot force ownership): target <=0.5.
#   2. ext4-ingest vs one debugfs process per entry (what the old system did), timed on the
#      first 1,000 entries and extrapolated to the whole tree: target <=0.02 (50x faster).
#   3. One directory of 50,000 empty files: ext4-ingest in at most 2 s (absolute), against
#      `mke2fs -d` run once (e2fsprogs 1.47.0 inserts each name by scanning the whole
#      directory); the directory must come out hash-indexed.
#   4. 200,000 entries in 2,000 directories: time per entry within 1.3x of row 1's, peak
#      RSS under 200 MiB (linear in the tree).

ingest_home=$BENCH_WORK/ingest-home
ingest_img=$BENCH_WORK/ingest.img

bench_home_tree "$ingest_home"
ingest_entries=$(find "$ingest_home" -mindepth 1 | wc -l)
ingest_mkfs="mke2fs -q -F -t ext4 -E lazy_itable_init=1,nodiscard"

bench_compare "ext4-ingest vs mke2fs -d (${ingest_entries} entries)" "<=0.5" \
    "$ingest_mkfs $ingest_img 2G && $BIN/ext4-ingest $ingest_img $ingest_home" \
    "$ingest_mkfs -d $ingest_home $ingest_img 2G"

# One debugfs per entry on the first 1,000 entries (parents first), commands prepared
# beforehand so only the debugfs runs are timed.
ingest_cmds=$BENCH_WORK/ingest-per-entry
(
    cd "$ingest_home"
    find . -mindepth 1 | LC_ALL=C sort > "$BENCH_WORK/ingest-list"
    sed -n 1,1000p "$BENCH_WORK/ingest-list" | while IFS= read -r p; do
        p=${p#./}
        if [ -L "$p" ]; then
            printf 'symlink "/%s" "%s"\n' "$p" "$(readlink "$p")"
        elif [ -d "$p" ]; then
            printf 'mkdir "/%s"\n' "$p"
        else
            printf 'write "%s/%s" "/%s"\n' "$ingest_home" "$p" "$p"
        fi
    done
) > "$ingest_cmds"
ingest_subset_ns=()
for _ in 1 2 3; do
    ingest_subset_ns+=("$(bench_time_ns "$ingest_mkfs $ingest_img 2G && while IFS= read -r c; do debugfs -w -R \"\$c\" $ingest_img; done < $ingest_cmds")")
done
ingest_ours_ns=()
for ((i = 0; i < BENCH_RUNS; i++)); do
    ingest_ours_ns+=("$(bench_time_ns "$ingest_mkfs $ingest_img 2G && $BIN/ext4-ingest $ingest_img $ingest_home")")
done
ingest_subset=$(printf '%s\n' "${ingest_subset_ns[@]}" | bench_median)
ingest_ours=$(printf '%s\n' "${ingest_ours_ns[@]}" | bench_median)
awk -v l="ext4-ingest vs debugfs per entry (extrap.)" -v o="$ingest_ours" \
    -v s="$ingest_subset" -v n="$ingest_entries" -v t="<=0.02" 'BEGIN {
    stock = s * n / 1000
    r = o / stock
    limit = substr(t, 3) + 0
    verdict = (r <= limit) ? "" : "  MISSED"
    printf "%-44s %12.3f %12.3f %8.4f %8s%s\n", l, o / 1e9, stock / 1e9, r, t, verdict
}' | tee -a "$BENCH_WORK/results"
bench_note "debugfs per entry: $(awk -v s="$ingest_subset" 'BEGIN { printf "%.3f", s / 1e9 }') s for 1,000 entries, extrapolated to ${ingest_entries}"

# Row 1's time per entry, for row 4.
ingest_per_entry=$(awk -v o="$ingest_ours" -v n="$ingest_entries" 'BEGIN { print o / n }')

# 3. One directory of 50,000 empty files.
ingest_wide=$BENCH_WORK/ingest-wide
mkdir -p "$ingest_wide/d"
(cd "$ingest_wide/d" && seq -f 'file-%06g' 0 49999 | xargs touch)
ingest_wide_ns=()
for ((i = 0; i < BENCH_RUNS; i++)); do
    ingest_wide_ns+=("$(bench_time_ns "$ingest_mkfs $ingest_img 1G && $BIN/ext4-ingest $ingest_img $ingest_wide")")
done
ingest_wide_ours=$(printf '%s\n' "${ingest_wide_ns[@]}" | bench_median)
debugfs -R "htree /d" "$ingest_img" 2>/dev/null | grep -q "Root node dump" ||
    bench_note "MISSED: /d of 50,000 names is not hash-indexed"
ingest_wide_stock=$(bench_time_ns "$ingest_mkfs -d $ingest_wide $ingest_img 1G")
awk -v l="ext4-ingest 50,000 files in one dir (abs.)" -v o="$ingest_wide_ours" \
    -v s="$ingest_wide_stock" -v t="<=2.0" 'BEGIN {
    limit = substr(t, 3) + 0
    verdict = (o / 1e9 <= limit) ? "" : "  MISSED"
    printf "%-44s %12.3f %12.3f %8.4f %8s%s\n", l, o / 1e9, s / 1e9, o / s, t, verdict
}' | tee -a "$BENCH_WORK/results"
bench_note "target: ext4-ingest under 2 s; stock is one run of mke2fs -d; /d is hash-indexed"
rm -rf "$ingest_wide"

# 4. 200,000 entries in 2,000 directories: per-entry time against row 1, peak RSS.
ingest_big=$BENCH_WORK/ingest-big
for d in $(seq -f '%04g' 0 1999); do
    mkdir -p "$ingest_big/d$d"
    (cd "$ingest_big/d$d" && seq -f "f%03g" 0 98 | xargs touch)
done
ingest_big_entries=$(find "$ingest_big" -mindepth 1 | wc -l)
ingest_big_ns=()
for ((i = 0; i < BENCH_RUNS; i++)); do
    ingest_big_ns+=("$(bench_time_ns "$ingest_mkfs -N 250000 $ingest_img 2G && $BIN/ext4-ingest $ingest_img $ingest_big")")
done
ingest_big_ours=$(printf '%s\n' "${ingest_big_ns[@]}" | bench_median)
$ingest_mkfs -N 250000 "$ingest_img" 2G >/dev/null
ingest_rss=$( { /usr/bin/time -f '%M' "$BIN/ext4-ingest" "$ingest_img" "$ingest_big" >/dev/null; } 2>&1 | tail -n 1)
awk -v l="ext4-ingest per entry, 200k vs 20k entries" -v o="$ingest_big_ours" \
    -v n="$ingest_big_entries" -v p="$ingest_per_entry" -v t="<=1.3" 'BEGIN {
    r = (o / n) / p
    limit = substr(t, 3) + 0
    verdict = (r <= limit) ? "" : "  MISSED"
    printf "%-44s %12.3f %12.3f %8.2f %8s%s\n", l, o / 1e9, p * n / 1e9, r, t, verdict
}' | tee -a "$BENCH_WORK/results"
awk -v k="$ingest_rss" 'BEGIN {
    verdict = (k < 200 * 1024) ? "" : "  MISSED"
    printf "  peak RSS of ext4-ingest on %s: %.1f MiB (target < 200 MiB)%s\n", "200,000 entries", k / 1024, verdict
}' | tee -a "$BENCH_WORK/results"
rm -rf "$ingest_big"
