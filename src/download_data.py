"""Rule download: one raw file of a dataset, downloaded (url in the config) or placed by hand.

Progress goes to the log file; a failure the user must act on (a missing manual file, a wrong
checksum, an unreachable server) is printed as one message on stderr, so Snakemake shows it.
"""

import argparse
import json
import logging
import sys
from pathlib import Path

from robdml.data.download import ChecksumError, DownloadError
from robdml.data.raw_files import RAW_FILES, MissingRawFileError, fetch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", required=True, help="dataset name in the config")
    parser.add_argument("--source", required=True, choices=sorted(RAW_FILES))
    parser.add_argument("--file", required=True, help="raw file name")
    parser.add_argument("--entry", required=True, help="the file's config entry (md5, url), JSON")
    parser.add_argument("--out", required=True, help="output: the raw file")
    parser.add_argument("--log", required=True, help="log file")
    args = parser.parse_args()
    logging.basicConfig(
        filename=args.log, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    raw_file = RAW_FILES[args.source][args.file]
    try:
        entry = json.loads(args.entry)
        fetch(args.dataset, args.file, entry, raw_file, Path(args.out), source=args.source)
    except (MissingRawFileError, ChecksumError, DownloadError) as error:
        logging.error("%s", error)
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
