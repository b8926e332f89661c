"""Rule prepare_data: raw dataset -> prepared train/test split files."""

import argparse
import json
import logging
import sys

from robdml.data.image_files import LayoutError
from robdml.data.prepared import SplitError
from robdml.data.sources import prepare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec", required=True, help="dataset config entry, as JSON")
    parser.add_argument("--train", required=True, help="output: prepared training split")
    parser.add_argument("--test", required=True, help="output: prepared test split")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        summary = prepare(json.loads(args.spec), args.train, args.test)
    except (SplitError, LayoutError) as error:  # nothing is written: the split comes first
        sys.exit(f"error: {error}")
    logging.info("prepared: %s", summary)


if __name__ == "__main__":
    main()
