"""CARS196 (Stanford Cars, Krause et al., 2013): 16,185 photos of 196 car models.

Deep metric learning trains on classes 1-98 (8,054 images) and tests on the unseen classes
99-196 (8,131). The official download links are dead, so both files are placed by hand:
    car_ims.tgz      car_ims/000001.jpg ... car_ims/016185.jpg
    cars_annos.mat   `annotations` (relative_im_path, bbox_*, class 1-196, test) and
                     `class_names`; its `test` flag is the classification split and is not used
"""

from pathlib import Path

import numpy as np

from robdml.data.image_files import ImageSplit, first_classes_split


def read_split(raw: Path, extracted: Path, spec: dict) -> ImageSplit:
    """Image files and 0-based class ids from cars_annos.mat, split by class id."""
    from scipy.io import loadmat  # only this dataset needs scipy

    mat = loadmat(raw / "cars_annos.mat", squeeze_me=True)
    annotations = np.atleast_1d(mat["annotations"])
    class_names = [str(name) for name in np.atleast_1d(mat["class_names"])]
    paths = [extracted / str(path) for path in annotations["relative_im_path"]]
    labels = [int(label) - 1 for label in annotations["class"]]
    return first_classes_split(paths, labels, class_names, spec["n_train_classes"])
