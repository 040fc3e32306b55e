#!/usr/bin/env bash
# Record the GPU figures of benchmarks/records/step-time-gpu/ (and the fits of REPRODUCTION.md)
# on one CUDA machine, within a time budget, into OUT (at most eight files: logs, tables, run
# folders as archives).
#
#     pip install -e '.[cuda13]'          # or '.[cuda12]'; see the README
#     bash benchmarks/gpu_record.sh OUT [SECONDS]
#
# 1. the device and the JAX backend;
# 2. `benchmarks/step_time.py` for the paper configurations (and the demo's), each in a fresh
#    process: OUT/step_time.md and OUT/step_time.json;
# 3. each experiment of FITS (default: the paper-scale `sho` and its CPU twin `sho-cpu`) with
#    `noether-ppl fit`, its wall time, its Markdown table (OUT/<name>.md) and its run folder
#    (OUT/<name>.tgz, checkpoints left out); a fit is given the time left and skipped when
#    less than a minute is left.
# Overrides: STEP_CONFIGS="sho-paper ..." and FITS="sho ..." (FIT_SET="key=value ..." passes
# --set to every fit, e.g. inference.num_steps=5 for a dry run).
set -u
out=${1:?usage: gpu_record.sh OUT [SECONDS]}
budget=${2:-540}
start=$(date +%s)
left() { echo $((budget - ($(date +%s) - start))); }
mkdir -p "$out"
exec > >(tee -a "$out/log.txt") 2>&1

configs=${STEP_CONFIGS:-"sho-paper sho-paper-vanilla oscillators3-official oscillators3-paper nbody2d3-paper sho-demo-learned"}
fits=${FITS:-"sho sho-cpu"}
sets=()
for kv in ${FIT_SET:-}; do sets+=(--set "$kv"); done

# the console script, or the module where the package is importable but not installed
nppl() {
    if command -v noether-ppl >/dev/null; then noether-ppl "$@"
    else python3 -c 'import sys; from noether_ppl.cli import main; sys.exit(main())' "$@"; fi
}
export -f nppl

echo "== device ($(date -u +%FT%TZ))"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"
python3 -c 'import jax, numpyro; print("jax", jax.__version__, "numpyro", numpyro.__version__,
"backend", jax.default_backend(), jax.devices())'

echo "== step time (budget left $(left) s)"
only=()
for c in $configs; do only+=(--only "$c"); done
timeout "$(left)" python3 benchmarks/step_time.py "${only[@]}" \
    --markdown "$out/step_time.md" --json "$out/step_time.json"
echo "step_time exit $?"

for name in $fits; do
    t=$(($(left) - 20))
    if [ "$t" -lt 60 ]; then echo "== $name skipped: $t s left"; continue; fi
    echo "== noether-ppl fit $name (budget $t s)"
    rm -rf "runs/gpu-$name"
    t0=$(date +%s.%N)
    timeout "$t" bash -c 'nppl "$@"' _ fit "$name" --no-progress "${sets[@]}" --out "runs/gpu-$name"
    rc=$?
    echo "fit $name exit $rc, wall $(python3 -c "print(f'{$(date +%s.%N) - $t0:.1f}')") s"
    if [ "$rc" -eq 0 ]; then
        nppl report "runs/gpu-$name" --markdown --no-figures > "$out/$name.md"
        tar czf "$out/$name.tgz" --exclude=checkpoint.npz --exclude=checkpoints -C runs "gpu-$name"
    fi
done
echo "== done in $(( $(date +%s) - start )) s"
