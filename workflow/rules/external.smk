"""External models (config `external_models`): a model trained elsewhere enters the DAG where
a trained model would, as one model file written by checking and wrapping it; its attack,
transfer, table and card jobs are the trained defenses' own."""


rule import_external:
    input:
        factory=lambda w: factory_file(config["external_models"][w.defense]),
        weights=lambda w: config["external_models"][w.defense].get("weights") or [],
        data=f"{DATA}/test.pt",
        script=step_script("import_external"),
    output:
        f"{MODEL}/model.pt",
    log:
        f"{LOGS}/import_external/{{dataset}}/{{backbone}}/{{defense}}/seed{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/import_external/{{dataset}}/{{backbone}}/{{defense}}/seed{{seed}}.tsv"
    wildcard_constraints:
        defense=one_of(EXTERNAL_MODELS),
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("evaluate"),
        runtime=fixed_runtime("prepare"),
    params:
        code=code_of("import_external"),
        entry=lambda w: as_json(config["external_models"][w.defense]),
    shell:
        "python {input.script:q} --name {wildcards.defense} --entry {params.entry:q}"
        " --data {input.data:q} --model {output:q} --threads {threads} > {log:q} 2>&1"
