# Evaluation: the dev set at every checkpoint of a run (one job per run), the dev-chosen step
# (a Snakemake checkpoint), and the full suite at any (run, step) a table asks for.


rule eval_curve:
    input:
        checkpoints="results/runs/{run}/checkpoints",
        benchmarks=list(benchmark_files().values()),
        code=script_code("eval_curve"),
    output:
        curve="results/eval/{run}/curve.csv",
        samples=directory("results/eval/{run}/curve"),
    log:
        "results/logs/eval/{run}_curve.log",
    benchmark:
        "results/benchmarks/eval/{run}_curve.tsv"
    params:
        benchmarks=lambda wc: curve_benchmarks(wc.run),
        eval_cfg=config["eval"],
        seed=config["seed"],
    threads: 1
    resources:
        gpu=1 if config["eval"]["sampler"] == "vllm" else 0,
    conda:
        "../../envs/main.yaml"
    script:
        "../scripts/eval_curve.py"


checkpoint choose_step:
    input:
        curve="results/eval/{run}/curve.csv",
        code=script_code("choose_step"),
    output:
        "results/eval/{run}/chosen.json",
    log:
        "results/logs/eval/{run}_choose.log",
    params:
        dev=DEV,
    conda:
        "../../envs/main.yaml"
    script:
        "../scripts/choose_step.py"


rule eval_suite:
    input:
        model=lambda wc: local_models([model_dir(wc)]),
        benchmarks=list(benchmark_files().values()),
        code=script_code("eval_suite"),
    output:
        summary="results/eval/{run}/step_{step}/summary.csv",
        samples=expand("results/eval/{{run}}/step_{{step}}/{bench}.jsonl", bench=BENCHMARKS),
    log:
        "results/logs/eval/{run}_step{step}.log",
    benchmark:
        "results/benchmarks/eval/{run}_step{step}.tsv"
    params:
        model=lambda wc: model_dir(wc)
        if is_base(wc.run)
        else f"{model_dir(wc)}/step_{wc.step}",
        eval_cfg=config["eval"],
        seed=config["seed"],
    threads: 1
    resources:
        gpu=1 if config["eval"]["sampler"] == "vllm" else 0,
    conda:
        "../../envs/main.yaml"
    script:
        "../scripts/eval_suite.py"
