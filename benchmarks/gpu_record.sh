#!/usr/bin/env bash
# Record the GPU figures of benchmarks/records/step-time-gpu/ (and the fit / analysis split of
# benchmarks/results.md) on one CUDA machine, within a time budget, into OUT (at most eight
# files: logs, tables, run folders as archives).
#
#     pip install -e '.[cuda13]'          # or '.[cuda12]'; see the README
#     bash benchmarks/gpu_record.sh OUT [SECONDS]
#
# 1. the device and the JAX backend;
# 2. `benchmarks/step_time.py` for the paper configurations (and the demo's), each in a fresh
#    process: OUT/step_time.md and OUT/step_time.json;
# 3. each experiment of FITS (default: `sho-cpu`; the paper-scale `sho` takes about 10 min) with
#    `noether-ppl fit`, its wall time, its Markdown table (OUT/<name>.md) and its run folder
#    (OUT/<name>.tgz, checkpoints left out); then `noether-ppl demo` (OUT/demo.tgz, its
#    metrics.json holding the fit / analysis / I/O split); each is given the time left and
#    skipped when less than a minute is left;
# 4. with the time left, VARIANTS: one step_time configuration each, in a fresh process, under
#    another setting (`config|ENV=VALUE|key=value ...`; default: `nbody2d3-paper` in the 15
#    tiles of pairs that a CPU's 2 GiB budget gives and in 2, instead of the one tile that a
#    GPU's budget gives (records/step-time-gpu-tiles/), then in full float32), one JSON line
#    each in OUT/variants.jsonl.
# Overrides (set and empty leaves that part out): STEP_CONFIGS="sho-paper ...", FITS="sho ..."
# (FIT_SET="key=value ..." passes --set to every fit, e.g. inference.num_steps=5 for a dry run;
# DEMO_STEPS=N the demo's --steps), DEMO=0 leaves the demo out, VARIANTS="config|ENV=V|k=v ...".
set -u
out=${1:?usage: gpu_record.sh OUT [SECONDS]}
budget=${2:-540}
start=$(date +%s)
left() { echo $((budget - ($(date +%s) - start))); }
mkdir -p "$out"
exec > >(tee -a "$out/log.txt") 2>&1

configs=${STEP_CONFIGS-"sho-paper sho-paper-vanilla oscillators3-official oscillators3-paper nbody2d3-paper sho-demo-learned"}
fits=${FITS-"sho-cpu"}
variants=${VARIANTS-"nbody2d3-paper||pair_tile=66 nbody2d3-paper||pair_tile=490 nbody2d3-paper|JAX_DEFAULT_MATMUL_PRECISION=float32|"}
sets=()
for kv in ${FIT_SET:-}; do sets+=(--set "$kv"); done
demo_args=()
[ -n "${DEMO_STEPS:-}" ] && demo_args+=(--steps "$DEMO_STEPS")

# the console script, or the module where the package is importable but not installed
nppl() {
    if command -v noether-ppl >/dev/null; then noether-ppl "$@"
    else python3 -c 'import sys; from noether_ppl.cli import main; sys.exit(main())' "$@"; fi
}
export -f nppl
seconds_since() { python3 -c "import sys; print(f'{$(date +%s.%N) - float(sys.argv[1]):.1f}')" "$1"; }

echo "== device ($(date -u +%FT%TZ))"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"
python3 -c 'import jax, numpyro; print("jax", jax.__version__, "numpyro", numpyro.__version__,
"backend", jax.default_backend(), jax.devices())'

if [ -n "$configs" ]; then
    echo "== step time (budget left $(left) s)"
    only=()
    for c in $configs; do only+=(--only "$c"); done
    timeout "$(left)" python3 benchmarks/step_time.py "${only[@]}" \
        --markdown "$out/step_time.md" --json "$out/step_time.json"
    echo "step_time exit $?"
fi

for name in $fits; do
    t=$(($(left) - 20))
    if [ "$t" -lt 60 ]; then echo "== $name skipped: $t s left"; continue; fi
    echo "== noether-ppl fit $name (budget $t s)"
    rm -rf "runs/gpu-$name"
    t0=$(date +%s.%N)
    timeout "$t" bash -c 'nppl "$@"' _ fit "$name" --no-progress "${sets[@]}" --out "runs/gpu-$name"
    rc=$?
    echo "fit $name exit $rc, wall $(seconds_since "$t0") s"
    if [ "$rc" -eq 0 ]; then
        nppl report "runs/gpu-$name" --markdown --no-figures > "$out/$name.md"
        tar czf "$out/$name.tgz" --exclude=checkpoint.npz --exclude=checkpoints -C runs "gpu-$name"
    fi
done

if [ "${DEMO:-1}" != 0 ]; then
    t=$(($(left) - 20))
    if [ "$t" -lt 60 ]; then echo "== demo skipped: $t s left"
    else
        echo "== noether-ppl demo (budget $t s)"
        rm -rf runs/gpu-demo
        t0=$(date +%s.%N)
        timeout "$t" bash -c 'nppl "$@"' _ demo --no-progress "${demo_args[@]}" --out runs/gpu-demo
        rc=$?
        echo "demo exit $rc, wall $(seconds_since "$t0") s"
        [ "$rc" -eq 0 ] && tar czf "$out/demo.tgz" --exclude=checkpoint.npz \
            --exclude=checkpoints -C runs gpu-demo
    fi
fi

for v in $variants; do
    IFS='|' read -r config env_kv set_kv <<< "$v"
    t=$(($(left) - 5))
    if [ "$t" -lt 30 ]; then echo "== variant $v skipped: $t s left"; continue; fi
    echo "== variant $v (budget $t s)"
    vsets=()
    for kv in ${set_kv//,/ }; do vsets+=(--set "$kv"); done
    tmp=$(mktemp --suffix .json)
    # shellcheck disable=SC2086  # env_kv is one NAME=VALUE or empty
    if timeout "$t" env $env_kv python3 benchmarks/step_time.py --config "$config" \
            "${vsets[@]}" --json "$tmp"; then
        python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); r["variant"] = sys.argv[2]
print(json.dumps(r))' "$tmp" "$v" >> "$out/variants.jsonl"
    else
        echo "variant $v failed or ran out of time"
    fi
    rm -f "$tmp"
done
echo "== done in $(( $(date +%s) - start )) s"
