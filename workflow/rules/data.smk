"""Datasets: raw source -> prepared, class-disjoint train/test split files."""


localrules:
    prepare_data,


rule prepare_data:
    input:
        script=f"{SRC}/prepare_data.py",
    output:
        train=f"{DATA}/train.pt",
        test=f"{DATA}/test.pt",
    log:
        f"{LOGS}/prepare_data/{{dataset}}.log",
    benchmark:
        f"{BENCHMARKS}/prepare_data/{{dataset}}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=config["resources"]["mem_mb"],
        runtime=RUNTIME["prepare"],
    params:
        spec=lambda w: as_json(config["datasets"][w.dataset]),
    shell:
        "python {input.script} --spec {params.spec:q}"
        " --train {output.train} --test {output.test} > {log} 2>&1"
