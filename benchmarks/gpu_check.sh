#!/usr/bin/env bash
# GPU check (docs/performance.md "GPU check"): the GPU fast path against plain fp32 for ResNet-50 at 224 px
# on synthetic data, offline, installing nothing; sized for 3-4 minutes on an H100 (estimate).
#   bash benchmarks/gpu_check.sh [--smoke] [--threads N]    (PYTHON=... picks the interpreter)
# On a GPU it writes the measured throughput and utilisation as a config overlay for the cost
# model, results/gpu_check/measured_resources.yaml (--overlay PATH; gpu_check.py's docstring):
# pass it as an extra --configfile to snakemake and benchmarks/gpu_hours.py.
# Imports the library from src/ (no install needed). pytorch-metric-learning, which GPU images
# often lack, can come as a wheel in benchmarks/wheels/ (put on PYTHONPATH as it is); on a
# machine with internet: pip download pytorch-metric-learning==2.9.0 --no-deps -d benchmarks/wheels
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python3}"
path="$here/../src"
for wheel in "$here"/wheels/*.whl; do
    if [[ -e $wheel ]]; then path="$path:$wheel"; fi
done
export PYTHONPATH="$path${PYTHONPATH:+:$PYTHONPATH}"
if ! "$python" -c "import pytorch_metric_learning" 2>/dev/null; then
    echo "gpu_check: pytorch-metric-learning (the Proxy Anchor loss) is missing: on a machine" \
        "with internet run 'pip download pytorch-metric-learning==2.9.0 --no-deps -d" \
        "benchmarks/wheels', copy benchmarks/wheels/ here and rerun" >&2
    exit 1
fi
exec "$python" "$here/gpu_check.py" "$@"
