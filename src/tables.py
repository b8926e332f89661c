"""Rule tables: all metrics JSONs -> long.csv, main.{csv,md,tex} and the attacks, paired and
members tables."""

import argparse
import json
from pathlib import Path

from robdml.tables import write_tables


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--inputs", required=True, help="file listing the metrics JSONs")
    parser.add_argument("--main-eps", type=float, required=True, help="eps (/255) of main table")
    parser.add_argument("--long", required=True, type=Path)
    parser.add_argument("--csv", required=True, type=Path)
    parser.add_argument("--md", required=True, type=Path)
    parser.add_argument("--tex", required=True, type=Path)
    parser.add_argument("--suites", required=True, help="the `attack_suites` config, as JSON")
    parser.add_argument("--attacks-csv", required=True, type=Path)
    parser.add_argument("--attacks-md", required=True, type=Path)
    parser.add_argument("--baselines", nargs="*", default=[], help="defenses to pair against")
    parser.add_argument("--paired-csv", required=True, type=Path)
    parser.add_argument("--paired-md", required=True, type=Path)
    parser.add_argument("--members-csv", required=True, type=Path)
    parser.add_argument("--members-md", required=True, type=Path)
    args = parser.parse_args()
    paths = Path(args.inputs).read_text().split()
    out = {
        "long": args.long,
        "csv": args.csv,
        "md": args.md,
        "tex": args.tex,
        "paired_csv": args.paired_csv,
        "paired_md": args.paired_md,
        "members_csv": args.members_csv,
        "members_md": args.members_md,
        "attacks_csv": args.attacks_csv,
        "attacks_md": args.attacks_md,
    }
    write_tables(paths, args.main_eps, args.baselines, json.loads(args.suites), out)


if __name__ == "__main__":
    main()
