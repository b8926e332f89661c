"""The benchmark-file patterns the rules write and the cost table reads (robdml.benchmark_paths)."""

import pytest

from robdml.benchmark_paths import COST_BENCHMARKS, benchmark_fields

MODEL = {"dataset": "cub200", "backbone": "resnet50", "defense": "eat", "seed": "12"}


@pytest.mark.parametrize("kind", sorted(COST_BENCHMARKS))
def test_a_written_path_reads_back_as_its_kind_and_model(kind):
    wildcards = MODEL | ({"job": "label_free"} if kind == "attack" else {})
    path = "/work/results/benchmarks/" + COST_BENCHMARKS[kind].format(**wildcards)
    assert benchmark_fields(path) == {"kind": kind, **wildcards}


def test_the_members_job_is_not_read_as_an_attack_group():
    path = "results/benchmarks/attack/cub200/resnet50/eat/seed0/members.tsv"
    assert benchmark_fields(path)["kind"] == "members"


@pytest.mark.parametrize(
    "path",
    [
        "results/benchmarks/tsne/glyphs_cnn.tsv",
        "results/benchmarks/train/glyphs/cnn/vanilla/0.tsv",  # no "seed" prefix
        "results/benchmarks/xtrain/glyphs/cnn/vanilla/seed0.tsv",  # a folder merely ending so
    ],
)
def test_other_files_are_not_cost_benchmarks(path):
    assert benchmark_fields(path) is None
