# Data and models: the toy world (tokenizer, pool, benchmarks, pretrained models) or the paper's
# datasets, then the questions sampled for OPD and the examples for SeqKD.


if TOY:

    rule toy_tokenizer:
        input:
            code=script_code("toy_tokenizer"),
        output:
            directory("results/models/tokenizer"),
        log:
            "results/logs/toy/tokenizer.log",
        conda:
            "../../envs/main.yaml"
        script:
            "../scripts/toy_tokenizer.py"

    rule toy_pool:
        input:
            code=script_code("toy_pool"),
        output:
            "results/data/toy_pool.jsonl",
        log:
            "results/logs/toy/pool.log",
        params:
            toy=config["toy"],
            prompts=config["prompts"],
            seed=config["seed"],
        conda:
            "../../envs/main.yaml"
        script:
            "../scripts/toy_pool.py"

    rule toy_benchmark:
        input:
            code=script_code("toy_benchmark"),
        output:
            "results/data/benchmarks/{bench}.jsonl",
        log:
            "results/logs/toy/benchmark_{bench}.log",
        params:
            spec=lambda wc: config["toy"]["benchmarks"][wc.bench],
            prompts=config["prompts"],
            seed=config["seed"],
        conda:
            "../../envs/main.yaml"
        script:
            "../scripts/toy_benchmark.py"

    rule pretrain_toy_model:
        input:
            unpack(toy_model_inputs),
            code=script_code("pretrain_toy_model"),
        output:
            directory("results/models/{model}"),
        log:
            "results/logs/toy/pretrain_{model}.log",
        benchmark:
            "results/benchmarks/pretrain_{model}.tsv"
        params:
            spec=lambda wc: config["toy"]["models"][wc.model],
            toy=config["toy"],
            prompts=config["prompts"],
            seed=config["seed"],
        threads: 1
        conda:
            "../../envs/main.yaml"
        script:
            "../scripts/pretrain_toy_model.py"

    rule toy_summary:
        input:
            models=expand("results/models/{model}", model=TOY_MODELS),
            benchmarks=list(benchmark_files().values()),
            code=script_code("toy_summary"),
        output:
            csv=report(paths.TOY_SUMMARY, caption="../report/toy_summary.rst", category="Toy world"),
            samples=directory("results/models/eval"),
        log:
            "results/logs/toy/summary.log",
        benchmark:
            "results/benchmarks/toy_summary.tsv"
        params:
            names=TOY_MODELS,
            benchmarks=BENCHMARKS,
            eval_cfg=config["eval"],
            seed=config["seed"],
        threads: 1
        conda:
            "../../envs/main.yaml"
        script:
            "../scripts/toy_summary.py"

else:

    rule prepare_benchmark:
        input:
            code=script_code("prepare_benchmark"),
        output:
            "results/data/benchmarks/{bench}.jsonl",
        log:
            "results/logs/data/benchmark_{bench}.log",
        params:
            source=lambda wc: config["benchmark_sources"][wc.bench],
            prompts=config["prompts"],
            seed=config["seed"],
        conda:
            "../../envs/main.yaml"
        script:
            "../scripts/prepare_benchmark.py"


rule sample_prompts:
    input:
        unpack(lambda wc: {"pool": "results/data/toy_pool.jsonl"} if TOY else {}),
        code=script_code("sample_prompts"),
    output:
        questions=paths.OPD_QUESTIONS,
        seqkd=paths.SEQKD,
    log:
        "results/logs/data/sample_prompts.log",
    params:
        data=config["data"],
        seed=config["seed"],
    conda:
        "../../envs/main.yaml"
    script:
        "../scripts/sample_prompts.py"


rule download_model:
    input:
        code=script_code("download_model"),
    output:
        directory(f"{hub.HUB_DIR}/{{repo}}"),
    log:
        "results/logs/download/{repo}.log",
    params:
        repo_id=lambda wc: hub.repo_id_of(wc.repo),
        revision=lambda wc: HUB_MODELS[hub.repo_id_of(wc.repo)],
    wildcard_constraints:
        repo=hub_folder_pattern(),
    conda:
        "../../envs/main.yaml"
    script:
        "../scripts/download_model.py"
