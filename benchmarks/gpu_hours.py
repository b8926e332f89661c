"""Requested GPU-hours of a config's whole grid, per defense: exactly what the rules request.

Runs a forced dry run of the workflow (`snakemake -n --forceall`, in a scratch directory, so
existing results change nothing) and reads every job's `resources:` line as Snakemake prints
it: GPU-hours = sum over jobs of gpu x runtime (minutes) / 60, first attempt (a resubmitted job
asks for `attempt` times more; README "Resources"). The runtimes come from the cost model of
`robdml.resources`, whose GPU throughputs are stated assumptions: these are requested (upper
bound) hours, not measurements. Jobs without a defense (data, reports, t-SNE) are `(shared)`.
On a `device: cpu` config no job asks for a GPU; `job_hours` sums every job's runtime.

    python benchmarks/gpu_hours.py                        # the paper (config/config.yaml)
    python benchmarks/gpu_hours.py --configfile config/cub_quick.yaml

Prints a table (defense, jobs, GPU jobs, GPU-hours, job-hours) and a last line
`RESULT total_gpu_hours=... jobs=... gpu_jobs=... job_hours=...`. Needs only Snakemake's env.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
from robdml.config import load_config  # noqa: E402  (yaml and jsonschema only)

SHARED = "(shared)"


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


def summarize(jobs: list[dict]) -> dict[str, dict]:
    """Per defense (`(shared)` for jobs without one): jobs, GPU jobs, GPU-hours, job-hours."""
    rows = defaultdict(lambda: {"jobs": 0, "gpu_jobs": 0, "gpu_hours": 0.0, "job_hours": 0.0})
    for job in jobs:
        row = rows[job["wildcards"].get("defense", SHARED)]
        resources = job["resources"]
        hours = resources.get("runtime", 0) / 60
        gpus = resources.get("gpu", 0)
        row["jobs"] += 1
        row["gpu_jobs"] += int(gpus > 0)
        row["gpu_hours"] += gpus * hours
        row["job_hours"] += hours
    return dict(rows)


def table(rows: dict[str, dict], defenses: list[str]) -> str:
    """Markdown table, one row per defense in `defenses`' order, `(shared)` and the total last."""
    order = [name for name in defenses if name in rows]
    order += [name for name in rows if name not in order and name != SHARED]
    order += [SHARED] * (SHARED in rows)
    total = {key: sum(row[key] for row in rows.values()) for key in next(iter(rows.values()))}
    lines = [
        "| defense | jobs | GPU jobs | GPU-hours | job-hours |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in [*((name, rows[name]) for name in order), ("**total**", total)]:
        lines.append(
            f"| {name} | {row['jobs']:,} | {row['gpu_jobs']:,} | {row['gpu_hours']:,.0f} "
            f"| {row['job_hours']:,.0f} |"
        )
    return "\n".join(lines)


def result_line(rows: dict[str, dict]) -> str:
    total = {key: sum(row[key] for row in rows.values()) for key in next(iter(rows.values()))}
    return (
        f"RESULT total_gpu_hours={total['gpu_hours']:.1f} jobs={total['jobs']} "
        f"gpu_jobs={total['gpu_jobs']} job_hours={total['job_hours']:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--configfile", nargs="*", default=[], help="overlays, as for snakemake (none: the paper)"
    )
    args = parser.parse_args()
    configfiles = [str(Path(path).resolve()) for path in args.configfile]
    with tempfile.TemporaryDirectory() as workdir:
        rows = summarize(parse_jobs(dry_run(configfiles, Path(workdir))))
    print(table(rows, list(load_config(*configfiles)["defenses"])))
    print(result_line(rows))


if __name__ == "__main__":
    main()
