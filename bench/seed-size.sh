# seed-size against du -sb on the same 20,000-entry tree (warm cache).
tree=$BENCH_WORK/seed-size.tree
if [ ! -d "$tree" ]; then
    mkdir -p "$tree"
    for d in $(seq -w 0 199); do
        mkdir "$tree/dir$d"
        for f in $(seq -w 0 94); do printf 'content %s %s\n' "$d" "$f" > "$tree/dir$d/file$f"; done
        for l in 0 1 2 3; do ln -s "file0$l" "$tree/dir$d/link$l"; done
    done
fi
bench_compare "seed-size vs du -sb (20,000 entries)" "<=1.5" \
    "'$BIN/seed-size' '$tree' > /dev/null" \
    "du -sb '$tree' > /dev/null"
