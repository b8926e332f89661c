"""Evaluation: clustering + retrieval metrics of a model on its clean test set, on its own
adversarial test sets (white-box) and on those crafted on other models (transfer).

Where adversarial sets are kept (`keep_adversarial_images`), one job evaluates a model's clean
and white-box sets (one start-up instead of one per attack); where they are temporary (the
paper config: gigabytes each at 224 px), one job per attack evaluates and frees its sets.
"""

if WHITEBOX_PER_MODEL:

    rule evaluate_model:
        input:
            model=f"{MODEL}/model.pt",
            images=[f"{DATA}/test.pt"] + WHITEBOX_SETS,
            script=f"{SRC}/evaluate.py",
        output:
            [f"{METRICS}/clean.json"] + WHITEBOX_METRICS,
        log:
            f"{LOGS}/evaluate/{{dataset}}/{{backbone}}/{{defense}}/seed{{seed}}/whitebox.log",
        benchmark:
            f"{BENCHMARKS}/evaluate/{{dataset}}/{{backbone}}/{{defense}}/seed{{seed}}/whitebox.tsv"
        conda:
            "../../envs/torch.yaml"
        threads: config["threads"]
        resources:
            gpu=GPUS,
            cpus_per_gpu=cpus_per_gpu,
            mem_mb=mem_mb("evaluate"),
            runtime=evaluate_runtime(1 + len(WHITEBOX_SETS)),
        params:
            spec=as_json(evaluation_spec(config)),
            ids=whitebox_ids,
            device=config["device"],
        shell:
            "python {input.script} --spec {params.spec:q} --ids {params.ids:q}"
            " --model {input.model} --images {input.images} --out {output}"
            " --device {params.device} --threads {threads} > {log} 2>&1"

    ruleorder: evaluate_model > evaluate_clean
    ruleorder: evaluate_model > evaluate_attack
    ruleorder: evaluate_model > evaluate_attack_main_eps


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
        mem_mb=mem_mb("evaluate"),
        runtime=evaluate_runtime(1),
    params:
        spec=as_json(evaluation_spec(config)),
        ids=lambda w: evaluation_ids(w, "clean", [0], "clean"),
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
    wildcard_constraints:
        attack=one_of(SWEEP_ATTACKS),
    conda:
        "../../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=GPUS,
        cpus_per_gpu=cpus_per_gpu,
        mem_mb=mem_mb("evaluate"),
        runtime=evaluate_runtime(len(EPS)),
    params:
        spec=as_json(evaluation_spec(config)),
        ids=lambda w: evaluation_ids(w, w.attack, EPS, "whitebox"),
        device=config["device"],
    shell:
        "python {input.script} --spec {params.spec:q} --ids {params.ids:q}"
        " --model {input.model} --images {input.images} --out {output}"
        " --device {params.device} --threads {threads} > {log} 2>&1"


use rule evaluate_attack as evaluate_attack_main_eps with:
    input:
        model=f"{MODEL}/model.pt",
        images=per_eps(f"{ADVERSARIAL}/eps{{eps}}.pt", [MAIN_EPS]),
        script=f"{SRC}/evaluate.py",
    output:
        per_eps(f"{METRICS}/{{attack}}/eps{{eps}}.json", [MAIN_EPS]),
    wildcard_constraints:
        attack=one_of(MAIN_EPS_ATTACKS),
    resources:
        gpu=GPUS,
        cpus_per_gpu=cpus_per_gpu,
        mem_mb=mem_mb("evaluate"),
        runtime=evaluate_runtime(1),
    params:
        spec=as_json(evaluation_spec(config)),
        ids=lambda w: evaluation_ids(w, w.attack, [MAIN_EPS], "whitebox"),
        device=config["device"],


