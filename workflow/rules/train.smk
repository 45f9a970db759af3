# Training: one job per run. A run retrains when its settings file or the code it runs changes.


rule run_settings:
    input:
        code=script_code("write_run_settings"),
    output:
        paths.SETTINGS,
    log:
        "results/logs/settings/{run}.log",
    params:
        settings=run_settings,
    conda:
        "../../envs/main.yaml"
    script:
        "../scripts/write_run_settings.py"


rule train:
    input:
        unpack(train_data),
        settings=paths.SETTINGS,
        models=model_inputs,
        code=script_code("train"),
    output:
        checkpoints=directory(paths.CHECKPOINTS),
        metrics=paths.METRICS,
        kl=paths.KL,
    log:
        "results/logs/train/{run}.log",
    benchmark:
        "results/benchmarks/train/{run}.tsv"
    params:
        work="results/work/{run}",
    threads: 1
    priority: train_priority
    resources:
        gpu=train_gpus,
        nodes=train_nodes,
    conda:
        "../../envs/main.yaml"
    script:
        "../scripts/train.py"
