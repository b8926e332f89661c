"""Which attack entries are label-aware (read the true test labels). Torch-free, so that the
workflow's config validation runs in a plain Snakemake environment (`--sdm conda`)."""


def reads_true_labels(params: dict) -> bool:
    """`oracle` always; `mi` when its reference labels are the true classes."""
    return params["method"] == "oracle" or params.get("labels") == "true_classes"
