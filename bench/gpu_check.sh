#!/usr/bin/env bash
# The GPU check: versions, GPU tests, every cupy operation against the CPU, challenge rates with
# exactness, the training step against PyTorch. Each part is time-boxed and isolated: one failure
# does not hide the others. Writes log.txt, checks.jsonl and summary.md under $OUT (or ./gpu_out).
#
#     PYTHONPATH=$PWD bash bench/gpu_check.sh [DATA_DIR] [SIZES]
#     PARTS="generated largest train_step" bash bench/gpu_check.sh   # some parts only
#
# DATA_DIR holds the official 1024-neuron files (default ../shared/data/graphchallenge);
# SIZES the generated N x L shapes (default 4096x120,16384x480,65536x120); the part `largest`
# runs the largest official shape, 65536 x 1920 with 60,000 (replicated) images, once.
# Every part together can exceed one 600 s device call: split them over two calls with PARTS
# (first "versions tests ops official", then "generated largest train_step").
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu_out}; mkdir -p "$OUT"
DATA=${1:-../shared/data/graphchallenge}
SIZES=${2:-4096x120,16384x480,65536x120}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
JSON=$OUT/checks.jsonl; : > "$JSON"
STATUS=$OUT/parts.md; : > "$STATUS"
PARTS=${PARTS:-versions tests ops official generated largest train_step}
part() {  # part NAME SECONDS COMMAND...
    local name=$1 limit=$2; shift 2
    case " $PARTS " in *" $name "*) ;; *) return 0 ;; esac
    echo "=== $name (limit ${limit}s)"
    local t0=$SECONDS
    timeout --kill-after=10 "$limit" "$@"
    local rc=$?
    echo "| $name | $rc | $((SECONDS - t0)) s |" >> "$STATUS"
}
{
part versions 30 bash -c 'nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader;
  python3 -c "import cupy, numpy, scipy, numba, sys; print(sys.version.split()[0], \"cupy\", cupy.__version__,
  \"numpy\", numpy.__version__, \"scipy\", scipy.__version__, \"numba\", numba.__version__,
  \"CUDA runtime\", cupy.cuda.runtime.runtimeGetVersion())"'
part tests 120 python3 -m pytest -o addopts= -m gpu tests -q -p no:cacheprovider --continue-on-collection-errors
part ops 90 python3 bench/gpu_check.py ops --json "$JSON"
part official 90 python3 bench/gpu_check.py official --data "$DATA" --json "$JSON"
part generated 200 python3 bench/gpu_check.py generated --sizes "$SIZES" --repeat 2 --json "$JSON"
part largest 280 python3 bench/gpu_check.py generated --sizes 65536x1920 --repeat 1 --json "$JSON"
part train_step 60 python3 bench/train_step.py --backend cupy --repeat 10
} 2>&1 | tee "$OUT/log.txt"
{
echo "| part | exit | time |"; echo "|---|---|---|"; cat "$STATUS"
echo; echo "failed checks:"; grep '"ok": false' "$JSON" || echo "none"
} > "$OUT/summary.md"
cat "$OUT/summary.md"
