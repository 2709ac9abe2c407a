# work-seed-lib.sh: what the scripts work-seed and work-disk share, sourced by both (it is
# installed beside them). POSIX sh, on Linux (/proc/self/fd). See work-seed(1).
#
# Before sourcing, a script sets `prog` (its name, which begins its messages) and
# `lib_here` (its own directory, where the toolkit's programs are looked for first), and
# `what` (what it is doing, "building 'OUTPUT'", the start of its error lines) before
# calling anything here.
#
# The output rule (the same as the Rust tools', see seedkit's `output` module): OUTPUT's
# directory is resolved once and held open on descriptor 8 (`output_dir`), and checked;
# everything temporary is made in a private 0700 directory of ours in it, held open on
# descriptor 9 and locked with flock for as long as the build (or any of its steps) runs
# (`private_dir`); the steps reach both only as /proc/self/fd/8 and /proc/self/fd/9, which
# the kernel resolves to the open directories whatever has been renamed since; the result
# is published by one rename relative to them, the file flushed before and the directory
# after (`publish`). A build killed with SIGKILL leaves its temporary, unlocked: the next
# build in the same place removes it, and says so. Descriptors 6 and 7 are a second such
# pair (work-seed's stage under TMPDIR); 5 is open only while a temporary is made.

: "${prog:?set by the script that sources work-seed-lib.sh}"
: "${lib_here:?set by the script that sources work-seed-lib.sh}"
what=${what:-$prog}

# die MESSAGE...: "PROG: MESSAGE" on stderr, and exit 2.
die() {
    printf '%s: %s\n' "$prog" "$*" >&2
    exit 2
}

# find_tool NAME: the program's path: beside the script (installed together), else on
# PATH, else in sbin (e2fsprogs lives there, and an ordinary user's PATH may lack it).
find_tool() {
    if [ -f "$lib_here/$1" ] && [ -x "$lib_here/$1" ]; then
        printf '%s\n' "$lib_here/$1"
    elif command -v "$1" >/dev/null 2>&1; then
        command -v "$1"
    else
        for lib_d in /usr/sbin /sbin; do
            if [ -f "$lib_d/$1" ] && [ -x "$lib_d/$1" ]; then
                printf '%s\n' "$lib_d/$1"
                return 0
            fi
        done
        die "$what: $1 not found (install it or put it on PATH)"
    fi
}

# The helper for what sh cannot do safely: checks, temporaries, locks, the publish.
lib_fs=
fs_step() {
    [ -n "$lib_fs" ] || lib_fs=$(find_tool work-seed-fs)
    "$lib_fs" --prog "$prog" --what "$what" "$@"
}

# version: "PROG VERSION", the version the toolkit was built with.
version() {
    lib_fs=$(find_tool work-seed-fs)
    lib_v=$("$lib_fs" --version) || exit 2
    printf '%s %s\n' "$prog" "${lib_v##* }"
}

