"""Attacks: adversarial versions of the whole test set per (trained model, attack, eps)."""


def adversarial_output():
    """temp() in the paper config: 224 px adversarial test sets are gigabytes each."""
    return ADVERSARIAL if config["keep_adversarial_images"] else temp(ADVERSARIAL)


rule attack:
    input:
        model=f"{MODEL}/model.pt",
        data=f"{DATA}/test.pt",
    output:
        adversarial_output(),
    params:
        spec=lambda w: as_json(attack_spec(config, w.attack)),
        device=config["device"],
    log:
        f"{LOGS}/attack/{{dataset}}/{{backbone}}/{{defense}}/seed{{seed}}/{{attack}}_eps{{eps}}.log",
    benchmark:
        f"{BENCHMARKS}/attack/{{dataset}}/{{backbone}}/{{defense}}/seed{{seed}}/{{attack}}_eps{{eps}}.tsv"
    threads: config["threads"]
    resources:
        gpu=GPUS,
        mem_mb=config["resources"]["mem_mb"],
        runtime=lambda w: RUNTIME["attack"] * n_members(w),
    conda:
        "../../envs/torch.yaml"
    shell:
        "{PYTHON} {SRC}/attack.py --spec {params.spec:q} --eps {wildcards.eps}"
        " --model {input.model} --data {input.data} --out {output}"
        " --device {params.device} --threads {threads} > {log} 2>&1"
