"""A dataset's raw files: fetched (or placed by hand), verified, extracted.

Layout under the config's `data_root` (a cluster can point it at a shared read-only copy):

    {data_root}/{dataset}/raw/<file>      archives and metadata as published (rule download)
    {data_root}/{dataset}/extracted/      the archives' contents (rule extract)
    {data_root}/{dataset}/train.pt        training index: image paths + labels (rule prepare_data)
    {data_root}/{dataset}/test.pt         test images decoded at test resolution

A raw file whose config entry has a `url` is downloaded; one without must be placed by hand, and
a missing one stops the run with a single message saying where it goes, where to get it and its
checksum. Some data has two sources (CARS196: the official files, or Kaggle's mirror): a
dataset's config entry may list the raw files of both, the selected `source`'s are used, and
when only the other source's files were placed the message is one line saying which to select.
"""

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from robdml.data.archives import check_not_html, extract, is_archive
from robdml.data.download import download, verify_md5

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RawFile:
    """What a user needs to know to obtain one raw file and trust its checksum."""

    obtain: str
    checksum_origin: str


def stanford_cars(name: str) -> RawFile:
    return RawFile(
        obtain=f"the Stanford Cars dataset (Krause et al., 2013); its official link "
        f"http://imagenet.stanford.edu/internal/car196/{name} is dead, use a copy you trust "
        "(e.g. an archived snapshot of that link), or Kaggle's mirror (source cars196_kaggle)",
        checksum_origin="reported by third parties, not published by the dataset authors: if "
        "your copy differs, check where it came from before putting its md5 in the config",
    )


def deepfashion_inshop(path: str) -> RawFile:
    return RawFile(
        obtain="the DeepFashion In-shop Clothes Retrieval Benchmark, linked from "
        "https://mmlab.ie.cuhk.edu.hk/projects/DeepFashion/InShopRetrieval.html (Google Drive "
        f"folder In-shop Clothes Retrieval Benchmark/{path})",
        checksum_origin="no checksum is published: record the md5 of the copy you checked",
    )


KAGGLE_CARS = "jutrera/stanford-car-dataset-by-classes-folder"
NO_CHECKSUM = "no checksum is published: record the md5 of the copy you checked"

# Per config `source`, the raw files the dataset modules read (the schema requires the same
# names in the config, which adds the md5 and, for a download, the url).
RAW_FILES = {
    "cub200": {
        "CUB_200_2011.tgz": RawFile(
            obtain="https://data.caltech.edu/records/65de6-vp158 (downloaded automatically "
            "when the config gives its url)",
            checksum_origin="as listed on the CaltechDATA record",
        ),
    },
    "cars196": {name: stanford_cars(name) for name in ("car_ims.tgz", "cars_annos.mat")},
    "cars196_kaggle": {
        "stanford-car-dataset-by-classes-folder.zip": RawFile(
            obtain=f"Kaggle's CARS196 mirror https://www.kaggle.com/datasets/{KAGGLE_CARS} (a "
            f"Kaggle login is needed): `kaggle datasets download {KAGGLE_CARS}` saves it under "
            "this name, the website's Download button as archive.zip (rename it)",
            checksum_origin=NO_CHECKSUM,
        ),
    },
    "inshop": {
        "img.zip": deepfashion_inshop("Img/img.zip"),
        "list_eval_partition.txt": deepfashion_inshop("Eval/list_eval_partition.txt"),
    },
    "sop": {
        "Stanford_Online_Products.zip": RawFile(
            obtain="Stanford Online Products (Oh Song et al., 2016), "
            "https://cvgl.stanford.edu/projects/lifted_struct/; its link "
            "ftp://cs.stanford.edu/cs/cvgl/Stanford_Online_Products.zip is often unreachable: "
            "use a copy you trust, or give an http(s) mirror as the file's `url` in the config",
            checksum_origin=NO_CHECKSUM,
        ),
    },
}

# Sources that read the same data from different files: a dataset entry may list the raw files
# of all of them (only the selected source's are used, see robdml.config).
SAME_DATA = [("cars196", "cars196_kaggle")]


def other_sources(source: str) -> list[str]:
    """The sources that read the same data as `source` from other files."""
    return [other for group in SAME_DATA if source in group for other in group if other != source]


def allowed_raw_files(source: str) -> list[str]:
    """The raw-file names a dataset entry of `source` may list: its own, then its alternatives'."""
    return [name for s in [source, *other_sources(source)] for name in RAW_FILES[s]]


class MissingRawFileError(FileNotFoundError):
    """A raw file that must be placed by hand is not there."""


class MisplacedRawFileError(MissingRawFileError):
    """A raw file is missing, and the raw folder holds another source's files instead."""


def misplaced(dataset: str, source: str, raw_folder: Path) -> str | None:
    """One line saying which source to select when `raw_folder` holds none of `source`'s raw
    files but another source's of the same data; None otherwise."""
    present = {path.name for path in raw_folder.iterdir()} if raw_folder.is_dir() else set()
    if present & set(RAW_FILES[source]):
        return None  # this source's files are being placed: a missing one is just missing
    for other in other_sources(source):
        found = [name for name in RAW_FILES[other] if name in present]
        if found:
            return (
                f"{dataset}: {raw_folder.absolute()} holds {', '.join(found)} (source {other}) "
                f"instead of {', '.join(RAW_FILES[source])} (the selected source {source}): "
                f"select {other} with an overlay (--configfile) "
                f"`datasets: {{{dataset}: {{source: {other}}}}}`"
            )
    return None


def fetch(
    dataset: str,
    name: str,
    entry: dict,
    raw_file: RawFile,
    destination: Path,
    source: str | None = None,
) -> None:
    """Download raw file `name` when its config `entry` has a url; otherwise it is placed by
    hand, and its absence is reported with everything needed to fix it (in one line, when
    `source` is given and the raw folder holds another source's files instead)."""
    if entry.get("url"):
        download(entry["url"], destination, entry["md5"])
        return
    message = source and misplaced(dataset, source, destination.parent)
    if message:
        raise MisplacedRawFileError(message)
    md5 = entry["md5"] or "none known: record the md5 of your copy in the config"
    raise MissingRawFileError(
        f"{dataset}: raw file {name} is missing (it cannot be downloaded automatically).\n"
        f"  put it at:  {destination.absolute()}\n"
        f"  obtain it:  {raw_file.obtain}\n"
        f"  md5:        {md5} ({raw_file.checksum_origin})"
    )


def verify_and_extract(
    raw_paths: list[Path], checksums: dict, raw_files: dict[str, RawFile], target: Path
) -> None:
    """Check every raw file's md5, then extract the archives among them into `target`.

    Nothing is extracted unless all checksums match, and `target` appears only when every
    archive is fully extracted (it is built in a temporary sibling folder, then renamed).
    """
    for path in raw_paths:
        check_not_html(path)
        md5 = checksums[path.name]
        if md5 is None:
            log.warning("%s: no md5 configured, not verified", path)
            continue
        origin = raw_files[path.name].checksum_origin
        verify_md5(path, md5, note=f" as configured (the shipped value: {origin})")
        log.info("%s: md5 ok", path)
    if target.exists():
        raise FileExistsError(f"{target} exists; remove it to extract again")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        for path in raw_paths:
            if is_archive(path.name):
                log.info("extracting %s", path)
                extract(path, staging)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
