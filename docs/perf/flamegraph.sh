#!/usr/bin/env bash
# Flamegraph of Convene serving the top page (20 suggestions with author and commitment)
# under the benchmark's load: `perf record` on the Convene process while
# `cargo bench --bench suggestions` drives that one row, then inferno turns it into an SVG.
#
#   docs/perf/flamegraph.sh [out.svg]
#       starts Convene the way the benchmark does (CONVENE_BENCH_BINARY picks the build,
#       default: this checkout's) and records it. Default output: docs/perf/flamegraph.svg.
#   docs/perf/flamegraph.sh --pid PID --url http://127.0.0.1:8080 [out.svg]
#       records a Convene that is already running on the convene_bench database.
#
# Environment: SECONDS_TO_RECORD (default 10); ROW (default top; any key of the benchmark's
# ROWS, e.g. new); CALL_GRAPH (default dwarf: release builds keep no frame pointers, so
# `perf record -g` (CALL_GRAPH=fp) sees only the innermost frames of each stack; dwarf unwinds
# from the stack copy, at the cost of a larger perf.data); CONVENE_BENCH_DATABASE_URL and
# CONVENE_BENCH_CLIENTS as for the benchmark. The data set is reused when already loaded.
# Needs perf and inferno (`cargo install inferno`).
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
pid=""
url=""
out=""
while [ $# -gt 0 ]; do
    case "$1" in
        --pid) pid=$2; shift 2 ;;
        --url) url=$2; shift 2 ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) out=$1; shift ;;
    esac
done
out=${out:-$repo/docs/perf/flamegraph.svg}
seconds=${SECONDS_TO_RECORD:-10}
row=${ROW:-top}
case "${CALL_GRAPH:-dwarf}" in
    fp) call_graph=(-g) ;;
    dwarf) call_graph=(--call-graph "dwarf,${DWARF_STACK_BYTES:-65528}") ;;
    *) echo "CALL_GRAPH must be fp or dwarf" >&2; exit 2 ;;
esac
if [ -n "$pid" ] && [ -z "$url" ]; then
    echo "--pid needs --url (where that Convene listens)" >&2
    exit 2
fi
for tool in perf inferno-collapse-perf inferno-flamegraph; do
    command -v "$tool" >/dev/null || { echo "$tool not found (perf: linux-perf; inferno: cargo install inferno)" >&2; exit 1; }
done

work=$(mktemp -d)
bench=""
target=""
cleanup() {
    if [ -n "$bench" ] && kill -0 "$bench" 2>/dev/null; then
        kill "$bench" 2>/dev/null || true
        # A Convene the benchmark started would outlive it.
        if [ -z "$pid" ] && [ -n "$target" ]; then kill "$target" 2>/dev/null || true; fi
    fi
    rm -rf "$work"
}
trap cleanup EXIT

export CONVENE_BENCH_ONLY=$row
export CONVENE_BENCH_SECONDS=$((seconds + 3))
export CONVENE_BENCH_REUSE=${CONVENE_BENCH_REUSE:-1}
export CONVENE_BENCH_PID_FILE=$work/pid
if [ -n "$url" ]; then
    export CONVENE_BENCH_URL=$url CONVENE_BENCH_PID=$pid
fi
# Build first, so the time spent compiling is not mistaken for a server that never starts,
# and run the benchmark's executable directly, so that it is the process stopped on failure.
exe=$(cd "$repo" && cargo bench --bench suggestions --no-run --message-format=json |
    grep '"kind":\["bench"\]' | grep -o '"executable":"[^"]*"' | tail -n 1 | cut -d'"' -f4)
[ -x "$exe" ] || { echo "could not build the benchmark" >&2; exit 1; }
(cd "$repo" && exec "$exe" --bench) > "$work/bench.log" 2>&1 &
bench=$!

# The benchmark writes the PID once the server answers, then warms up for 2 s.
while [ ! -s "$work/pid" ]; do
    if ! kill -0 "$bench" 2>/dev/null; then
        cat "$work/bench.log" >&2
        echo "the benchmark stopped before the server was up" >&2
        exit 1
    fi
    sleep 0.2
done
target=$(cat "$work/pid")
echo "recording PID $target for $seconds s while the benchmark drives row '$row'"
sleep 1
perf record -F 999 "${call_graph[@]}" -p "$target" -o "$work/perf.data" -- sleep "$seconds"
wait "$bench" || { cat "$work/bench.log" >&2; exit 1; }
bench=""
grep -A3 "^\[$row\]" "$work/bench.log" || true

perf script -i "$work/perf.data" 2>/dev/null | inferno-collapse-perf > "$work/stacks.folded"
mkdir -p "$(dirname "$out")"
inferno-flamegraph --title "Convene: $row row, $(date -u +%F)" < "$work/stacks.folded" > "$out"
echo "wrote $out"
