"""Rule sanity: gradient-masking checks per model from the long results table."""

import argparse
import json

import pandas as pd

from robdml.io import atomic_write
from robdml.sanity import not_run, sanity_table, verdict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--long", required=True, help="results/tables/long.csv")
    parser.add_argument("--spec", required=True, help="the `sanity` config section, as JSON")
    parser.add_argument("--suites", required=True, help="the `attack_suites` config, as JSON")
    parser.add_argument("--main-eps", type=float, required=True)
    parser.add_argument("--csv", required=True)
    parser.add_argument("--md", required=True)
    args = parser.parse_args()
    long = pd.read_csv(args.long, keep_default_na=False)
    table = sanity_table(long, json.loads(args.spec), json.loads(args.suites), args.main_eps)
    summary = verdict(table) + "\n\n"
    shown = table["passed"].map({True: "pass", False: "**FAIL**"}).where(~not_run(table), "not run")
    markdown = table.assign(passed=shown)
    atomic_write(args.csv, lambda tmp: table.to_csv(tmp, index=False))
    atomic_write(
        args.md, lambda tmp: tmp.write_text(summary + markdown.to_markdown(index=False) + "\n")
    )
    print(summary.strip())


if __name__ == "__main__":
    main()
