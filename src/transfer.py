"""Rule transfer: the adversarial sets crafted on one model evaluated on every model they
target (black-box transfer; robdml.jobs). A job killed or preempted resumes from --progress
(robdml.job_progress) when it runs again."""

import argparse
import json
import logging
import time
from pathlib import Path

IMPORTS_STARTED = time.perf_counter()

from robdml.code_version import code_version  # noqa: E402  (imports: start-up, not work)
from robdml.evaluation import write_records  # noqa: E402
from robdml.io import exit_in_one_line_on_bad_files  # noqa: E402
from robdml.job_progress import JobProgress, transfer_job_manifest  # noqa: E402
from robdml.models import load_model  # noqa: E402
from robdml.robustness import transfer_job  # noqa: E402
from robdml.runtime import setup  # noqa: E402

# what this job runs, by content: part of its progress manifest
CODE = code_version(__file__, Path(__file__).parent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--evaluation", required=True, help="JSON: the `evaluation` config")
    parser.add_argument("--source-defense", required=True, help="the source model's defense")
    parser.add_argument("--source-seed", required=True, type=int, help="the source model's seed")
    parser.add_argument("--targets", required=True, help="JSON list: each target's ids")
    parser.add_argument("--models", nargs="+", required=True, help="one per target")
    parser.add_argument("--names", nargs="+", required=True, help="attack of each --sets file")
    parser.add_argument("--sets", nargs="+", required=True, help="adversarial sets")
    parser.add_argument("--metrics", required=True, help="output: the job's metrics JSON")
    parser.add_argument(
        "--progress",
        required=True,
        help="progress directory kept between attempts; not a Snakemake output",
    )
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    targets = json.loads(args.targets)
    if len(targets) != len(args.models) or len(args.names) != len(args.sets):
        parser.error("give one --models per target and one --names per --sets")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    started = time.perf_counter()
    evaluation = json.loads(args.evaluation)
    device = setup(args.threads, args.device, evaluation["kmeans_seeds"][0])
    model_files = list(zip(targets, args.models, strict=True))
    models = [(ids, *load_model(path, device)) for ids, path in model_files]
    sets = list(zip(args.names, args.sets, strict=True))
    source = {"defense": args.source_defense, "seed": args.source_seed}
    manifest = transfer_job_manifest(evaluation, source, model_files, sets, CODE)
    progress = JobProgress(args.progress, manifest)
    records = transfer_job(models, sets, source, evaluation, device, progress)
    seconds = {"imports": started - IMPORTS_STARTED, "work": time.perf_counter() - started}
    write_records(args.metrics, records, seconds)


if __name__ == "__main__":
    exit_in_one_line_on_bad_files(main)
