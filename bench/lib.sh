# Benchmark helpers, sourced by bench/run and each bench/<tool>.sh.
#
# bench_compare LABEL TARGET 'our command' 'stock command'
#   runs each command BENCH_RUNS times (default 5) alternately after one warm-up run each,
#   and prints a table row: label, our median, the stock median, the ratio ours/stock, and
#   the target it must meet (for example "<=1.0"). Commands run under `bash -c` with
#   pipefail; a failing command aborts the benchmark. Set BENCH_SETUP to a command run before
#   every timed run of either command (for example removing the previous output).
set -euo pipefail

BENCH_RUNS=${BENCH_RUNS:-5}
BENCH_SETUP=${BENCH_SETUP:-}

bench_time_ns() {
    local start end
    [ -z "$BENCH_SETUP" ] || bash -o pipefail -c "$BENCH_SETUP" >/dev/null 2>&1
    start=$(date +%s%N)
    if ! bash -o pipefail -c "$1" >/dev/null 2>"$BENCH_WORK/last.err"; then
        echo "bench: command failed: $1" >&2
        cat "$BENCH_WORK/last.err" >&2
        return 1
    fi
    end=$(date +%s%N)
    echo $((end - start))
}

bench_median() {
    sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print int((a[NR / 2] + a[NR / 2 + 1]) / 2) }'
}

bench_header() {
    printf '%-44s %12s %12s %8s %8s\n' "benchmark" "ours (s)" "stock (s)" "ratio" "target"
}

bench_compare() {
    local label=$1 target=$2 ours=$3 stock=$4 i
    local -a t_ours=() t_stock=()
    bench_time_ns "$ours" >/dev/null
    bench_time_ns "$stock" >/dev/null
    for ((i = 0; i < BENCH_RUNS; i++)); do
        t_ours+=("$(bench_time_ns "$ours")")
        t_stock+=("$(bench_time_ns "$stock")")
    done
    local m_ours m_stock
    m_ours=$(printf '%s\n' "${t_ours[@]}" | bench_median)
    m_stock=$(printf '%s\n' "${t_stock[@]}" | bench_median)
    awk -v l="$label" -v o="$m_ours" -v s="$m_stock" -v t="$target" 'BEGIN {
        r = (s > 0) ? o / s : 0
        limit = substr(t, 3) + 0
        verdict = (r <= limit) ? "" : "  MISSED"
        printf "%-44s %12.3f %12.3f %8.2f %8s%s\n", l, o / 1e9, s / 1e9, r, t, verdict
    }' | tee -a "$BENCH_WORK/results"
}

# A line of extra information under the table (sizes, memory, per-stage times).
bench_note() {
    printf '  %s\n' "$*" | tee -a "$BENCH_WORK/results"
}

# bench_home_tree DIR: the generated 20,000-entry home directory (420 directories, 18,000
# small files, three 16 MiB files, a 1 GiB sparse file, 800 symlinks, 776 extra hard
# links); deterministic (awk's srand(1)).
bench_home_tree() {
    local root=$1 i
    mkdir -p "$root"
    awk -v root="$root" 'BEGIN { for (i = 0; i < 20; i++) for (j = 0; j < 20; j++)
        printf "%s/proj%02d/src%02d\n", root, i, j }' | xargs mkdir -p
    awk -v root="$root" 'BEGIN {
        srand(1)
        chunk = ""
        for (c = 0; c < 128; c++) chunk = chunk sprintf("%c", 97 + c % 26)
        text = ""
        for (c = 0; c < 64; c++) text = text chunk
        for (i = 0; i < 20; i++) for (j = 0; j < 20; j++) for (k = 0; k < 45; k++) {
            f = sprintf("%s/proj%02d/src%02d/file%02d.txt", root, i, j, k)
            printf "%s", substr(text, 1, int(rand() * 6000)) > f
            close(f)
        }
    }'
    for i in 1 2 3; do
        head -c $((16 << 20)) /dev/urandom > "$root/proj0$i/archive.bin"
    done
    truncate -s 1G "$root/disk.img"
    printf 'end' >> "$root/disk.img"
    for i in $(seq 0 799); do
        ln -s "../src00/file$(printf %02d $((i % 45))).txt" \
            "$root/proj$(printf %02d $((i % 20)))/src$(printf %02d $((i / 20 % 20)))/link$i"
    done
    for i in $(seq 0 775); do
        ln "$root/proj$(printf %02d $((i % 20)))/src00/file$(printf %02d $((i % 45))).txt" \
            "$root/proj$(printf %02d $((i % 20)))/src19/hard$i" 2>/dev/null ||
            ln "$root/proj$(printf %02d $((i % 20)))/src01/file$(printf %02d $((i % 45))).txt" \
                "$root/proj$(printf %02d $((i % 20)))/src18/hard$i"
    done
}
