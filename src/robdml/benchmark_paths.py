"""Where the jobs the cost table charges to a model write their Snakemake benchmark files, and
how a path is read back: the rules' `benchmark:` directives and robdml.job_costs use these
patterns, so the layout is declared once. Stdlib only: the Snakefile's planning imports it, and
so do report jobs in the torch environment."""

import re

# Under the run's benchmarks/ folder, in Snakemake's wildcard syntax. `members` comes before
# `attack`, whose pattern its path also matches.
COST_BENCHMARKS = {
    "train": "train/{dataset}/{backbone}/{defense}/seed{seed}.tsv",
    "members": "attack/{dataset}/{backbone}/{defense}/seed{seed}/members.tsv",
    "attack": "attack/{dataset}/{backbone}/{defense}/seed{seed}/{job}.tsv",
    "transfer": "transfer/{dataset}/{backbone}/{defense}/seed{seed}.tsv",
}

# each pattern as a regex matching the end of a path, a wildcard as one path component
ENDINGS = {
    kind: re.compile(
        "(?:^|/)" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(pattern)) + "$"
    )
    for kind, pattern in COST_BENCHMARKS.items()
}


def benchmark_fields(path: str) -> dict | None:
    """The kind and wildcards of the first COST_BENCHMARKS pattern that ends `path` (None: the
    path is no such benchmark file)."""
    for kind, ending in ENDINGS.items():
        match = ending.search(path)
        if match:
            return {"kind": kind, **match.groupdict()}
    return None
