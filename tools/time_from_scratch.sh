#!/usr/bin/env bash
# Times `make reproduce` from scratch: a fresh clone of HEAD (no .venv, no data/, empty runs cache), the
# install included, under /usr/bin/time -v, with the load average sampled every minute. The measurement lands
# in results/scratch/<profile>/<dataset>/ of this checkout (timing.json, time.txt, load.log and the run's
# manifest.json), which README's "Time from scratch" paragraph is generated from.
#
#   tools/time_from_scratch.sh [WORKDIR]      (or: make time-from-scratch)
#
# Run it on an otherwise idle machine: it uses every core for about as long as README says, and anything else
# running at the same time is in the measurement (the load log shows it).
# Only the standard tools (git, GNU time, python3's standard library): it must run before any install.
set -euo pipefail

REPO=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
PROFILE=${PROFILE:-cpu}
DATASET=${DATASET:-synthetic}
WORK=${1:-$(mktemp -d)/sisnet}
OUT="$REPO/results/scratch/$PROFILE/$DATASET"
[ -x /usr/bin/time ] || { echo "needs GNU time at /usr/bin/time (Debian/Ubuntu: apt install time)" >&2; exit 2; }
[ -e "$WORK" ] && { echo "$WORK exists; give a new directory to clone into" >&2; exit 2; }

git clone -q "$REPO" "$WORK"
cd "$WORK"
( while sleep 60; do echo "$(date -u +%FT%TZ) $(cut -d' ' -f1-3 /proc/loadavg)"; done ) > load.log &
sampler=$!
trap 'kill $sampler 2>/dev/null || true' EXIT
start=$(date +%s)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
rc=0
/usr/bin/time -v -o time.txt make reproduce PROFILE="$PROFILE" DATASET="$DATASET" > make.log 2>&1 || rc=$?
end=$(date +%s)
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
installed=$(stat -c %Y .venv/.sisnet-installed 2>/dev/null || echo "")

mkdir -p "$OUT"
cp time.txt load.log "$OUT/"
[ -f "results/$PROFILE/$DATASET/manifest.json" ] && cp "results/$PROFILE/$DATASET/manifest.json" "$OUT/manifest.json"
python3 - "$OUT/timing.json" <<EOF
import json, os, sys
installed = "$installed"
json.dump({
    "command": "make reproduce PROFILE=$PROFILE DATASET=$DATASET",
    "procedure": "tools/time_from_scratch.sh: fresh git clone, no .venv, no data/, empty runs cache",
    "commit": "$(git rev-parse HEAD)",
    "exit_status": $rc,
    "started_at_epoch": $start,
    "finished_at_epoch": $end,
    "wall_seconds": $end - $start,
    "install_seconds": (int(installed) - $start) if installed else None,
    "load_average": {"start": "$load_start", "end": "$load_end"},
    "usable_cores": len(os.sched_getaffinity(0)),
}, open(sys.argv[1], "w"), indent=2)
EOF
echo "make reproduce from scratch: $((end - start)) s, exit status $rc; wrote $OUT" >&2
exit $rc