use rule evaluate_attack as evaluate_transfer with:
    input:
        model=f"{MODEL}/model.pt",
        images=per_eps(f"{SOURCE_ADVERSARIAL}/eps{{eps}}.pt"),
        script=f"{SRC}/evaluate.py",
    output:
        per_eps(f"{METRICS}/{TRANSFER}/eps{{eps}}.json"),
    log:
        f"{LOGS}/evaluate/{{dataset}}/{{backbone}}/{{defense}}/seed{{seed}}/{TRANSFER}.log",
    benchmark:
        f"{BENCHMARKS}/evaluate/{{dataset}}/{{backbone}}/{{defense}}/seed{{seed}}/{TRANSFER}.tsv"
    params:
        spec=as_json(evaluation_spec(config)),
        ids=lambda w: evaluation_ids(
            w, w.attack, EPS, "transfer", f"{w.source_defense}/seed{w.source_seed}"
        ),
        device=config["device"],


use rule evaluate_transfer as evaluate_transfer_main_eps with:
    input:
        model=f"{MODEL}/model.pt",
        images=per_eps(f"{SOURCE_ADVERSARIAL}/eps{{eps}}.pt", [MAIN_EPS]),
        script=f"{SRC}/evaluate.py",
    output:
        per_eps(f"{METRICS}/{TRANSFER}/eps{{eps}}.json", [MAIN_EPS]),
    wildcard_constraints:
        attack=one_of(MAIN_EPS_ATTACKS),
    resources:
        gpu=GPUS,
        cpus_per_gpu=cpus_per_gpu,
        mem_mb=mem_mb("evaluate"),
        runtime=evaluate_runtime(1),
    params:
        spec=as_json(evaluation_spec(config)),
        ids=lambda w: evaluation_ids(
            w,
            w.attack,
            [MAIN_EPS],
            "transfer",
            f"{w.source_defense}/seed{w.source_seed}",
        ),
        device=config["device"],


rule evaluate_member:
    input:
        unpack(member_inputs),
        script=f"{SRC}/evaluate.py",
    output:
        MEMBER_OUTPUTS,
    log:
        f"{LOGS}/evaluate/{{dataset}}/{{backbone}}/{{defense}}/seed{{seed}}/{MEMBER}.log",
    benchmark:
        f"{BENCHMARKS}/evaluate/{{dataset}}/{{backbone}}/{{defense}}/seed{{seed}}/{MEMBER}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=GPUS,
        cpus_per_gpu=cpus_per_gpu,
        mem_mb=mem_mb("evaluate"),
        runtime=evaluate_runtime(1 + len(config["attacks"]), member=True),
    params:
        spec=as_json(evaluation_spec(config)),
        ids=member_ids,
        device=config["device"],
    shell:
        "python {input.script} --spec {params.spec:q} --ids {params.ids:q}"
        " --model {input.model} --member {wildcards.member} --images {input.images}"
        " --out {output} --device {params.device} --threads {threads} > {log} 2>&1"


use rule evaluate_attack as evaluate_from_member with:
    input:
        model=f"{MODEL}/model.pt",
        images=per_eps(f"{MEMBER_ADVERSARIAL}/eps{{eps}}.pt", [MAIN_EPS]),
        script=f"{SRC}/evaluate.py",
    output:
        per_eps(f"{METRICS}/from_{MEMBER}/{{attack}}/eps{{eps}}.json", [MAIN_EPS]),
    log:
        f"{LOGS}/evaluate/{{dataset}}/{{backbone}}/{{defense}}/seed{{seed}}/from_{MEMBER}/{{attack}}.log",
    benchmark:
        f"{BENCHMARKS}/evaluate/{{dataset}}/{{backbone}}/{{defense}}/seed{{seed}}/from_{MEMBER}/{{attack}}.tsv"
    wildcard_constraints:
        attack=one_of(MEMBER_ATTACKS),
    resources:
        gpu=GPUS,
        cpus_per_gpu=cpus_per_gpu,
        mem_mb=mem_mb("evaluate"),
        runtime=evaluate_runtime(1),
    params:
        spec=as_json(evaluation_spec(config)),
        ids=lambda w: evaluation_ids(
            w, w.attack, [MAIN_EPS], "member_attack", f"member{w.member}"
        ),
        device=config["device"],
