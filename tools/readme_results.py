"""Copy the main table of a quick-demo run's results/summary.md into README.md, between the
markers `<!-- quick-demo-results:begin -->` and `<!-- quick-demo-results:end -->`, with the
provenance line naming the commit that produced it: README's demo numbers are never typed.

    snakemake --cores 2 --configfile config/demo.yaml   # a fresh clone, then:
    python tools/readme_results.py results/summary.md README.md
"""

import argparse
import re
import sys
from pathlib import Path

BEGIN, END = "<!-- quick-demo-results:begin -->", "<!-- quick-demo-results:end -->"


def headline(summary: str) -> str:
    """The provenance sentence and the main table (caption, table, notes) of a summary."""
    provenance = summary.split("\n\n")[1].strip()
    main = summary.split("## Main table\n\n", 1)[1].split("\n## ", 1)[0].strip()
    return f"{main}\n\n{provenance}"


def replace_block(readme: str, block: str) -> str:
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), flags=re.S)
    if len(pattern.findall(readme)) != 1:
        raise ValueError(f"README needs exactly one {BEGIN} ... {END} block")
    return pattern.sub(lambda _: f"{BEGIN}\n{block}\n{END}", readme)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("summary", type=Path, help="results/summary.md of a quick-demo run")
    parser.add_argument("readme", type=Path, help="README.md to update in place")
    args = parser.parse_args()
    try:
        text = replace_block(args.readme.read_text(), headline(args.summary.read_text()))
    except (ValueError, IndexError) as error:
        sys.exit(f"error: {args.summary} / {args.readme}: {error}")
    args.readme.write_text(text)


if __name__ == "__main__":
    main()
