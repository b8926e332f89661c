"""Real datasets, offline: tiny archives with the real file layouts go through the Snakemake
rules download -> extract -> prepare_data (CUB-200-2011 served over HTTP from 127.0.0.1; CARS196
(official files and Kaggle's mirror of the same images), In-Shop and Stanford Online Products
placed by hand); then the guards: checksums, resumed downloads, unsafe archives, missing or
misplaced manual files, unexpected layouts."""

import hashlib
import io
import os
import re
import socket
import subprocess
import sys
import tarfile
import threading
import warnings
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch
import tqdm
import yaml
from PIL import Image
from scipy.io import savemat

from conftest import REPO
from robdml.config import read_config
from robdml.data import cars196_kaggle, sop
from robdml.data.archives import CorruptArchiveError, UnsafeArchiveError, extract
from robdml.data.datasets import load_training_set
from robdml.data.download import ChecksumError, DownloadError, download
from robdml.data.image_files import LayoutError, first_classes_split, load_index, read_rgb
from robdml.data.prepared import SplitError, load_split
from robdml.data.raw_files import (
    RAW_FILES,
    MisplacedRawFileError,
    MissingRawFileError,
    fetch,
    verify_and_extract,
)
from robdml.data.transforms import resize_center_crop

# Six classes stand in for 200 (CUB) and 196 (CARS); the real split rule, "the first
# n_train_classes class ids train", runs with 3 instead of 100 and 98.
N_CLASSES, N_TRAIN_CLASSES, PER_CLASS = 6, 3, 2
IMAGE_SIZE, RESIZE_SIZE = 32, 36


