"""Tables (CSV, Markdown, LaTeX) from every metrics JSON and the jobs' benchmark files, figures
(PNG, PDF) from the tables; all in the Snakemake report (`snakemake --report`)."""

# Tables: (name, subcategory, formats) of the tables rule's outputs in results/tables/.
TABLE_FILES = [
    ("main", "main: clean vs worst case", ["csv", "md", "tex"]),
    ("attacks", "per attack", ["csv", "md", "tex"]),
    ("transfer", "transfer matrix", ["csv", "md", "tex"]),
    ("cost", "compute cost", ["csv", "md", "tex"]),
    ("paired", "paired differences", ["csv", "md"]),
    ("members", "ensemble members", ["csv", "md"]),
    ("long", "all records", ["csv"]),
]
FORMATS = {"csv": "CSV", "md": "Markdown", "tex": "LaTeX", "png": "PNG", "pdf": "PDF"}
# Figures: FIGURE_NAMES (common.smk) -> subcategory in the report.
FIGURE_SUBCATEGORIES = {
    "nmi_by_defense": "clean vs worst case",
    "nmi_vs_eps": "robustness vs eps",
    "ari_vs_eps": "robustness vs eps",
    "recall1_vs_eps": "robustness vs eps",
    "tradeoff": "clean vs robust trade-off",
    "cost": "compute cost",
}


rule tables:
    input:
        metrics=ALL_METRICS,
        script=step_script("tables"),
    output:
        # every table file in the report: Tables / its table, labelled by format
        **{
            f"{name}_{ext}": report(
                f"results/tables/{name}.{ext}",
                caption=f"../report/{name}_table.rst",
                category="Tables",
                subcategory=subcategory,
                labels={"table": name, "format": FORMATS[ext]},
            )
            for name, subcategory, formats in TABLE_FILES
            for ext in formats
        },
        inputs="results/tables/inputs.txt",
        provenance=report(
            "results/provenance.json",
            caption="../report/provenance.rst",
            category="Provenance",
        ),
    log:
        f"{LOGS}/tables.log",
    benchmark:
        f"{BENCHMARKS}/tables.tsv"
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("small"),
        runtime=fixed_runtime("report"),
    params:
        code=code_of("tables"),
        main_eps=config["report"]["main_eps_255"],
        baselines=config["report"]["paired_baselines"],
        suites=as_json(config["attack_suites"]),
        grid=as_json(
            {
                "datasets": list(config["datasets"]),
                "backbones": list(config["backbones"]),
                "defenses": list(config["defenses"]),
                "seeds": SEEDS,
                "external": EXTERNAL_IDS,
                "transfer_sources": expected_transfer_sources(config, EVALUATED_IDS),
            }
        ),
        kmeans_seeds=len(config["evaluation"]["kmeans_seeds"]),
        config_hash=spec_hash(config),
        benchmark_root=BENCHMARKS,
    shell:
        # printf is a shell builtin: no argument-length limit for thousands of inputs
        "printf '%s\\n' {input.metrics:q} > {output.inputs:q} && "
        "python {input.script:q} --inputs {output.inputs:q} --benchmark-root {params.benchmark_root:q}"
        " --main-eps {params.main_eps}"
        " --suites {params.suites:q} --baselines {params.baselines} --grid {params.grid:q}"
        " --kmeans-seeds {params.kmeans_seeds}"
        " --config-hash {params.config_hash} --provenance {output.provenance:q}"
        " --out-dir results/tables > {log:q} 2>&1"


rule figures:
    input:
        long="results/tables/long.csv",
        cost="results/tables/cost.csv",
        script=step_script("figures"),
    output:
        # every figure file in the report: Figures / its kind, labelled by figure and format
        [
            report(
                f"results/figures/{name}.{ext}",
                caption=f"../report/{name}.rst",
                category="Figures",
                subcategory=FIGURE_SUBCATEGORIES[name],
                labels={"figure": name, "format": FORMATS[ext]},
            )
            for name in FIGURE_NAMES
            for ext in ("png", "pdf")
        ],
    log:
        f"{LOGS}/figures.log",
    benchmark:
        f"{BENCHMARKS}/figures.tsv"
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("small"),
        runtime=fixed_runtime("report"),
    params:
        code=code_of("figures"),
        main_eps=config["report"]["main_eps_255"],
        suites=as_json(config["attack_suites"]),
        defenses=[*config["defenses"], *EXTERNAL_MODELS],
    shell:
        "python {input.script:q} --long {input.long:q} --cost {input.cost:q}"
        " --main-eps {params.main_eps} --suites {params.suites:q}"
        " --defenses {params.defenses} --out-dir results/figures > {log:q} 2>&1"


