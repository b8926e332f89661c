"""Rule summary: results/summary.md, the run's headline in one file: the main table, the
sanity checks' verdict, the figures and where it all came from. `tools/copy_results.py`
copies measured tables into README and the docs."""

import argparse
import json
from pathlib import Path

from robdml.io import atomic_write
from robdml.provenance import provenance_text


def summary(main: str, provenance: dict, sanity: str, figures: list[str]) -> str:
    verdict = sanity.strip().splitlines()[0]
    figure_lines = "".join(f"- `{path}`\n" for path in figures if path.endswith(".png"))
    return (
        f"# Results\n\n{provenance_text(provenance)} Written {provenance['written']}.\n\n"
        f"## Main table\n\n{main.strip()}\n\n## Sanity checks\n\n{verdict} "
        "(`results/sanity/sanity.md`)\n\n## Figures\n\n" + figure_lines
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--main", required=True, type=Path, help="results/tables/main.md")
    parser.add_argument("--provenance", required=True, type=Path)
    parser.add_argument("--sanity", required=True, type=Path, help="results/sanity/sanity.md")
    parser.add_argument("--figures", nargs="+", required=True)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    text = summary(
        args.main.read_text(), json.loads(args.provenance.read_text()), args.sanity.read_text(),
        args.figures,
    )  # fmt: skip
    atomic_write(args.out, lambda tmp: tmp.write_text(text))


if __name__ == "__main__":
    main()