def jpeg(index: int) -> bytes:
    """A small JPEG whose size varies with `index`, so resizing and cropping are exercised."""
    generator = torch.Generator().manual_seed(index)
    pixels = torch.randint(0, 256, (3, 40 + 3 * index, 48 + 2 * index), generator=generator)
    buffer = io.BytesIO()
    Image.fromarray(pixels.to(torch.uint8).permute(1, 2, 0).numpy()).save(buffer, "JPEG")
    return buffer.getvalue()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def tar_gz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def zipped(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def cub_archive() -> bytes:
    """CUB_200_2011.tgz: metadata tables and images/<class folder>/<file>.jpg."""
    root = "CUB_200_2011"
    folders = [f"{c:03d}.Bird_{c}" for c in range(1, N_CLASSES + 1)]
    files, images, labels, split = {}, [], [], []
    for image_id in range(1, N_CLASSES * PER_CLASS + 1):
        class_id = (image_id - 1) // PER_CLASS + 1
        name = f"{folders[class_id - 1]}/Bird_{class_id}_{image_id:04d}.jpg"
        files[f"{root}/images/{name}"] = jpeg(image_id)
        images.append(f"{image_id} {name}")
        labels.append(f"{image_id} {class_id}")
        split.append(f"{image_id} {image_id % 2}")
    files[f"{root}/images.txt"] = "\n".join(images).encode() + b"\n"
    files[f"{root}/image_class_labels.txt"] = "\n".join(labels).encode() + b"\n"
    files[f"{root}/train_test_split.txt"] = "\n".join(split).encode() + b"\n"
    classes = [f"{c} {folder}" for c, folder in enumerate(folders, start=1)]
    files[f"{root}/classes.txt"] = "\n".join(classes).encode() + b"\n"
    return tar_gz(files)


CAR_CLASS_NAMES = [f"Make Model {c}" for c in range(1, N_CLASSES + 1)]
CAR_CLASS_NAMES[4] = "Ram C/V Model 5"  # Kaggle's folder for it: "Ram C-V Model 5"
KAGGLE_ZIP = "stanford-car-dataset-by-classes-folder.zip"


def car_images() -> list[tuple[int, int, bytes]]:
    """(class id, classification `test` flag, JPEG) per CARS196 image, in car_ims order; class
    ids interleaved, so the split must go by class id."""
    n_images = N_CLASSES * PER_CLASS
    return [(i % N_CLASSES + 1, i // N_CLASSES % 2, jpeg(i)) for i in range(n_images)]


def cars_files() -> dict[str, bytes]:
    """car_ims.tgz and cars_annos.mat with the official struct fields."""
    fields = ["relative_im_path", "bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "test"]
    cars = car_images()
    annotations = np.zeros((1, len(cars)), dtype=[(field, "O") for field in fields])
    images = {}
    for index, (class_id, test, image) in enumerate(cars):
        path = f"car_ims/{index + 1:06d}.jpg"
        images[path] = image
        annotations[0, index] = (path, 1, 1, 30, 20, class_id, test)
    class_names = np.array(CAR_CLASS_NAMES, dtype=object)
    mat = io.BytesIO()
    savemat(mat, {"annotations": annotations, "class_names": class_names.reshape(1, -1)})
    return {"car_ims.tgz": tar_gz(images), "cars_annos.mat": mat.getvalue()}


def kaggle_cars_files() -> dict[str, bytes]:
    """Kaggle's mirror of the same images in one zip: names.csv (class i on line i),
    car_data/car_data/{train,test}/<class name, '/' -> '-'>/<number within the part>.jpg (so
    both parts hold a 00001.jpg) and anno_{train,test}.csv."""
    files, rows = {}, {"train": [], "test": []}
    for class_id, test, image in car_images():
        part = "test" if test else "train"
        name = f"{len(rows[part]) + 1:05d}.jpg"
        folder = CAR_CLASS_NAMES[class_id - 1].replace("/", "-")
        files[f"car_data/car_data/{part}/{folder}/{name}"] = image
        rows[part].append(f"{name},1,1,30,20,{class_id}")
    files["names.csv"] = "\n".join(CAR_CLASS_NAMES).encode() + b"\n"
    for part, lines in rows.items():
        files[f"anno_{part}.csv"] = "\n".join(lines).encode() + b"\n"
    return {KAGGLE_ZIP: zipped(files)}


SOP_HEADER = "image_id class_id super_class_id path"


def sop_files() -> dict[str, bytes]:
    """Stanford_Online_Products.zip: Ebay_{train,test}.txt (a header, then one line per image)
    and the images in <super class>_final/; class ids 1-3 train, 4-6 test."""
    root, files, lists = "Stanford_Online_Products", {}, {"train": [], "test": []}
    for class_id in range(1, N_CLASSES + 1):
        part = "train" if class_id <= N_TRAIN_CLASSES else "test"
        super_class, folder = (1, "bicycle_final") if class_id % 2 else (2, "chair_final")
        for n in range(PER_CLASS):
            image_id = sum(map(len, lists.values())) + 1
            path = f"{folder}/{111085122870 + class_id}_{n}.JPG"
            files[f"{root}/{path}"] = jpeg(image_id)
            lists[part].append(f"{image_id} {class_id} {super_class} {path}")
    for part, lines in lists.items():
        files[f"{root}/Ebay_{part}.txt"] = "\n".join([SOP_HEADER, *lines]).encode() + b"\n"
    return {"Stanford_Online_Products.zip": zipped(files)}


INSHOP_ITEMS = {  # item -> partition of each of its images
    "id_00000001": ["train", "train"],
    "id_00000002": ["train", "train"],
    "id_00000003": ["train", "train", "train"],
    "id_00000005": ["query", "gallery", "gallery"],
    "id_00000007": ["query", "query", "gallery"],
}


def inshop_files() -> dict[str, bytes]:
    """img.zip and list_eval_partition.txt (a count line, a header, one line per image)."""
    images, lines = {}, []
    for item, partitions in INSHOP_ITEMS.items():
        for index, partition in enumerate(partitions):
            path = f"img/WOMEN/Dresses/{item}/{index + 1:02d}_1_front.jpg"
            images[path] = jpeg(len(images))
            lines.append(f"{path}    {item} {partition}")
    header = [str(len(lines)), "image_name item_id evaluation_status"]
    partition = "\n".join(header + lines).encode() + b"\n"
    return {"img.zip": zipped(images), "list_eval_partition.txt": partition}


class RangeHandler(BaseHTTPRequestHandler):
    """Serves the bytes in `server.files` with HTTP Range support; when `server.cut_first` is
    set, the first response stops halfway, like a dropped connection."""

    def do_GET(self):  # noqa: N802 (http.server's naming)
        data = self.server.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        self.server.ranges.append(self.headers.get("Range"))
        start = (
            int(self.headers["Range"].split("=")[1].rstrip("-")) if "Range" in self.headers else 0
        )
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body = data[start:]
        if self.server.cut_first:
            self.server.cut_first = False
            body = body[: len(body) // 2]
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    """An HTTP server on 127.0.0.1 (tests never touch the real dataset URLs)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    httpd.files, httpd.ranges, httpd.cut_first = {}, [], False
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()


def url(server, name: str) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/{name}"


def dataset_entry(source: str, raw_files: dict) -> dict:
    entry = {
        "source": source,
        "image_size": IMAGE_SIZE,
        "resize_size": RESIZE_SIZE,
        "channels": 3,
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "train_transform": "imagenet_crop_flip",
        "raw_files": raw_files,
    }
    if source in ("cub200", "cars196", "cars196_kaggle"):
        entry["n_train_classes"] = N_TRAIN_CLASSES
    return entry


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the repository's Snakefile in `workdir`; rules find this interpreter as `python`."""
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir)]
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, env={**os.environ, "PATH": path}
    )


def snakemake_build(workdir: Path, datasets: dict, *targets: str) -> subprocess.CompletedProcess:
    """Build `targets` with the demo config's settings, `datasets` and data in workdir/data."""
    config = read_config(REPO / "config/demo.yaml")
    config.update(data_root=str(workdir / "data"), datasets=datasets)
    config["run"]["datasets"] = list(datasets)
    config_path = workdir / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    return snakemake(
        workdir, "--configfile", str(config_path), "--cores", "1", "--keep-going", *targets
    )


def test_kaggle_cars_and_sop_plan_only_their_own_raw_files(tmp_path):
    """`source: cars196_kaggle` swaps CARS196's raw files for the Kaggle zip listed next to
    them in the config; sop is defined but runs only when selected."""
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(
        "run: {datasets: [cars196, sop]}\ndatasets: {cars196: {source: cars196_kaggle}}\n"
    )
    targets = ["data/cars196/train.pt", "data/sop/train.pt"]
    run = snakemake(tmp_path, "-n", *targets, "--configfile", str(overlay))
    assert run.returncode == 0, run.stderr[-3000:]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", run.stdout.split("Job stats:")[1], re.MULTILINE))
    assert counts == {"download": "2", "extract": "2", "prepare_data": "2", "total": "6"}
    assert f"data/cars196/raw/{KAGGLE_ZIP}" in run.stdout
    assert "data/sop/raw/Stanford_Online_Products.zip" in run.stdout
    assert "car_ims.tgz" not in run.stdout and "cars_annos.mat" not in run.stdout


def test_paper_config_plans_download_extract_prepare_offline(tmp_path):
    targets = [f"data/{name}/train.pt" for name in ("cub200", "cars196", "inshop")]
    run = snakemake(tmp_path, "-n", *targets, "--configfile", str(REPO / "config/config.yaml"))
    assert run.returncode == 0, run.stderr[-3000:]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", run.stdout.split("Job stats:")[1], re.MULTILINE))
    assert counts == {"download": "5", "extract": "3", "prepare_data": "3", "total": "11"}


@pytest.fixture(scope="module")
def prepared(server, tmp_path_factory):
    """Every source built by the real rules (CARS196's Kaggle mirror as dataset
    cars196_kaggle); returns the data folder."""
    workdir = tmp_path_factory.mktemp("datasets")
    data = workdir / "data"
    cub = cub_archive()
    server.files["/CUB_200_2011.tgz"] = cub
    datasets = {"cub200": dataset_entry("cub200", {"CUB_200_2011.tgz": {"md5": md5(cub)}})}
    datasets["cub200"]["raw_files"]["CUB_200_2011.tgz"]["url"] = url(server, "CUB_200_2011.tgz")
    for name, files in (
        ("cars196", cars_files()),
        ("cars196_kaggle", kaggle_cars_files()),
        ("inshop", inshop_files()),
        ("sop", sop_files()),
    ):
        (data / name / "raw").mkdir(parents=True)
        for file_name, content in files.items():
            (data / name / "raw" / file_name).write_bytes(content)
        datasets[name] = dataset_entry(name, {f: {"md5": md5(c)} for f, c in files.items()})
    targets = [str(data / name / "train.pt") for name in datasets]
    run = snakemake_build(workdir, datasets, *targets)
    assert run.returncode == 0, run.stderr[-3000:]
    return data


@pytest.mark.parametrize("name", ["cub200", "cars196", "cars196_kaggle"])
def test_class_id_split(prepared, name):
    """First N_TRAIN_CLASSES class ids train, the rest test; labels renumbered 0..C-1."""
    train = load_index(prepared / name / "train.pt")
    test = load_split(prepared / name / "test.pt")
    n_test_classes = N_CLASSES - N_TRAIN_CLASSES
    assert len(train["paths"]) == N_TRAIN_CLASSES * PER_CLASS
    assert all(path.is_file() for path in train["paths"])
    assert sorted(train["labels"].tolist()) == sorted(list(range(N_TRAIN_CLASSES)) * PER_CLASS)
    assert sorted(test["labels"].tolist()) == sorted(list(range(n_test_classes)) * PER_CLASS)
    assert test["images"].shape == (n_test_classes * PER_CLASS, 3, IMAGE_SIZE, IMAGE_SIZE)
    assert test["images"].dtype == torch.uint8
    assert not set(train["class_names"]) & set(test["class_names"])
    first_test_class = {"cub200": "004.Bird_4"}.get(name, "Make Model 4")
    assert test["class_names"][0] == first_test_class


def labelled_images(prepared: Path, name: str) -> tuple[list, list]:
    """(class name, md5 of the file) per training image and (class name, md5 of the decoded
    pixels) per test image, sorted: what a split holds, whatever its order."""
    train = load_index(prepared / name / "train.pt")
    test = load_split(prepared / name / "test.pt")
    train_pairs = [
        (train["class_names"][label], md5(path.read_bytes()))
        for path, label in zip(train["paths"], train["labels"].tolist(), strict=True)
    ]
    test_pairs = [
        (test["class_names"][label], md5(image.numpy().tobytes()))
        for image, label in zip(test["images"], test["labels"].tolist(), strict=True)
    ]
    return sorted(train_pairs), sorted(test_pairs)


def test_kaggle_cars_mirror_gives_the_official_split(prepared):
    """The same images from Kaggle's class folders get the official class ids (names.csv order,
    'Ram C/V' found in its 'Ram C-V' folder): same classes, same images per class, same labels."""
    official = [load_index(prepared / "cars196/train.pt"), load_split(prepared / "cars196/test.pt")]
    kaggle = [
        load_index(prepared / "cars196_kaggle/train.pt"),
        load_split(prepared / "cars196_kaggle/test.pt"),
    ]
    for ours, theirs in zip(official, kaggle, strict=True):
        assert theirs["class_names"] == ours["class_names"]
        assert sorted(theirs["labels"].tolist()) == sorted(ours["labels"].tolist())
    assert "Ram C/V Model 5" in kaggle[1]["class_names"]
    assert labelled_images(prepared, "cars196_kaggle") == labelled_images(prepared, "cars196")
    assert kaggle[1]["meta"]["source"] == "cars196_kaggle"


def test_sop_split_is_ebay_train_and_ebay_test(prepared):
    """Ebay_train.txt's products train, Ebay_test.txt's test, in file order; a class is named by
    its class id."""
    train = load_index(prepared / "sop" / "train.pt")
    test = load_split(prepared / "sop" / "test.pt")
    assert train["class_names"] == ["1", "2", "3"] and test["class_names"] == ["4", "5", "6"]
    assert train["labels"].tolist() == [0, 0, 1, 1, 2, 2]
    assert test["labels"].tolist() == [0, 0, 1, 1, 2, 2]
    assert [path.parent.name for path in train["paths"]][::2] == [
        "bicycle_final", "chair_final", "bicycle_final"
    ]  # fmt: skip
    assert all(path.is_file() for path in train["paths"])
    assert test["images"].shape == (N_CLASSES // 2 * PER_CLASS, 3, IMAGE_SIZE, IMAGE_SIZE)


def test_cub_labels_follow_the_class_table(prepared):
    train = load_index(prepared / "cub200" / "train.pt")
    for path, label in zip(train["paths"], train["labels"].tolist(), strict=True):
        assert path.parent.name == train["class_names"][label]


def test_test_images_are_resized_and_centre_cropped_once(prepared):
    test = load_split(prepared / "cub200" / "test.pt")
    first = prepared / "cub200/extracted/CUB_200_2011/images/004.Bird_4/Bird_4_0007.jpg"
    expected = resize_center_crop(RESIZE_SIZE, IMAGE_SIZE)(read_rgb(first))
    assert torch.equal(test["images"][0], expected)


def test_inshop_partitions(prepared):
    """Train items in train.pt; query + gallery in test.pt with meta['is_query']."""
    train = load_index(prepared / "inshop" / "train.pt")
    test = load_split(prepared / "inshop" / "test.pt")
    partitions = [p for parts in INSHOP_ITEMS.values() for p in parts]
    assert len(train["paths"]) == partitions.count("train")
    assert train["class_names"] == ["id_00000001", "id_00000002", "id_00000003"]
    assert test["class_names"] == ["id_00000005", "id_00000007"]
    assert test["labels"].tolist() == [0, 0, 0, 1, 1, 1]
    assert test["meta"]["is_query"].tolist() == [True, False, False, True, True, False]


def test_training_set_decodes_and_augments_reproducibly(prepared):
    spec = dataset_entry("cub200", {})
    train_set = load_training_set(prepared / "cub200" / "train.pt", spec)
    image, label = train_set[(1, 7)]
    assert image.shape == (3, IMAGE_SIZE, IMAGE_SIZE) and image.dtype == torch.float32
    assert 0 <= image.min() and image.max() <= 1
    assert torch.equal(train_set[(1, 7)][0], image)  # same sample seed, same crop
    assert not torch.equal(train_set[(1, 8)][0], image)
    assert train_set.labels.dtype == torch.int64 and int(label) == train_set.labels[1]


def photo_like(height: int, width: int, channels: int) -> np.ndarray:
    """uint8 [H, W, C]: smooth colours plus grain, so JPEG's chroma subsampling and the
    colour conversions have something to get wrong."""
    generator = np.random.default_rng(channels * 1000 + height)
    coarse = torch.tensor(generator.random((1, channels, 6, 8)), dtype=torch.float32) * 200
    smooth = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear")
    grain = torch.tensor(generator.random((channels, height, width)), dtype=torch.float32) * 50
    return (smooth[0] + grain).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def torchvision_rgb(path: Path) -> torch.Tensor:
    """robdml's previous decoder, torchvision.io's decode_image (deprecated since 0.29)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from torchvision.io import ImageReadMode, decode_image

        return decode_image(str(path), mode=ImageReadMode.RGB)


# (file name, PIL mode, save options): the colour layouts the four datasets hold (CUB has a
# few grey JPEGs, CARS196 a few CMYK ones) and the PNG layouts decode_image converts.
DECODE_CASES = [
    ("rgb.jpg", "RGB", {"quality": 90}),
    ("rgb444.jpg", "RGB", {"quality": 95, "subsampling": 0}),
    ("progressive.jpg", "RGB", {"quality": 85, "progressive": True}),
    ("grey.jpg", "L", {"quality": 90}),
    ("cmyk.jpg", "CMYK", {"quality": 90}),
    ("rgba.png", "RGBA", {}),
    ("grey.png", "L", {}),
    ("palette.png", "P", {}),
]


@pytest.mark.parametrize(
    ("name", "mode", "options"), DECODE_CASES, ids=[c[0] for c in DECODE_CASES]
)
def test_read_rgb_decodes_jpeg_and_png_as_the_previous_decoder_did(tmp_path, name, mode, options):
    """Pillow decodes to uint8 [3, H, W] RGB, pixel for pixel what torchvision.io's
    decode_image (robdml's previous decoder) gave, JPEG included: prepared splits unchanged."""
    pixels = photo_like(45, 62, 4 if mode == "RGBA" else 3)
    image = Image.fromarray(pixels, "RGBA" if mode == "RGBA" else "RGB").convert(mode)
    path = tmp_path / name
    image.save(path, **options)
    decoded = read_rgb(path)
    assert decoded.dtype == torch.uint8 and decoded.shape == (3, 45, 62)
    assert torch.equal(decoded, torchvision_rgb(path))


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_decoded_images_keep_their_stored_orientation(tmp_path, suffix, orientation):
    """An EXIF orientation tag does not rotate or flip the image, as in Proxy Anchor's loading
    and robdml's previous decoder (TorchCodec would apply it)."""
    pixels = photo_like(30, 40, 3)
    pixels[:8, :8] = 255  # a white top-left corner: any flip or rotation moves it
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = orientation
    path = tmp_path / f"oriented{suffix}"
    image.save(path, exif=exif, **({"quality": 95} if suffix == ".jpg" else {}))
    with Image.open(path) as saved:
        assert saved.getexif()[0x0112] == orientation
    decoded = read_rgb(path)
    assert decoded.shape == (3, 30, 40)
    assert torch.equal(decoded, torchvision_rgb(path))


def test_wrong_md5_and_missing_manual_file_stop_with_one_message(server, tmp_path):
    """Through Snakemake: a bad checksum names both md5s and leaves nothing behind; a missing
    manual file names the file, where to put it, where to get it and its checksum."""
    cub = cub_archive()
    server.files["/bad/CUB_200_2011.tgz"] = cub
    wrong = "0" * 32
    datasets = {
        "cub200": dataset_entry(
            "cub200",
            {"CUB_200_2011.tgz": {"md5": wrong, "url": url(server, "bad/CUB_200_2011.tgz")}},
        ),
        "cars196": dataset_entry(
            "cars196", {"car_ims.tgz": {"md5": "1" * 32}, "cars_annos.mat": {"md5": "2" * 32}}
        ),
    }
    data = tmp_path / "data"
    run = snakemake_build(
        tmp_path, datasets, str(data / "cub200/train.pt"), str(data / "cars196/train.pt")
    )
    assert run.returncode != 0
    output = run.stdout + run.stderr
    assert f"md5 is {md5(cub)}, expected {wrong}" in output
    assert not list((data / "cub200").rglob("CUB_200_2011.tgz*"))  # no file, no .part
    assert "raw file car_ims.tgz is missing" in output
    assert str(data / "cars196" / "raw" / "car_ims.tgz") in output
    assert "1" * 32 in output and "third parties" in output


def test_a_split_without_test_classes_is_one_line_with_the_classes_found():
    paths, labels = [Path(f"{i}.jpg") for i in range(6)], [0, 0, 1, 1, 2, 2]
    with pytest.raises(SplitError, match=r"n_train_classes: 3 leaves no test classes \(3 class"):
        first_classes_split(paths, labels, ["a", "b", "c"], 3)
    assert len(first_classes_split(paths, labels, ["a", "b", "c"], 2).test_paths) == 2


def test_download_resumes_after_a_dropped_connection(server, tmp_path):
    data = b"x" * 100_000 + b"y" * 100_000
    server.files["/resume.bin"] = data
    server.cut_first, server.ranges[:] = True, []
    destination = tmp_path / "resume.bin"
    download(url(server, "resume.bin"), destination, md5(data), backoff_s=0)
    assert destination.read_bytes() == data
    assert server.ranges == [None, "bytes=100000-"]
    assert not (tmp_path / "resume.bin.part").exists()


def shown_bars(monkeypatch) -> list:
    """The progress bars drawn from now on (shown even off a terminal, into a string)."""
    bars = []

    class Shown(tqdm.tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**kwargs, "disable": False, "file": io.StringIO()})
            bars.append(self)

    monkeypatch.setattr(tqdm, "tqdm", Shown)
    return bars


def test_a_download_shows_its_bytes_on_a_progress_bar_from_where_it_resumed(
    server, tmp_path, monkeypatch
):
    """The 1.1 GB CUB archive takes minutes: each attempt's bar counts the whole file, the
    resumed one starting at the bytes already kept."""
    bars = shown_bars(monkeypatch)
    data = b"x" * 100_000 + b"y" * 100_000
    server.files["/shown.bin"] = data
    server.cut_first, server.ranges[:] = True, []
    download(url(server, "shown.bin"), tmp_path / "shown.bin", md5(data), backoff_s=0)
    assert [(bar.total, bar.n) for bar in bars] == [(200_000, 100_000), (200_000, 200_000)]
    assert "shown.bin" in bars[1].fp.getvalue()


def test_a_failed_download_says_what_it_kept(server, tmp_path):
    """Offline nothing arrives and no .part is named; a cut transfer names the .part it keeps."""
    with socket.socket() as closed:  # a port nothing listens on: connection refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(DownloadError, match=r"no bytes were received, so nothing is kept$"):
        download(f"http://127.0.0.1:{port}/a.bin", tmp_path / "a.bin", None, attempts=1)
    assert list(tmp_path.iterdir()) == []
    server.files["/b.bin"], server.cut_first = b"x" * 1000, True
    part = tmp_path / "b.bin.part"
    with pytest.raises(DownloadError, match=f"the 500 bytes .* kept in {re.escape(str(part))}"):
        download(url(server, "b.bin"), tmp_path / "b.bin", None, attempts=1)
    assert part.stat().st_size == 500


def test_download_with_wrong_md5_leaves_no_file(server, tmp_path):
    server.files["/data.bin"] = b"payload"
    with pytest.raises(
        ChecksumError, match=f"md5 is {md5(b'payload')}, expected {'f' * 32}"
    ) as error:
        download(url(server, "data.bin"), tmp_path / "data.bin", "f" * 32)
    assert list(tmp_path.iterdir()) == []
    assert str(error.value).startswith(f"{tmp_path / 'data.bin'} (downloaded from ")  # not .part


def truncated(archive: bytes) -> bytes:
    return archive[: len(archive) // 2]


HTML_PAGE = b"<!DOCTYPE html>\n<html><head><title>Link expired</title></head></html>\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (truncated, r"cannot be read as an archive, truncated or damaged \(.+\); delete it"),
        (lambda archive: HTML_PAGE, r"an HTML page, not the dataset file .+ download the file"),
    ],
    ids=["truncated", "html"],
)
def test_a_broken_archive_is_one_line_naming_it_and_nothing_is_extracted(
    tmp_path, content, message
):
    archive = tmp_path / "raw" / "CUB_200_2011.tgz"
    archive.parent.mkdir()
    archive.write_bytes(content(cub_archive()))
    target = tmp_path / "extracted"
    with pytest.raises(CorruptArchiveError, match=message) as error:
        verify_and_extract([archive], {archive.name: None}, RAW_FILES["cub200"], target)
    assert str(error.value).startswith(str(archive)) and "\n" not in str(error.value)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["raw"]  # no staging left


def test_a_wrong_md5_of_a_placed_file_says_it_is_the_configured_one(tmp_path):
    raw = tmp_path / "car_ims.tgz"
    raw.write_bytes(b"not the archive")
    with pytest.raises(ChecksumError, match=r"expected 0{32} as configured \(the shipped value"):
        verify_and_extract([raw], {raw.name: "0" * 32}, RAW_FILES["cars196"], tmp_path / "out")


def test_missing_manual_file_message(tmp_path):
    destination = tmp_path / "raw" / "car_ims.tgz"
    entry = {"md5": "d5c8f0aa497503f355e17dc7886c3f14"}
    with pytest.raises(MissingRawFileError) as error:
        fetch("cars196", "car_ims.tgz", entry, RAW_FILES["cars196"]["car_ims.tgz"], destination)
    message = str(error.value)
    for fact in ("car_ims.tgz", str(destination), "imagenet.stanford.edu", entry["md5"]):
        assert fact in message
    assert message.count("\n") == 3  # one message: the problem, then where, how, checksum


@pytest.mark.parametrize(
    ("source", "placed", "expected"),
    [
        (
            "cars196",
            [KAGGLE_ZIP],
            f"holds {KAGGLE_ZIP} (source cars196_kaggle) instead of car_ims.tgz, cars_annos.mat "
            "(the selected source cars196): select cars196_kaggle with an overlay (--configfile) "
            "`datasets: {cars196: {source: cars196_kaggle}}`",
        ),
        (
            "cars196_kaggle",
            ["car_ims.tgz", "cars_annos.mat"],
            f"holds car_ims.tgz, cars_annos.mat (source cars196) instead of {KAGGLE_ZIP} (the "
            "selected source cars196_kaggle): select cars196 with an overlay (--configfile) "
            "`datasets: {cars196: {source: cars196}}`",
        ),
    ],
    ids=["kaggle_zip_for_official", "official_for_kaggle_zip"],
)
def test_another_sources_files_in_raw_say_which_source_to_select(
    tmp_path, source, placed, expected
):
    """Through the download rule's script: one line naming the folder, what it holds, and the
    config key that selects the source those files belong to."""
    raw = tmp_path / "data" / "cars196" / "raw"
    raw.mkdir(parents=True)
    for name in placed:
        (raw / name).write_bytes(b"placed by hand")
    wanted = next(iter(RAW_FILES[source]))
    run = subprocess.run(
        [sys.executable, str(REPO / "src/download_data.py"), "--dataset", "cars196",
         "--source", source, "--file", wanted, "--entry", '{"md5": null}',
         "--out", str(raw / wanted), "--log", str(tmp_path / "download.log")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 1
    assert run.stderr == f"error: cars196: {raw} {expected}\n"


def test_a_missing_file_of_a_source_being_placed_is_just_missing(tmp_path):
    """One official file placed: the other is reported missing (where, how, md5), even with
    the Kaggle zip lying next to it."""
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "car_ims.tgz").write_bytes(b"placed")
    (raw / KAGGLE_ZIP).write_bytes(b"placed")
    entry, raw_file = {"md5": None}, RAW_FILES["cars196"]["cars_annos.mat"]
    with pytest.raises(MissingRawFileError) as error:
        fetch("cars196", "cars_annos.mat", entry, raw_file, raw / "cars_annos.mat", "cars196")
    assert not isinstance(error.value, MisplacedRawFileError)
    assert str(raw / "cars_annos.mat") in str(error.value)
    assert "Kaggle's mirror (source cars196_kaggle)" in str(error.value)


@pytest.mark.parametrize(
    ("source", "name", "facts"),
    [
        ("cars196_kaggle", KAGGLE_ZIP, ["kaggle datasets download jutrera/", "archive.zip"]),
        ("sop", "Stanford_Online_Products.zip", ["ftp://cs.stanford.edu/cs/cvgl/", "`url`"]),
    ],
)
def test_missing_kaggle_cars_and_sop_zips_say_where_and_how(tmp_path, source, name, facts):
    destination = tmp_path / "raw" / name
    with pytest.raises(MissingRawFileError) as error:
        fetch(source, name, {"md5": None}, RAW_FILES[source][name], destination, source)
    message = str(error.value)
    for fact in [f"raw file {name} is missing", str(destination), "none known", *facts]:
        assert fact in message
    assert message.count("\n") == 3


def test_a_kaggle_class_folder_missing_from_names_csv_is_one_line(tmp_path):
    (tmp_path / "names.csv").write_text("Make Model 1\nRam C/V Model 2\n")
    for folder in ("train/Make Model 1", "train/Ram C-V Model 2", "test/Ram C/V Model 2"):
        (tmp_path / "car_data/car_data" / folder).mkdir(parents=True, exist_ok=True)
    with pytest.raises(LayoutError, match=r"test: class folders not named in names\.csv: 'Ram C'$"):
        cars196_kaggle.read_split(tmp_path, tmp_path, {"n_train_classes": 1})


@pytest.mark.parametrize(
    ("train", "test", "message"),
    [
        (
            "1 1 1 a_final/1_0.JPG",
            "2 1 1 a_final/1_1.JPG",
            r"^1 classes in both the training and the test split \(e\.g\. '1'\); the split",
        ),
        ("1 1 1", "2 2 1 a_final/2_0.JPG", r"Ebay_train\.txt:2: expected 'image_id class_id"),
    ],
    ids=["shared_class", "short_line"],
)
def test_a_sop_list_that_is_not_the_benchmarks_is_one_line(tmp_path, train, test, message):
    root = tmp_path / "Stanford_Online_Products"
    root.mkdir()
    for part, line in (("train", train), ("test", test)):
        (root / f"Ebay_{part}.txt").write_text(f"{SOP_HEADER}\n{line}\n")
    with pytest.raises(LayoutError, match=message) as error:
        sop.read_split(tmp_path, tmp_path, {})
    assert "\n" not in str(error.value)


def hostile_tar(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.addfile(tarfile.TarInfo("ok.txt"), io.BytesIO(b""))
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind, linkname
        archive.addfile(info, io.BytesIO(b""))
    return buffer.getvalue()


@pytest.mark.parametrize(
    "archive_name, content",
    [
        ("parent.tgz", hostile_tar("../evil.txt")),
        ("nested.tgz", hostile_tar("a/../../evil.txt")),
        ("absolute.tgz", hostile_tar("/tmp/evil.txt")),
        ("symlink.tgz", hostile_tar("link", tarfile.SYMTYPE, "../../etc")),
        ("abs_symlink.tgz", hostile_tar("link", tarfile.SYMTYPE, "/etc")),
        ("hardlink.tgz", hostile_tar("link", tarfile.LNKTYPE, "../outside")),
        ("device.tgz", hostile_tar("dev", tarfile.CHRTYPE)),
        ("parent.zip", zipped({"ok.txt": b"", "../evil.txt": b"x"})),
        ("absolute.zip", zipped({"/evil.txt": b"x"})),
    ],
)
def test_unsafe_archives_are_refused_before_writing_anything(tmp_path, archive_name, content):
    archive = tmp_path / archive_name
    archive.write_bytes(content)
    target = tmp_path / "deep" / "target"
    target.mkdir(parents=True)
    with pytest.raises(UnsafeArchiveError, match="refusing"):
        extract(archive, target)
    assert list(target.iterdir()) == []
    assert not (tmp_path / "deep" / "evil.txt").exists()


def test_checksum_is_verified_before_extraction(tmp_path):
    archive = tmp_path / "car_ims.tgz"
    archive.write_bytes(tar_gz({"car_ims/000001.jpg": jpeg(0)}))
    target = tmp_path / "extracted"
    with pytest.raises(ChecksumError, match="expected 0{32}.*third parties"):
        verify_and_extract([archive], {"car_ims.tgz": "0" * 32}, RAW_FILES["cars196"], target)
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["car_ims.tgz"]


@pytest.mark.parametrize("name", ["images.tgz", "images.zip"])
def test_extraction_counts_its_members_on_a_progress_bar(tmp_path, monkeypatch, name):
    bars = shown_bars(monkeypatch)
    files = {f"images/{i:03d}.jpg": jpeg(i) for i in range(3)}
    archive = tmp_path / name
    archive.write_bytes(zipped(files) if name.endswith(".zip") else tar_gz(files))
    (tmp_path / "out").mkdir()
    extract(archive, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out/images").iterdir()) == sorted(
        member.split("/")[1] for member in files
    )
    assert [(bar.total, bar.n) for bar in bars] == [(3, 3)]
    assert f"extracting {name}" in bars[0].fp.getvalue()
