"""GPU slots (robdml.runtime.claim_gpu): jobs sharing a node get different GPUs through lock
files named after the physical GPU, and a killed job's slot is free again. No GPU needed."""

import logging
import os
import subprocess
import sys

from conftest import REPO
from robdml.runtime import claim_gpu, release_gpus


def src_env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO / "src")}


def test_claim_gpu_single_device_needs_no_lock(tmp_path):
    """Under SLURM (gpu=1) the job sees exactly its GPU: index 0, nothing locked."""
    assert claim_gpu(1, tmp_path / "locks") == 0
    assert not (tmp_path / "locks").exists()


def test_claim_gpu_gives_concurrent_jobs_different_gpus(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    try:
        assert [claim_gpu(3, tmp_path) for _ in range(3)] == [0, 1, 2]
        with caplog.at_level(logging.WARNING, logger="robdml.runtime"):
            assert claim_gpu(3, tmp_path) in {0, 1, 2}  # oversubscribed: shares, never hangs
        assert "all 3 GPUs are held" in caplog.text
    finally:
        release_gpus()
    assert claim_gpu(3, tmp_path) == 0  # released slots are free again
    release_gpus()


def test_claim_gpu_names_locks_after_physical_gpus(tmp_path, monkeypatch):
    """Jobs seeing different subsets (CUDA_VISIBLE_DEVICES) agree on physical GPUs."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5,7")
    try:
        assert claim_gpu(2, tmp_path) == 0
        assert (tmp_path / "gpu-5.lock").exists()
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "7,5")
        assert claim_gpu(2, tmp_path) == 0  # physical GPU 7 is free, 5 is held
        assert (tmp_path / "gpu-7.lock").exists()
    finally:
        release_gpus()


def test_claim_gpu_slot_is_freed_when_the_job_dies(tmp_path, monkeypatch):
    """The lock lives as long as the job's process, even when it is killed (SIGKILL)."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from robdml.runtime import claim_gpu; "
         f"print(claim_gpu(2, {str(tmp_path)!r}), flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True, env=src_env(),
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "0"
        assert claim_gpu(2, tmp_path) == 1
        release_gpus()
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert claim_gpu(2, tmp_path) == 0
    release_gpus()
