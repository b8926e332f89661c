"""Job granularity: how many jobs the shipped DAGs have, how long the paper's dry run takes,
and how much of a finished run's job time is process start-up rather than work.

    python benchmarks/dag.py                       # counts and the paper's dry-run time
    python benchmarks/dag.py --results results     # + start-up share of a finished run
    python benchmarks/dag.py --before 3150603      # + the counts at another commit

- Counts: forced dry runs (`snakemake -n --forceall`) of the paper (config/config.yaml), the
  full demo and the quick demo, in scratch directories; jobs per rule and in total.
- Dry run: wall time of `snakemake -n --quiet rules` on the paper config (median of 3, scratch
  directory). Snakemake's SLURM executor plugin runs `scontrol show config` whenever
  snakemake starts on a machine with `scontrol` on PATH; where no slurmctld answers, that
  probe waits for its timeout. Its time is measured alone and printed beside the dry run.
- Start-up share (`--results`, the results/ directory of a finished run): per job, its wall
  time (the `s` of its `benchmark:` file) minus the work its script recorded (attack,
  members and transfer jobs: `seconds.work` of their metrics JSON; training: the seconds of
  the epoch lines in its log, which holds the job's last run, as its benchmark file's last row
  does). Jobs that record no work time (data preparation, tables, figures, sanity, t-SNE)
  count whole as start-up: an upper bound.

Last line: `RESULT paper_jobs=... full_demo_jobs=... quick_demo_jobs=... dry_run_s=...
scontrol_probe_s=... startup_share=...` (startup_share only with --results; `*_before=`
counts with --before). Needs the dev environment (snakemake).
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIGS = {"paper": [], "full_demo": ["config/demo_full.yaml"], "quick_demo": ["config/demo.yaml"]}
# a training log's epoch line (robdml.training.EPOCH_LINE): its seconds of work
EPOCH_SECONDS = re.compile(r"epoch \d+: mean loss \S+, ([\d.]+) s")


def snakemake(repo: Path, args: list[str], workdir: Path) -> subprocess.CompletedProcess:
    """Snakemake on `repo`'s Snakefile in `workdir`; rules find this interpreter as `python`."""
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    command = [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "-d", str(workdir)]
    return subprocess.run(
        command + args, capture_output=True, text=True, env={**os.environ, "PATH": path}
    )  # fmt: skip


def job_counts(repo: Path, configfiles: list[str]) -> Counter:
    """Jobs per rule of a forced dry run (the `all` target not counted)."""
    with tempfile.TemporaryDirectory() as workdir:
        configs = (
            ["--configfile", *[str(repo / path) for path in configfiles]] if configfiles else []
        )
        run = snakemake(repo, ["-n", "--forceall", "--quiet", "rules", *configs], Path(workdir))
    if run.returncode != 0:
        raise SystemExit(f"dry run of {configfiles or 'config.yaml'} failed:\n{run.stderr[-2000:]}")
    table = run.stdout.split("Job stats:")[1].split("total")[0]
    counts = Counter({m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)})
    counts.pop("all", None)
    return counts


def dry_run_seconds(repetitions: int = 3) -> float:
    """Median wall time of the paper's dry run (`snakemake -n --quiet rules`)."""
    times = []
    with tempfile.TemporaryDirectory() as workdir:
        for _ in range(repetitions):
            started = time.perf_counter()
            run = snakemake(REPO, ["-n", "--quiet", "rules"], Path(workdir))
            times.append(time.perf_counter() - started)
            if run.returncode != 0:
                raise SystemExit(f"paper dry run failed:\n{run.stderr[-2000:]}")
    return statistics.median(times)


def scontrol_probe_seconds() -> float:
    """What the SLURM plugin's `scontrol show config` costs at every snakemake start here."""
    if shutil.which("scontrol") is None:
        return 0.0
    started = time.perf_counter()
    subprocess.run(["scontrol", "show", "config"], capture_output=True, timeout=30)
    return time.perf_counter() - started


def benchmark_seconds(path: Path) -> float:
    """Wall seconds of one job from its `benchmark:` file (header row, then one row per run)."""
    rows = path.read_text().splitlines()
    return float(rows[-1].split("\t")[0])


def recorded_work(results: Path, benchmark: Path) -> float | None:
    """Work seconds the job behind `benchmark` recorded, None where it records none."""
    parts = benchmark.relative_to(results / "benchmarks").with_suffix("").parts
    kind, rest = parts[0], parts[1:]
    if kind == "attack":  # attack/{d}/{b}/{defense}/seed{s}/{job}: metrics/.../{job}.json
        return json.loads((results / "metrics" / Path(*rest)).with_suffix(".json").read_text())[
            "seconds"
        ]["work"]
    if kind == "transfer":  # transfer/{d}/{b}/{defense}/seed{s}: metrics/.../transfer.json
        return json.loads((results / "metrics" / Path(*rest) / "transfer.json").read_text())[
            "seconds"
        ]["work"]
    if kind == "train":  # train/{d}/{b}/{defense}/seed{s}: logs/train/.../seed{s}.log
        log = (results / "logs" / "train" / Path(*rest)).with_suffix(".log").read_text()
        return sum(float(seconds) for seconds in EPOCH_SECONDS.findall(log))
    return None


def startup_share(results: Path) -> tuple[float, float, float]:
    """(start-up seconds, summed job seconds, work seconds) over every job of a finished run."""
    total = startup = 0.0
    for benchmark in sorted((results / "benchmarks").rglob("*.tsv")):
        wall = benchmark_seconds(benchmark)
        work = recorded_work(results, benchmark)
        total += wall
        startup += wall if work is None else max(wall - work, 0.0)
    return startup, total, total - startup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, help="results/ of a finished run")
    parser.add_argument("--before", help="a git revision to count the DAGs of as well")
    args = parser.parse_args()
    result = {}
    revisions = [("", REPO)]
    scratch = None
    if args.before:
        scratch = Path(tempfile.mkdtemp())
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q",
                        str(scratch / "before"), args.before], check=True)  # fmt: skip
        revisions.append(("_before", scratch / "before"))
    try:
        for suffix, repo in revisions:
            for name, configfiles in CONFIGS.items():
                counts = job_counts(repo, configfiles)
                result[f"{name}_jobs{suffix}"] = sum(counts.values())
                rules = ", ".join(f"{rule} {n}" for rule, n in counts.most_common())
                print(f"{name}{suffix}: {sum(counts.values())} jobs ({rules})")
    finally:
        if scratch is not None:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force",
                            str(scratch / "before")], check=False)  # fmt: skip
    result["dry_run_s"] = f"{dry_run_seconds():.1f}"
    result["scontrol_probe_s"] = f"{scontrol_probe_seconds():.1f}"
    print(f"paper dry run: {result['dry_run_s']} s (SLURM plugin's scontrol probe: "
          f"{result['scontrol_probe_s']} s of it)")  # fmt: skip
    if args.results:
        startup, total, work = startup_share(args.results)
        result["startup_share"] = f"{startup / total:.3f}"
        print(f"{args.results}: jobs sum to {total:.0f} s, work {work:.0f} s, start-up "
              f"{startup:.0f} s (share {startup / total:.1%})")  # fmt: skip
    print("RESULT " + " ".join(f"{key}={value}" for key, value in result.items()))


if __name__ == "__main__":
    main()
