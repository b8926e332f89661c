"""Attacks: adversarial versions of the whole test set per (trained model, attack), one file
per eps; one job covers the eps sweep (k-means context and start-up paid once)."""


def adversarial_outputs():
    """temp() in the paper config: 224 px adversarial test sets are gigabytes each."""
    outputs = per_eps(f"{ADVERSARIAL}/eps{{eps}}.pt")
    return outputs if config["keep_adversarial_images"] else [temp(o) for o in outputs]


rule attack:
    input:
        model=f"{MODEL}/model.pt",
        data=f"{DATA}/test.pt",
    output:
        adversarial_outputs(),
    params:
        spec=lambda w: as_json(attack_spec(config, w.attack)),
        eps=EPS,
        device=config["device"],
    log:
        f"{LOGS}/attack/{{dataset}}/{{backbone}}/{{defense}}/seed{{seed}}/{{attack}}.log",
    benchmark:
        f"{BENCHMARKS}/attack/{{dataset}}/{{backbone}}/{{defense}}/seed{{seed}}/{{attack}}.tsv"
    threads: config["threads"]
    resources:
        gpu=GPUS,
        mem_mb=config["resources"]["mem_mb"],
        runtime=lambda w: RUNTIME["attack"] * n_members(w) * len(EPS),
    conda:
        "../../envs/torch.yaml"
    shell:
        "{PYTHON} {SRC}/attack.py --spec {params.spec:q} --eps {params.eps}"
        " --model {input.model} --data {input.data} --out {output}"
        " --device {params.device} --threads {threads} > {log} 2>&1"