rule sanity:
    input:
        long="results/tables/long.csv",
        script=step_script("sanity"),
    output:
        csv="results/sanity/sanity.csv",
        md=report(
            "results/sanity/sanity.md",
            caption="../report/sanity.rst",
            category="Sanity",
        ),
    log:
        f"{LOGS}/sanity.log",
    benchmark:
        f"{BENCHMARKS}/sanity.tsv"
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("small"),
        runtime=fixed_runtime("report"),
    params:
        code=code_of("sanity"),
        spec=as_json(config["sanity"]),
        suites=as_json(config["attack_suites"]),
        main_eps=config["report"]["main_eps_255"],
    shell:
        "python {input.script:q} --long {input.long:q} --spec {params.spec:q}"
        " --suites {params.suites:q} --main-eps {params.main_eps} --csv {output.csv:q} --md {output.md:q} > {log:q} 2>&1"


rule tsne:
    input:
        unpack(tsne_inputs),
        script=step_script("tsne"),
    output:
        report(
            "results/figures/tsne_{dataset}_{backbone}.png",
            caption="../report/tsne.rst",
            category="Figures",
        ),
        "results/figures/tsne_{dataset}_{backbone}.pdf",
    log:
        f"{LOGS}/tsne/{{dataset}}_{{backbone}}.log",
    benchmark:
        f"{BENCHMARKS}/tsne/{{dataset}}_{{backbone}}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: config["threads"]
    resources:
        mem_mb=mem_mb("tsne"),
        runtime=fixed_runtime("report"),
    params:
        code=code_of("tsne"),
        spec=as_json(config["report"]["tsne"]),
        stem="results/figures/tsne_{dataset}_{backbone}",
        sets=tsne_set_paths,
    shell:
        "python {input.script:q} --spec {params.spec:q} --models {input.models:q}"
        " --adversarial {params.sets:q} --data {input.data:q} --out-stem {params.stem:q}"
        " --threads {threads} > {log:q} 2>&1"


rule summary:
    input:
        main="results/tables/main.md",
        provenance="results/provenance.json",
        sanity="results/sanity/sanity.md",
        figures=FIGURES,
        script=step_script("summary"),
    output:
        "results/summary.md",
    log:
        f"{LOGS}/summary.log",
    benchmark:
        f"{BENCHMARKS}/summary.tsv"
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("small"),
        runtime=fixed_runtime("report"),
    params:
        code=code_of("summary"),
    shell:
        "python {input.script:q} --main {input.main:q} --provenance {input.provenance:q}"
        " --sanity {input.sanity:q} --figures {input.figures:q} --out {output:q} > {log:q} 2>&1"


rule training_curves:
    input:
        models=[f"{MODEL}/model.pt".format(**ids) for ids in MODEL_IDS],
        script=step_script("training_curves"),
    output:
        report(
            "results/figures/training_curves.png",
            caption="../report/training_curves.rst",
            category="Figures",
            subcategory="training",
            labels={"figure": "training_curves", "format": "PNG"},
        ),
        "results/figures/training_curves.pdf",
    log:
        f"{LOGS}/training_curves.log",
    benchmark:
        f"{BENCHMARKS}/training_curves.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("small"),
        runtime=fixed_runtime("report"),
    params:
        code=code_of("training_curves"),
        ids=as_json(MODEL_IDS),
        defenses=list(config["defenses"]),
        stem=lambda w, output: output[0].removesuffix(".png"),
    shell:
        "python {input.script:q} --models {input.models:q} --ids {params.ids:q}"
        " --defenses {params.defenses} --out-stem {params.stem:q} > {log:q} 2>&1"


rule cards:
    input:
        long="results/tables/long.csv",
        sanity="results/sanity/sanity.csv",
        provenance="results/provenance.json",
        script=step_script("cards"),
    output:
        CARDS,
    log:
        f"{LOGS}/cards.log",
    benchmark:
        f"{BENCHMARKS}/cards.tsv"
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("small"),
        runtime=fixed_runtime("report"),
    params:
        code=code_of("cards"),
        suites=as_json(config["attack_suites"]),
        cards=as_json(
            [
                {
                    "model": ids,
                    "stem": stem,
                    "external": config["external_models"].get(ids["defense"]),
                }
                for ids, stem in CARD_STEMS
            ]
        ),
    shell:
        "python {input.script:q} --long {input.long:q} --sanity {input.sanity:q}"
        " --provenance {input.provenance:q} --suites {params.suites:q}"
        " --cards {params.cards:q} > {log:q} 2>&1"
