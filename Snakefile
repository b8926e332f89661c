"""Towards Adversarially Robust Deep Metric Learning (Ke, arXiv 2501.01025), reproduced.

prepare_data -> train -> attack -> evaluate -> tables, figures. Default config: the paper
(config/config.yaml); the offline demo: `--configfile config/demo.yaml`.
"""

from snakemake.utils import min_version

min_version("9.0")


# A --configfile replaces the paper config instead of being merged into it.
if not workflow.overwrite_configfiles:

    configfile: f"{workflow.basedir}/config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/attack.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        TABLES,
        FIGURES,
        SANITY,
        TSNE,
