# The amplification table (issue 15): every tool (ext4-ls -R, ext4-ls -R --hash, seed-size
# --from-image, ext4-rdump, ext4-ingest --from-image into a fresh image, work-seed) on
# every image, against what the image holds: the e2fsprogs corpus (f_many_subdirs among
# it), the crafted attack images, a 20,000-entry home tree and a rootfs of this machine's
# Debian system directories. Each run's CPU seconds, peak RSS, host bytes written and
# output bytes, against the image's allocated size A and the entries N `ext4-ls -R`
# lists; the targets are
#   CPU <= 1 s + 1 s per 64 MiB of A + 0.5 ms per entry, RSS <= 64 MiB + 4 A,
#   host bytes <= 8 A + 256 MiB, output <= 4 A + 1 MiB.
# The table is the release build of the test tools/work-seed/tests/amplification.rs
# (`make test` runs a smaller one with generous limits). Sourced by bench/run.

amp_table=$BENCH_WORK/amplification.txt
amp_dir=$(cd "$here/.." && pwd)
if (cd "$amp_dir" && AMPLIFICATION_TABLE=$amp_table nice cargo test --release --locked \
        -p work-seed --test tests -- --ignored --exact amplification::amplification_table \
        >"$BENCH_WORK/amplification.log" 2>&1); then
    verdict=""
else
    verdict="  MISSED (see the rows marked MISSED, or the test's output)"
    tail -n 20 "$BENCH_WORK/amplification.log" >&2
fi
bench_note "amplification: every tool on every image (A = allocated size, N = entries listed)"
if [ -f "$amp_table" ]; then
    sed 's/^/  /' "$amp_table" | tee -a "$BENCH_WORK/results"
fi
[ -z "$verdict" ] || bench_note "amplification:$verdict"
