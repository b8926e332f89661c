"""ImageNet weights of the torchvision backbones, as files under `weights_root`: fetched once,
on the submit host (local rules: compute nodes are often offline), and only read by training
jobs. `snakemake --cores 1 fetch_weights` fetches those of the selected backbones beforehand.
"""


localrules:
    fetch_weights,
    fetch_weights_file,


rule fetch_weights:
    input:
        weights_files(config["backbones"]),


# No script input and a protected output, as rule download: a code change must not re-fetch.
rule fetch_weights_file:
    output:
        protected(WEIGHTS),
    log:
        f"{LOGS}/fetch_weights/{{arch}}/{{weights}}.log",
    benchmark:
        f"{BENCHMARKS}/fetch_weights/{{arch}}/{{weights}}.tsv"
    wildcard_constraints:
        arch=r"[a-z][a-z0-9_]*",
        weights=r"[A-Z][A-Z0-9_]*",
    conda:
        "../../envs/torch.yaml"
    params:
        script=f"{SRC}/fetch_weights.py",
    shell:
        "python {params.script:q} --arch {wildcards.arch} --weights {wildcards.weights}"
        " --out {output:q} --log {log:q}"
