#!/usr/bin/env bash
# One GPU session in one command: the CUDA tests, the distance-to-the-limit benchmark, then
# the longest `paper` training that fits, with every result written to $OUT (at most 8 files).
#
#   OUT=/some/dir scripts/gpu_session.sh                  # on a CUDA machine, about 9.5 minutes
#   OUT=/tmp/trial scripts/gpu_session.sh --cpu-trial     # the same steps on the CPU, `ci` preset
#
# Environment: OUT (required), BUDGET (seconds for the whole script, default 570),
# PRESET (default paper), STEP_MODE (used when the benchmark measured no mode on PRESET's phase-3
# step; else the fastest against eager: cuda_graph by default, static on the CPU trial),
# PYTHON (default: .venv/bin/python if present, else python3).
# The run directory runs/gpu_session/$PRESET stays on the machine: a second call while it is
# still held resumes the training from its checkpoint. The full checkpoint of the paper
# networks (weights and both Adam states, about 110 MB) is larger than what $OUT brings back;
# the generator's weights (fp32, 14 MB at full width), the logs and a sample grid come back.
set -uo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the folder the results go to}"
mkdir -p "$OUT"
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
BUDGET="${BUDGET:-570}"
DEVICE=cuda
# the CUDA tests, most important first (-x stops at the first failure)
TESTS="tests/test_static_step.py tests/test_cross_networks.py tests/test_torch_partial_conv.py
       tests/test_training.py tests/test_cross.py tests/test_smooth_gate.py"
BENCH=(--limit --device cuda --presets gpu,paper --modes eager,static,cuda_graph --rounds 3)
# compiling takes a minute or more per network: timed on the paper networks alone, afterwards
BENCH_COMPILE=(--limit --device cuda --presets paper --harmonic no --modes eager,compile --rounds 3)
PRESET="${PRESET:-paper}" STEP_MODE="${STEP_MODE:-cuda_graph}"
T_TESTS=100 T_BENCH=140 T_COMPILE=130
if [ "${1:-}" = "--cpu-trial" ]; then
  DEVICE=cpu TESTS="tests/test_static_step.py" PRESET=ci STEP_MODE=static
  BENCH=(--limit --device cpu --presets ci --modes eager,static,cuda_graph --rounds 1 --steps 1
         --matmul 256)
  BENCH_COMPILE=(--limit --device cpu --presets ci --harmonic no --modes eager,compile
                 --rounds 1 --steps 1 --matmul 256)
  T_TESTS=120 T_BENCH=120 T_COMPILE=200 BUDGET=500
fi
START=$SECONDS
export PYTHONUNBUFFERED=1
summary="$OUT/summary.txt"
{
  date -u
  "$PYTHON" -c "import torch; print('torch', torch.__version__, '| cuda', torch.cuda.is_available(),
      torch.cuda.get_device_name() if torch.cuda.is_available() else '')"
  command -v nvidia-smi >/dev/null &&
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
} > "$summary" 2>&1

phase() {  # phase NAME SECONDS COMMAND...: run with a time limit, note status and duration
  local name=$1 limit=$2 t0=$SECONDS; shift 2
  timeout -s INT -k 20 "$limit" "$@"
  echo "$name: exit $? after $((SECONDS - t0)) s" >> "$summary"
}

phase tests "$T_TESTS" "$PYTHON" -m pytest $TESTS -q -x -m "not slow" -p no:cacheprovider \
  > "$OUT/tests.log" 2>&1
phase bench "$T_BENCH" "$PYTHON" benchmarks/bench_training.py "${BENCH[@]}" \
  --json "$OUT/bench.json" > "$OUT/bench.txt" 2>&1
phase bench_compile "$T_COMPILE" "$PYTHON" benchmarks/bench_training.py "${BENCH_COMPILE[@]}" \
  --json "$OUT/bench_compile.json" >> "$OUT/bench.txt" 2>&1
# Train in the mode the benchmark measured fastest on this preset's phase-3 step (each file's
# speed-ups are against the eager step timed in the same run).
FASTEST=$("$PYTHON" - "$PRESET" "$OUT/bench.json" "$OUT/bench_compile.json" 2>/dev/null <<'EOF'
import json, os, sys
rows = [r for path in sys.argv[2:] if os.path.exists(path) for r in json.load(open(path))["rows"]
        if r["preset"] == sys.argv[1] and r["phase"] == 3 and not r["residual"]]
print(max(rows, key=lambda r: r["speedup"])["mode"] if rows else "")  # against eager, same run
EOF
)
STEP_MODE="${FASTEST:-$STEP_MODE}"
echo "training step mode: $STEP_MODE" >> "$summary"

# Training: what is left of the budget, less a minute to pack. SIGINT at the deadline makes
# the trainer finish its step, write its checkpoint and stop.
RUN=runs/gpu_session/$PRESET
LEFT=$((BUDGET - (SECONDS - START) - 60))
if [ "$LEFT" -gt 30 ]; then
  phase train "$LEFT" "$PYTHON" -m pconv_torch.cli train --preset "$PRESET" --out "$RUN" \
    --device "$DEVICE" --set step_mode="$STEP_MODE" --set tensorboard=false > "$OUT/train.log" 2>&1
else
  echo "train: skipped, $LEFT s left" >> "$summary"
fi

# Pack: the generator's weights, the training curves and the last sample grid; the tests'
# log joins the summary ($OUT brings back 8 files).
{ echo "--- tests (last 40 lines)"; tail -n 40 "$OUT/tests.log"; } >> "$summary"
rm -f "$OUT/tests.log"
"$PYTHON" - "$RUN" "$OUT" "$PRESET" >> "$summary" 2>&1 <<'EOF'
import shutil, sys
from pathlib import Path

from safetensors.torch import save_file

from pconv_torch.checkpoint import load_checkpoint

run, out, preset = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
if not (run / "checkpoint.pt").is_file():
    sys.exit(f"pack: no checkpoint in {run}")
state = load_checkpoint(run)
weights = {k: v.contiguous() for k, v in state.get("generator_ema", state["generator"]).items()}
save_file(weights, out / f"{preset}_generator.safetensors",
          metadata={"step": str(state["step"]), "config": repr(state["config"])})
samples = sorted((run / "samples").glob("step_*.png"))
wanted = [run / "log.csv", *samples[-1:], run / "eval.csv"]  # $OUT brings back 8 files
for src, name in zip(wanted, ("log.csv", "sample.png", "eval.csv")):
    if src.is_file() and len(list(out.iterdir())) < 8:
        shutil.copy(src, out / f"{preset}_{name}")
total = sum(state["config"][k] for k in ("phase1_iters", "phase2_iters", "phase3_iters"))
print(f"pack: step {state['step']} of {total}")
EOF
echo "total: $((SECONDS - START)) s" >> "$summary"
cat "$summary"
