"""Requested and expected GPU-hours of a config's whole grid, per defense.

Requested: what the rules request. Runs a forced dry run of the workflow (`snakemake -n
--forceall`, in a scratch directory, so existing results change nothing) and reads every job's
`resources:` line as Snakemake prints it: GPU-hours = sum over jobs of gpu x runtime (minutes)
x attempts / 60. `attempts` is 1 unless the job's work needs more than the partition's
`time_limit_min`: it then asks for the limit on each attempt its work needs, resuming from its
last finished unit (robdml.resources.attempts); a job resubmitted after a failure asks for more
(docs/cluster.md "Resources"). The runtimes come from the cost model of `robdml.resources` at stated
throughputs, with its safety factor: upper bounds, not measurements. Jobs without a defense
(data, reports, t-SNE) are `(shared)`. On a `device: cpu` config no job asks for a GPU;
`job_hours` sums every job's runtime.

Expected: per GPU job of that dry run, the same cost model's work (its passes and k-means runs,
robdml.resources.Work) costed from the FLOPs counted on the job's model (robdml.flops) at the
`resources.expected` processor's utilisation x peak, without safety factor, plus its
`startup_min` once (`startup_gpu_hours`, included): what the grid is expected to cost if that
utilisation holds (an assumption unless measured: benchmarks/gpu_check.sh).

    python benchmarks/gpu_hours.py                        # the paper (config/config.yaml)
    python benchmarks/gpu_hours.py --configfile config/cub_quick.yaml
    python benchmarks/gpu_hours.py --all-configs          # every shipped config's totals
    python benchmarks/gpu_hours.py --by job               # the paper, per kind of job

Prints a table (defense, jobs, GPU jobs, requested and expected GPU-hours, job-hours) and a last
line `RESULT total_gpu_hours=... expected_gpu_hours=... startup_gpu_hours=... jobs=...
gpu_jobs=... job_hours=...`. With --all-configs, one row per shipped config (config/config.yaml
alone, every other config/*.yaml over it) plus the paper without check (b)'s `stronger` attack
group, the cheapest route to its main table, and a last line `RESULT` with each one's requested
and expected GPU-hours. Needs Snakemake and torch (the FLOP count).
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
from collections import defaultdict
from fractions import Fraction
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
from robdml import resources  # noqa: E402
from robdml.config import load_config  # noqa: E402
from robdml.flops import forward_flops  # noqa: E402

SHARED = "(shared)"
PAPER = REPO / "config/config.yaml"
# Check (b)'s stronger attacks off (null turns a variant off): the main table without them
NO_STRONGER = {"sanity": {"stronger": {"steps_factor": None, "restarts": None}}}


def dry_run(configfiles: list[str], workdir: Path) -> str:
    """Output of a forced dry run of the whole default target in `workdir`."""
    command = [sys.executable, "-m", "snakemake", "-n", "--forceall", "-s", str(REPO / "Snakefile")]
    command += ["-d", str(workdir)]
    if configfiles:
        command += ["--configfile", *configfiles]
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    run = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, "PATH": path}
    )  # fmt: skip
    if run.returncode != 0:
        raise SystemExit(f"snakemake -n failed:\n{run.stderr[-3000:]}")
    return run.stdout


def parse_jobs(output: str) -> list[dict]:
    """Every job block of a dry run: {'rule', 'wildcards': {...}, 'resources': {...}}, with
    numeric resources as numbers."""
    heads = list(re.finditer(r"^(?:localrule|rule) (\w+):$", output, flags=re.M))
    ends = [match.start() for match in heads[1:]] + [len(output)]
    jobs = []
    for head, end in zip(heads, ends, strict=True):
        body = output[head.end() : end]
        jobs.append(
            {
                "rule": head[1],
                "wildcards": key_values(body, "wildcards"),
                "resources": {
                    key: number(value) for key, value in key_values(body, "resources").items()
                },
            }
        )
    return jobs


def key_values(body: str, field: str) -> dict[str, str]:
    """`    field: a=1, b=x` of one job block as a dict (empty when the block has none)."""
    line = re.search(rf"^\s+{field}: (.*)$", body, flags=re.M)
    if line is None:
        return {}
    return dict(pair.split("=", 1) for pair in line[1].split(", ") if "=" in pair)


def number(value: str) -> int | float | str:
    try:
        return int(value)
    except ValueError:
        try:
            return float(value)
        except ValueError:
            return value


def job_work(config: dict, job: dict) -> resources.Work | None:
    """The cost model's work of a dry run's job (what its request is made of); None for the
    rules with fixed runtimes (data, reports)."""
    rule, w = job["rule"], job["wildcards"]
    if rule == "train":
        return resources.train_work(config, w["dataset"], w["defense"])
    if rule == "attack":
        ids = (w["dataset"], w["backbone"], w["defense"], w["job"])
        return resources.attack_job_work(config, *ids)
    if rule == "attack_members":
        return resources.members_job_work(config, w["dataset"], w["defense"])
    if rule == "transfer":
        ids = (w["dataset"], w["backbone"], w["defense"], int(w["seed"]))
        return resources.transfer_job_work(config, *ids)
    return None


def attempts(config: dict, job: dict, work: resources.Work | None) -> int:
    """Attempts of the time limit the job's work needs (each asks for the limit when more than
    one does: robdml.resources.attempts); 1 for the fixed rules."""
    if work is None:
        return 1
    w = job["wildcards"]
    return resources.attempts(
        config, resources.work_seconds(config, w["dataset"], w["backbone"], work)
    )


def expected_minutes(config: dict, job: dict, work: resources.Work) -> float:
    """Expected minutes of a job: its work at the FLOPs counted on its model, one start-up."""
    w = job["wildcards"]
    flops = forward_flops(config["backbones"][w["backbone"]], config["datasets"][w["dataset"]])
    seconds = resources.expected_seconds(config, w["dataset"], w["backbone"], work, flops)
    return resources.expected_minutes(config, seconds)


def job_kind(job: dict) -> str:
    """The kind of work a job does: its rule, and an attack job's group ('attack stronger')."""
    group = job["wildcards"].get("job") if job["rule"] == "attack" else None
    return f"{job['rule']} {group}" if group else job["rule"]


