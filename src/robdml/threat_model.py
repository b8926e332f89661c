"""Which attack entries are label-aware (read the true test labels). Torch-free, so that the
workflow's config validation runs in a plain Snakemake environment (`--sdm conda`)."""


def reads_true_labels(params: dict) -> bool:
    """`oracle` always; `mi` when its reference labels are the true classes."""
    return params["method"] == "oracle" or params.get("labels") == "true_classes"


def radius(eps_255: float) -> float:
    """The L-inf radius, in [0, 1] pixel units, of a budget of `eps_255`/255. The one unit
    conversion: configs, paths, attack results and metrics say `eps_255`; the PGD core
    (robdml.attacks.pgd) and the defenses' inner maximisations take radii."""
    return eps_255 / 255
