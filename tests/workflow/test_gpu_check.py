"""benchmarks/gpu_check.sh runs end to end in its --smoke mode (CPU, seconds) and ends with the
RESULT line that the README's "GPU check" describes."""

import os
import re
import subprocess
import sys

from conftest import REPO

RESULT = re.compile(
    r"RESULT fast_vs_plain=(?P<fast_vs_plain>[\d.]+) train_img_s=(?P<train>[\d.]+) "
    r"pgd_at_img_s=(?P<pgd_at>[\d.]+) attack_img_s=(?P<attack>[\d.]+) "
    r"eval_inshop_s=(?P<eval_inshop>[\d.]+) peak_gb=(?P<peak_gb>[\d.]+)"
)


def test_the_smoke_run_measures_every_job_and_ends_with_the_result_line():
    run = subprocess.run(
        ["bash", str(REPO / "benchmarks/gpu_check.sh"), "--smoke", "--threads", "1"],
        env={**os.environ, "PYTHON": sys.executable, "CUDA_VISIBLE_DEVICES": ""},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.strip().splitlines()
    result = RESULT.fullmatch(lines[-1])
    assert result, lines[-1]
    values = {key: float(value) for key, value in result.groupdict().items()}
    assert all(
        values[key] > 0 for key in ("fast_vs_plain", "train", "pgd_at", "attack", "eval_inshop")
    )
    assert values["peak_gb"] == 0  # on the CPU
    for key in ("train_img_s", "pgd_at_img_s", "attack_img_s", "eval_cub_s", "eval_inshop_s"):
        assert any(line.startswith(key) for line in lines), key