def summarize(config: dict, jobs: list[dict], by: str = "defense") -> dict[str, dict]:
    """Per defense (`(shared)` for jobs without one) or per job kind (`by='job'`): jobs, GPU
    jobs, requested GPU-hours, expected GPU-hours (of which start-up), job-hours. A job asks
    for its dry run's runtime once per attempt its work needs."""
    keys = ("jobs", "gpu_jobs", "gpu_hours", "expected_gpu_hours", "startup_gpu_hours", "job_hours")
    rows = defaultdict(lambda: dict.fromkeys(keys, 0))
    for job in jobs:
        key = job_kind(job) if by == "job" else job["wildcards"].get("defense", SHARED)
        row = rows[key]
        work = job_work(config, job)
        # exact (whole minutes): a float sum's last bit, which follows the dry run's job
        # order, would decide how a total such as 19,785.75 rounds
        hours = Fraction(attempts(config, job, work) * job["resources"].get("runtime", 0), 60)
        gpus = job["resources"].get("gpu", 0)
        row["jobs"] += 1
        row["job_hours"] += hours
        if gpus > 0:
            row["gpu_jobs"] += 1
            row["gpu_hours"] += gpus * hours
            row["expected_gpu_hours"] += gpus * expected_minutes(config, job, work) / 60
            row["startup_gpu_hours"] += gpus * config["resources"]["startup_min"] / 60
    return dict(rows)


def total(rows: dict[str, dict]) -> dict:
    return {key: sum(row[key] for row in rows.values()) for key in next(iter(rows.values()))}


