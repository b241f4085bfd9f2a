#!/usr/bin/env bash
# Fuzz every target for SECONDS each (default 60), one after the other:
#
#   fuzz/run.sh 60                 # every target for a minute
#   fuzz/run.sh 1200 npy weights   # only some targets
#   fuzz/run.sh 180 npy:300000     # 300,000 inputs, stopping at 180 s if not done
#
# A target named as TARGET:RUNS runs that many inputs (libFuzzer's -runs) rather than for a
# time; SECONDS still bounds it. CI runs so, with a fixed FUZZ_SEED and a fresh corpus: how
# far it fuzzes then does not depend on the machine's speed or load (fuzzing for a time
# explores further on a faster or quieter machine, so a commit that passed could fail on the
# next run).
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). cargo-fuzz passes rustc flags that only nightly
# accepts (-Zsanitizer=address); on a machine with only the stable toolchain the script sets
# RUSTC_BOOTSTRAP=1 so that stable rustc accepts them (its sanitizer runtimes ship with it).
# FUZZ_TOOLCHAIN=nightly uses a nightly toolchain instead. Each target's corpus grows in
# fuzz/corpus/TARGET (not committed), seeded from the examples, the UI tests and
# fuzz/seeds/TARGET; a crash stops the script with a non-zero exit and leaves its input in
# fuzz/artifacts/TARGET: turn it into a regression test. FUZZ_SEED fixes libFuzzer's seed (CI
# sets 1; 0, the default, draws one).
set -euo pipefail
cd "$(dirname "$0")"

seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(check_text check_generated weights npy image dot)

# Text targets start from every .res file of the project; `dot` reads a depth byte first.
seed_text() {
    local dir=$1 prefix=$2
    mkdir -p "$dir"
    for f in ../examples/*.res ../tests/ui/*/*.res; do
        # Cases that build networks up to the work limit (E0115) take longer than the
        # per-input timeout under the sanitizers: they are tested in the suite instead.
        head -n 1 "$f" | grep -q 'E0115' && continue
        local name
        name=$(basename "$(dirname "$f")")-$(basename "$f")
        { printf '%b' "$prefix"; cat "$f"; } > "$dir/$name"
    done
}

toolchain=()
if [ -n "${FUZZ_TOOLCHAIN:-}" ]; then
    toolchain=("+$FUZZ_TOOLCHAIN")
else
    export RUSTC_BOOTSTRAP=1
fi

for spec in "${targets[@]}"; do
    target=${spec%%:*}
    runs=()
    if [ "$target" != "$spec" ]; then
        count=${spec#*:}
        case $count in
            ''|*[!0-9]*) echo "fuzz/run.sh: '$spec': RUNS must be a whole number" >&2; exit 2 ;;
        esac
        runs=(-runs="$count")
    fi
    [ -f "fuzz_targets/$target.rs" ] || { echo "fuzz/run.sh: no fuzz target '$target'" >&2; exit 2; }
    corpus=corpus/$target
    mkdir -p "$corpus"
    case $target in
        check_text) seed_text "$corpus" '' ;;
        dot) seed_text "$corpus" '\x01' ;;
    esac
    [ -d "seeds/$target" ] && cp -n seeds/"$target"/* "$corpus"/ 2>/dev/null || true
    echo "fuzz/run.sh: $target for ${runs[*]:-${seconds}s}${runs[*]:+ (at most ${seconds}s)}" >&2
    cargo "${toolchain[@]}" fuzz run -O "$target" "$corpus" -- \
        "${runs[@]}" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2560 -max_len=65536 \
        -print_final_stats=1 -seed="${FUZZ_SEED:-0}"
done
