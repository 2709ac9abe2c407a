# normlines against the sed | grep pipeline it replaces, on a 1-million-line (~100 MB) list.
list=$BENCH_WORK/normlines.list
if [ ! -f "$list" ]; then
    awk 'BEGIN {
        for (i = 0; i < 1000000; i++) {
            pad = substr("    ", 1, i % 4)
            name = sprintf("package-%07d-%s", i, substr("abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghij", 1, 65 + i % 20))
            if (i % 10 == 0) print "# section " i " -- a comment line that is dropped entirely\r"
            else if (i % 17 == 0) print "   \t  \r"
            else if (i % 3 == 0) print pad name "   # trailing comment, cut off here\r"
            else print pad name "\t\r"
        }
    }' > "$list"
fi
bench_compare "normlines (1M lines, $(( $(stat -c %s "$list") / 1000000 )) MB) vs sed|grep" "<=1.0" \
    "'$BIN/normlines' '$list' > /dev/null" \
    "sed -e 's/\r\$//' -e 's/#.*//' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*\$//' '$list' | grep -v '^\$' > /dev/null"