HEADER = "jobs | GPU jobs | requested GPU-hours | expected GPU-hours | job-hours |"


def cells(row: dict) -> str:
    return (
        f"{row['jobs']:,} | {row['gpu_jobs']:,} | {float(row['gpu_hours']):,.1f} "
        f"| {row['expected_gpu_hours']:,.1f} | {float(row['job_hours']):,.1f} |"
    )


def table(rows: dict[str, dict], defenses: list[str], by: str = "defense") -> str:
    """Markdown table, one row per defense in `defenses`' order (or per job kind, sorted),
    `(shared)` and the total last."""
    order = [name for name in defenses if name in rows]
    order += sorted(name for name in rows if name not in order and name != SHARED)
    order += [SHARED] * (SHARED in rows)
    lines = [f"| {by} | {HEADER}", "|---|---:|---:|---:|---:|---:|"]
    for name, row in [*((name, rows[name]) for name in order), ("**total**", total(rows))]:
        lines.append(f"| {name} | {cells(row)}")
    return "\n".join(lines)


def result_line(rows: dict[str, dict]) -> str:
    grid = total(rows)
    return (
        f"RESULT total_gpu_hours={float(grid['gpu_hours']):.1f} "
        f"expected_gpu_hours={grid['expected_gpu_hours']:.1f} "
        f"startup_gpu_hours={grid['startup_gpu_hours']:.1f} jobs={grid['jobs']} "
        f"gpu_jobs={grid['gpu_jobs']} job_hours={float(grid['job_hours']):.1f}"
    )


def plan(configfiles: list[str], by: str = "defense") -> tuple[dict, dict[str, dict]]:
    """(resolved config, rows per defense or job kind) of the grid of `configfiles` over the
    paper's."""
    config = load_config(*configfiles)
    with tempfile.TemporaryDirectory() as workdir:
        return config, summarize(config, parse_jobs(dry_run(configfiles, Path(workdir))), by)


def all_configs() -> None:
    """Totals of every shipped config and of the paper without check (b)'s `stronger` group."""
    overlays = sorted(path for path in (REPO / "config").glob("*.yaml") if path != PAPER)
    with tempfile.TemporaryDirectory() as scratch:
        no_stronger = Path(scratch) / "no_stronger.yaml"
        no_stronger.write_text(yaml.safe_dump(NO_STRONGER))
        runs = {  # key -> (label, overlays)
            "config": ("config.yaml (the paper)", []),
            "config_no_stronger": ("config.yaml without the `stronger` group", [str(no_stronger)]),
        }
        runs |= {path.stem: (path.name, [str(path)]) for path in overlays}
        totals = {key: total(plan(configfiles)[1]) for key, (_, configfiles) in runs.items()}
    print(f"| config | {HEADER}")
    print("|---|---:|---:|---:|---:|---:|")
    for key, (label, _) in runs.items():
        print(f"| {label} | {cells(totals[key])}")
    pairs = (
        f"{key}={float(row['gpu_hours']):.1f}/{row['expected_gpu_hours']:.1f}"
        for key, row in totals.items()
    )
    print("RESULT requested/expected_gpu_hours " + " ".join(pairs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--configfile", nargs="*", default=[], help="overlays, as for snakemake (none: the paper)"
    )
    parser.add_argument(
        "--all-configs", action="store_true", help="totals of every shipped config (config/)"
    )
    parser.add_argument(
        "--by", choices=["defense", "job"], default="defense", help="one row per defense or "
        "per job kind (rule; an attack job's group: 'attack label_free')",
    )  # fmt: skip
    args = parser.parse_args()
    if args.all_configs:
        all_configs()
        return
    config, rows = plan([str(Path(path).resolve()) for path in args.configfile], args.by)
    print(table(rows, list(config["defenses"]) if args.by == "defense" else [], args.by))
    print(result_line(rows))


if __name__ == "__main__":
    main()
