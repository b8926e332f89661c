"""Evaluation: clustering + retrieval metrics of a model on its clean or adversarial test sets."""


rule evaluate_clean:
    input:
        model=f"{MODEL}/model.pt",
        images=f"{DATA}/test.pt",
        script=f"{SRC}/evaluate.py",
    output:
        f"{METRICS}/clean.json",
    log:
        f"{LOGS}/evaluate/{{dataset}}/{{backbone}}/{{defense}}/seed{{seed}}/clean.log",
    benchmark:
        f"{BENCHMARKS}/evaluate/{{dataset}}/{{backbone}}/{{defense}}/seed{{seed}}/clean.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=GPUS,
        cpus_per_gpu=cpus_per_gpu,
        mem_mb=config["resources"]["mem_mb"],
        runtime=RUNTIME["evaluate"],
    params:
        spec=as_json(evaluation_spec(config)),
        ids=lambda w: evaluation_ids(w, "clean", [0]),
        device=config["device"],
    shell:
        "python {input.script} --spec {params.spec:q} --ids {params.ids:q}"
        " --model {input.model} --images {input.images} --out {output}"
        " --device {params.device} --threads {threads} > {log} 2>&1"


rule evaluate_attack:
    input:
        model=f"{MODEL}/model.pt",
        images=per_eps(f"{ADVERSARIAL}/eps{{eps}}.pt"),
        script=f"{SRC}/evaluate.py",
    output:
        per_eps(f"{METRICS}/{{attack}}/eps{{eps}}.json"),
    log:
        f"{LOGS}/evaluate/{{dataset}}/{{backbone}}/{{defense}}/seed{{seed}}/{{attack}}.log",
    benchmark:
        f"{BENCHMARKS}/evaluate/{{dataset}}/{{backbone}}/{{defense}}/seed{{seed}}/{{attack}}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=GPUS,
        cpus_per_gpu=cpus_per_gpu,
        mem_mb=config["resources"]["mem_mb"],
        runtime=RUNTIME["evaluate"] * len(EPS),
    params:
        spec=as_json(evaluation_spec(config)),
        ids=lambda w: evaluation_ids(w, w.attack, EPS),
        device=config["device"],
    shell:
        "python {input.script} --spec {params.spec:q} --ids {params.ids:q}"
        " --model {input.model} --images {input.images} --out {output}"
        " --device {params.device} --threads {threads} > {log} 2>&1"
