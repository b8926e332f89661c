"""Turning a dataset's raw source into the prepared train/test split files."""

from pathlib import Path

from robdml.data import cars196, cars196_kaggle, cub200, inshop, sop
from robdml.data.glyphs import class_disjoint_split, render_glyphs
from robdml.data.image_files import write_image_split
from robdml.data.prepared import save_split

# JPEG datasets: each module reads its class split (`read_split`); raw files: `raw_files`.
IMAGE_SOURCES = {
    "cub200": cub200,
    "cars196": cars196,
    "cars196_kaggle": cars196_kaggle,
    "inshop": inshop,
    "sop": sop,
}


def prepare_glyphs(spec: dict, train_path: str | Path, test_path: str | Path) -> dict:
    """Render the glyphs, split the classes, write both splits; returns a summary."""
    glyphs = render_glyphs(spec["image_size"], spec["merge_threshold"])
    train_mask, test_mask = class_disjoint_split(
        glyphs.labels, spec["n_train_classes"], spec["split_seed"]
    )
    meta = {"source": "glyphs", "spec": spec}
    for path, mask in ((train_path, train_mask), (test_path, test_mask)):
        save_split(path, glyphs.images[mask], glyphs.labels[mask], glyphs.class_names, meta)
    return {
        "train_images": int(train_mask.sum()),
        "train_classes": int(glyphs.labels[train_mask].unique().numel()),
        "test_images": int(test_mask.sum()),
        "test_classes": int(glyphs.labels[test_mask].unique().numel()),
    }


def prepare_image_files(spec: dict, train_path: str | Path, test_path: str | Path) -> dict:
    """Index the training images and decode the test images of a JPEG dataset; returns a
    summary. Its raw files are in `raw/` and its archives extracted in `extracted/` next to
    `train_path` (rules download and extract, see `robdml.data.raw_files`)."""
    folder = Path(train_path).parent
    split = IMAGE_SOURCES[spec["source"]].read_split(folder / "raw", folder / "extracted", spec)
    return write_image_split(split, spec, train_path, test_path)


PREPARERS = {"glyphs": prepare_glyphs} | dict.fromkeys(IMAGE_SOURCES, prepare_image_files)


def prepare(spec: dict, train_path: str | Path, test_path: str | Path) -> dict:
    """Prepare the dataset described by `spec` (dispatch on `spec['source']`)."""
    return PREPARERS[spec["source"]](spec, train_path, test_path)
