"""Evaluation: clustering + retrieval metrics of a model on its clean or adversarial test sets."""


def evaluation_ids(wildcards, attack, eps_list):
    return as_json(
        [
            {
                "dataset": wildcards.dataset,
                "backbone": wildcards.backbone,
                "defense": wildcards.defense,
                "seed": int(wildcards.seed),
                "attack": attack,
                "eps_255": float(eps),
            }
            for eps in eps_list
        ]
    )


rule evaluate_clean:
    input:
        model=f"{MODEL}/model.pt",
        images=f"{DATA}/test.pt",
    output:
        f"{METRICS}/clean.json",
    params:
        spec=as_json(evaluation_spec(config)),
        ids=lambda w: evaluation_ids(w, "clean", [0]),
        device=config["device"],
    log:
        f"{LOGS}/evaluate/{{dataset}}/{{backbone}}/{{defense}}/seed{{seed}}/clean.log",
    benchmark:
        f"{BENCHMARKS}/evaluate/{{dataset}}/{{backbone}}/{{defense}}/seed{{seed}}/clean.tsv"
    threads: config["threads"]
    resources:
        gpu=GPUS,
        mem_mb=config["resources"]["mem_mb"],
        runtime=RUNTIME["evaluate"],
    conda:
        "../../envs/torch.yaml"
    shell:
        "{PYTHON} {SRC}/evaluate.py --spec {params.spec:q} --ids {params.ids:q}"
        " --model {input.model} --images {input.images} --out {output}"
        " --device {params.device} --threads {threads} > {log} 2>&1"


rule evaluate_attack:
    input:
        model=f"{MODEL}/model.pt",
        images=per_eps(f"{ADVERSARIAL}/eps{{eps}}.pt"),
    output:
        per_eps(f"{METRICS}/{{attack}}/eps{{eps}}.json"),
    params:
        spec=as_json(evaluation_spec(config)),
        ids=lambda w: evaluation_ids(w, w.attack, EPS),
        device=config["device"],
    log:
        f"{LOGS}/evaluate/{{dataset}}/{{backbone}}/{{defense}}/seed{{seed}}/{{attack}}.log",
    benchmark:
        f"{BENCHMARKS}/evaluate/{{dataset}}/{{backbone}}/{{defense}}/seed{{seed}}/{{attack}}.tsv"
    threads: config["threads"]
    resources:
        gpu=GPUS,
        mem_mb=config["resources"]["mem_mb"],
        runtime=RUNTIME["evaluate"] * len(EPS),
    conda:
        "../../envs/torch.yaml"
    shell:
        "{PYTHON} {SRC}/evaluate.py --spec {params.spec:q} --ids {params.ids:q}"
        " --model {input.model} --images {input.images} --out {output}"
        " --device {params.device} --threads {threads} > {log} 2>&1"