# parse_size SIZE: SIZE in bytes: digits and an optional K, M, G or T (powers of 1024), at
# most 4 EiB (the shell's 64-bit arithmetic must not wrap).
parse_size() {
    case $1 in
        '' | *[!0-9KMGT]* | [!0-9]* | *[KMGT]?*) die "size '$1': not a number of bytes with an optional K, M, G or T" ;;
    esac
    lib_digits=${1%[KMGT]}
    case $1 in
        *K) lib_shift=10 ;; *M) lib_shift=20 ;; *G) lib_shift=30 ;; *T) lib_shift=40 ;; *) lib_shift=0 ;;
    esac
    if [ ${#lib_digits} -gt 18 ] || [ "$lib_digits" -gt $((1 << (62 - lib_shift))) ]; then
        die "size '$1': too large"
    fi
    printf '%s\n' $((lib_digits << lib_shift))
}

# now: nanoseconds since the epoch.
now() {
    fs_step now
}

# step COMMAND...: run a step in the background, so that a signal interrupts the wait at
# once; its exit status. The step's own stderr goes through untouched.
lib_child=
step() {
    "$@" &
    lib_child=$!
    lib_rc=0
    wait "$lib_child" || lib_rc=$?
    lib_child=
    return "$lib_rc"
}

# output_dir OUTPUT: open OUTPUT's directory on descriptor 8 and check it (owned by the
# caller or root, writable by no one else unless sticky); sets out_name, OUTPUT's last
# component, which everything later names relative to /proc/self/fd/8.
output_dir() {
    case $1 in
        */ | . | .. | */. | */..) die "$what: OUTPUT must name a file, not a directory" ;;
    esac
    out_name=${1##*/}
    lib_dir=$(dirname -- "$1")
    [ -d "$lib_dir" ] || die "$what: No such file or directory"
    { command exec 8<"$lib_dir"; } 2>/dev/null || die "$what: cannot open the directory '$lib_dir'"
    fs_step check-dir -- /proc/self/fd/8 "$lib_dir" || exit 2
}

# private_dir DIRFD FD KIND SHOWN: make a private temporary KIND.<hex> (mode 0700) in the
# directory open on DIRFD (SHOWN in messages), open it on FD, and lock it until this shell
# and its steps are gone; the temporaries of KIND that earlier builds left unlocked there
# are removed first (the helper says so). The temporary is removed on exit.
lib_privates=
private_dir() {
    # The directory's lock, on a descriptor of our own (5), keeps any other build from
    # taking the new temporary for a leftover before it is locked.
    { command exec 5<"/proc/self/fd/$1"; } 2>/dev/null || die "$what: cannot open '$4'"
    # Named in lib_privates by the same assignment that learns the name: a signal that
    # comes meanwhile runs the cleanup only once the assignment is done.
    lib_privates="$lib_privates $1:$(fs_step temp -- "/proc/self/fd/$1" "$3" "$4" <&5)" || exit 2
    lib_name=${lib_privates##*:}
    case $lib_name in '' | *[!0-9a-z.-]*) die "$what: no temporary directory was made" ;; esac
    eval "{ command exec $2<\"/proc/self/fd/\$1/\$lib_name\"; } 2>/dev/null" ||
        die "$what: cannot open the temporary directory in '$4'"
    eval "fs_step lock -- \"/proc/self/fd/\$1\" \"\$lib_name\" <&$2" || exit 2
    exec 5<&-
}

# publish TEMPFD FILE [--no-replace]: flush FILE of the temporary open on TEMPFD, rename it
# onto OUTPUT (replacing what is there, unless --no-replace), flush OUTPUT's directory.
publish() {
    if [ "${3-}" = --no-replace ]; then
        fs_step publish --no-replace -- "/proc/self/fd/$1" "$2" /proc/self/fd/8 "$out_name"
    else
        fs_step publish -- "/proc/self/fd/$1" "$2" /proc/self/fd/8 "$out_name"
    fi
}

# On exit, whatever the cause: stop the step still running (and wait for it, so that it
# writes nothing more), then remove the temporaries through the descriptors.
lib_cleanup() {
    if [ -n "$lib_child" ]; then
        kill "$lib_child" 2>/dev/null || :
        wait "$lib_child" 2>/dev/null || :
    fi
    for lib_p in $lib_privates; do
        [ -n "${lib_p#*:}" ] || continue
        "$lib_fs" --prog "$prog" remove -- "/proc/self/fd/${lib_p%%:*}" "${lib_p#*:}" || :
    done
}

# A signal ends the build with 128 + its number, as a shell shows a process it killed.
lib_interrupted() {
    printf '%s: %s: interrupted by %s\n' "$prog" "$what" "$1" >&2
    exit "$2"
}

trap lib_cleanup EXIT
trap 'lib_interrupted SIGINT 130' INT
trap 'lib_interrupted SIGTERM 143' TERM
trap 'lib_interrupted SIGHUP 129' HUP
