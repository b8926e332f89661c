"""Attacks: adversarial versions of the whole test set per (trained model, attack), one file
per eps; one job covers the eps sweep (k-means context and start-up paid once). The attacks
of `attack_suites` run at every eps, the others (check (b)'s stronger variants, extra attacks)
at the main eps only."""


rule attack:
    input:
        model=f"{MODEL}/model.pt",
        data=f"{DATA}/test.pt",
        script=f"{SRC}/attack.py",
    output:
        adversarial_outputs(EPS),
    log:
        f"{LOGS}/attack/{{dataset}}/{{backbone}}/{{defense}}/seed{{seed}}/{{attack}}.log",
    benchmark:
        f"{BENCHMARKS}/attack/{{dataset}}/{{backbone}}/{{defense}}/seed{{seed}}/{{attack}}.tsv"
    wildcard_constraints:
        attack=one_of(SWEEP_ATTACKS),
    priority: n_members
    conda:
        "../../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=GPUS,
        cpus_per_gpu=cpus_per_gpu,
        mem_mb=attack_mem_mb,
        runtime=attack_runtime,
    params:
        spec=lambda w: as_json(attack_spec(config, w.attack)),
        eps=lambda w: eps_of(w.attack),
        device=device_option(config),
        member_option="",
    shell:
        "python {input.script} --spec {params.spec:q} --eps {params.eps}"
        " --model {input.model} --data {input.data} --out {output} {params.member_option}"
        " --device {params.device} --threads {threads} > {log} 2>&1"


use rule attack as attack_main_eps with:
    output:
        adversarial_outputs([MAIN_EPS]),
    wildcard_constraints:
        attack=one_of(MAIN_EPS_ATTACKS),


use rule attack as attack_member with:
    output:
        per_eps(f"{MEMBER_ADVERSARIAL}/eps{{eps}}.pt", [MAIN_EPS]),
    log:
        f"{LOGS}/attack/{{dataset}}/{{backbone}}/{{defense}}/seed{{seed}}/{MEMBER}/{{attack}}.log",
    benchmark:
        f"{BENCHMARKS}/attack/{{dataset}}/{{backbone}}/{{defense}}/seed{{seed}}/{MEMBER}/{{attack}}.tsv"
    wildcard_constraints:
        attack=one_of(MEMBER_ATTACKS),
    priority: 1
    resources:
        gpu=GPUS,
        cpus_per_gpu=cpus_per_gpu,
        mem_mb=attack_mem_mb,
        runtime=member_attack_runtime,
    params:
        spec=lambda w: as_json(attack_spec(config, w.attack)),
        eps=[MAIN_EPS],
        device=device_option(config),
        member_option=lambda w: f"--member {w.member}",
