"""The cost table (robdml.job_costs): Snakemake's benchmark files summed per defense and kind
of job."""

import pandas as pd
from result_toys import column, write_benchmark

from robdml.grid import Grid
from robdml.job_costs import cost_frame, cost_table


def test_cost_table_sums_benchmark_seconds_per_kind(tmp_path):
    root = tmp_path / "benchmarks"
    paths = [
        write_benchmark(root, "train", "vanilla", 0, 3600),
        write_benchmark(root, "train", "vanilla", 1, 5400),
        write_benchmark(root, "attack", "vanilla", 0, 1800, "label_free", rss=2048),
        write_benchmark(root, "attack", "vanilla", 0, 1800, "label_aware"),
        write_benchmark(root, "transfer", "vanilla", 0, 720),
        write_benchmark(root, "train", "eat", 0, 36000),
        write_benchmark(root, "attack", "eat", 0, 7200, "members"),
    ]  # fmt: skip
    grid = Grid(["d"], ["b"], ["vanilla", "pgd_at", "eat"], [0, 1])
    cost = cost_frame(paths, grid)
    vanilla = cost.set_index("defense").loc["vanilla"]
    assert vanilla["train (s)"] == 9000 and vanilla["attack (s)"] == 3600
    assert vanilla["transfer (s)"] == 720 and pd.isna(vanilla["members (s)"])
    assert vanilla["total (s)"] == 13320 and vanilla["jobs"] == 5
    assert vanilla["peak RSS (MB)"] == 2048
    assert cost.set_index("defense").loc["eat", "members (s)"] == 7200
    assert list(cost["defense"]) == ["vanilla", "pgd_at", "eat"]
    table = cost_table(cost, grid)
    markdown = table.markdown()
    assert column(markdown, "total (h)") == ["**3.70**", "–", "12.00"]  # lowest is best
    assert column(markdown, "train (h)") == ["**2.50**", "–", "10.00"]
    assert table.notes == ["d/b/pgd_at: no train benchmark"]
    assert cost_frame(sorted(root.rglob("*.tsv")), grid).equals(cost)
