"""CARS196 from its Kaggle mirror ("Stanford Car Dataset by classes folder",
jutrera/stanford-car-dataset-by-classes-folder): the same 16,185 photos, sorted into class
folders, in one zip that needs a Kaggle login and is placed by hand.

Layout inside the zip (the folders' train/test is the classification split and is not used):
    names.csv                                   one class name per line, in the official order:
                                                line i names class i (1-196)
    car_data/car_data/train/<class name>/*.jpg  8,144 images (cars_train, numbered per split)
    car_data/car_data/test/<class name>/*.jpg   8,041 images (cars_test)
    anno_train.csv, anno_test.csv               boxes and class ids (not needed: the folder says)

A folder is named after its class with '/' replaced by '-' ("Ram C/V Cargo Van Minivan 2012"
is in "Ram C-V Cargo Van Minivan 2012"). Each image's class is its folder's line in names.csv,
so the split (classes 1-98 train, 99-196 test) and the class names are the official source's.
"""

from pathlib import Path

from robdml.data.image_files import ImageSplit, LayoutError, first_classes_split

IMAGES = Path("car_data", "car_data")
PARTS = ("train", "test")


def read_split(raw: Path, extracted: Path, spec: dict) -> ImageSplit:
    """Image files and 0-based official class ids (folder -> names.csv line), split by id."""
    class_names = read_names(extracted / "names.csv")
    folder_ids = {folder_name(name): index for index, name in enumerate(class_names)}
    paths, labels = [], []
    for part in PARTS:
        folders = class_folders(extracted / IMAGES / part)
        unknown = sorted(folder.name for folder in folders if folder.name not in folder_ids)
        if unknown:
            raise LayoutError(
                f"{extracted / IMAGES / part}: class folders not named in names.csv: "
                f"{', '.join(repr(name) for name in unknown[:3])}"
                f"{f' and {len(unknown) - 3} more' if len(unknown) > 3 else ''}"
            )
        for folder in sorted(folders, key=lambda folder: folder_ids[folder.name]):
            images = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
            paths += images
            labels += [folder_ids[folder.name]] * len(images)
    return first_classes_split(paths, labels, class_names, spec["n_train_classes"])


def folder_name(class_name: str) -> str:
    """The folder a class's images are in: its name, '/' replaced by '-'."""
    return class_name.replace("/", "-")


def read_names(path: Path) -> list[str]:
    if not path.is_file():
        raise LayoutError(
            f"{path}: missing; the Kaggle zip holds names.csv and car_data/car_data/"
            "{train,test}/<class name>/*.jpg at its top level"
        )
    names = [line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines()]
    return [name for name in names if name]


def class_folders(path: Path) -> list[Path]:
    if not path.is_dir():
        raise LayoutError(
            f"{path}: missing; the Kaggle zip holds car_data/car_data/{{train,test}}/<class "
            "name>/*.jpg"
        )
    return [folder for folder in path.iterdir() if folder.is_dir()]
