# Evaluation: one job per run (its dev set at every checkpoint, the dev-chosen step, and that checkpoint
# on the benchmarks the tables read), and the full suite at any fixed (run, step) a table asks for.


rule eval_run:
    input:
        checkpoints=paths.CHECKPOINTS,
        benchmarks=list(benchmark_files().values()),
        code=script_code("eval_run"),
    output:
        curve=paths.CURVE,
        curve_samples=directory(paths.CURVE_DIR),
        chosen=paths.CHOSEN,
        chosen_summary=paths.CHOSEN_SUMMARY,
        chosen_samples=directory(paths.CHOSEN_DIR),
    log:
        "results/logs/eval/{run}.log",
    benchmark:
        "results/benchmarks/eval/{run}.tsv"
    params:
        benchmarks=BENCHMARKS,
        curve=lambda wc: curve_benchmarks(wc.run),
        chosen=lambda wc: chosen_benchmarks(wc.run),
        dev=DEV,
        eval_cfg=config["eval"],
        seed=config["seed"],
    threads: 1
    resources:
        gpu=EVAL_GPUS,
    conda:
        "../../envs/main.yaml"
    script:
        "../scripts/eval_run.py"


rule eval_suite:
    input:
        model=lambda wc: local_models([model_dir(wc)]),
        benchmarks=list(benchmark_files().values()),
        code=script_code("eval_suite"),
    output:
        summary=paths.SUITE_SUMMARY,
        samples=expand(paths.SUITE_SAMPLES, bench=BENCHMARKS, allow_missing=True),
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
        gpu=EVAL_GPUS,
    conda:
        "../../envs/main.yaml"
    script:
        "../scripts/eval_suite.py"
