"""Rule extract: verify every raw file of a dataset against its md5, then extract its archives.

A failure the user must act on (a wrong checksum, an unreadable or unsafe archive) is printed
as one message on stderr, so Snakemake shows it; nothing is extracted then.
"""

import argparse
import json
import logging
import sys
from pathlib import Path

from robdml.data.archives import CorruptArchiveError, UnsafeArchiveError
from robdml.data.download import ChecksumError
from robdml.data.raw_files import RAW_FILES, verify_and_extract


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", required=True, choices=sorted(RAW_FILES))
    parser.add_argument("--md5", required=True, help="{file name: md5 or null}, JSON")
    parser.add_argument("--out", required=True, help="output: folder of extracted files")
    parser.add_argument("--log", required=True, help="log file")
    parser.add_argument("raw", nargs="+", type=Path, help="the dataset's raw files")
    args = parser.parse_args()
    logging.basicConfig(
        filename=args.log, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    raw_files = RAW_FILES[args.source]
    try:
        verify_and_extract(args.raw, json.loads(args.md5), raw_files, Path(args.out))
    except (ChecksumError, CorruptArchiveError, UnsafeArchiveError) as error:
        logging.error("%s", error)
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
