"""Rule attack_members: an ensemble's members alone (clean test set) and attacks crafted on one
member, evaluated on the whole ensemble (robdml.jobs). A job killed or preempted resumes from
--progress (robdml.job_progress) when it runs again."""

import argparse
import json
import logging
import time
from pathlib import Path

IMPORTS_STARTED = time.perf_counter()

from robdml.code_version import code_version  # noqa: E402  (imports: start-up, not work)
from robdml.data.prepared import load_split  # noqa: E402
from robdml.evaluation import write_records  # noqa: E402
from robdml.fast_path import add_fast_path_options, configure_fast_path, fast_path_settings  # noqa: E402
from robdml.io import exit_in_one_line_on_bad_files  # noqa: E402
from robdml.job_progress import JobProgress, attack_job_manifest  # noqa: E402
from robdml.models import load_model  # noqa: E402
from robdml.robustness import members_job  # noqa: E402
from robdml.runtime import setup  # noqa: E402

# what this job runs, by content: part of its progress manifest
CODE = code_version(__file__, Path(__file__).parent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--job", required=True, help="JSON: robdml.specs.members_job_spec")
    parser.add_argument("--evaluation", required=True, help="JSON: the `evaluation` config")
    parser.add_argument("--ids", required=True, help="JSON: the model's dataset/backbone/...")
    parser.add_argument("--seed", type=int, required=True, help="the attacker's seed")
    parser.add_argument("--model", required=True, help="trained ensemble file")
    parser.add_argument("--data", required=True, help="prepared test split")
    parser.add_argument("--metrics", required=True, help="output: the job's metrics JSON")
    parser.add_argument(
        "--progress",
        required=True,
        help="progress directory kept between attempts; not a Snakemake output",
    )
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=1)
    add_fast_path_options(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    started = time.perf_counter()
    device = setup(args.threads, args.device, args.seed)
    fast_path = configure_fast_path(device, fast_path_settings(args))
    job, evaluation, ids = json.loads(args.job), json.loads(args.evaluation), json.loads(args.ids)
    progress = JobProgress(
        args.progress, attack_job_manifest(job, evaluation, ids, args.model, CODE)
    )
    records = members_job(
        lambda member: load_model(args.model, device, member), load_split(args.data),
        job, evaluation, ids, device, fast_path, progress,
    )  # fmt: skip
    seconds = {"imports": started - IMPORTS_STARTED, "work": time.perf_counter() - started}
    write_records(args.metrics, records, seconds)


if __name__ == "__main__":
    exit_in_one_line_on_bad_files(main)
