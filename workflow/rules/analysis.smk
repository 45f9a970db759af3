# Analyses outside the training grid: the teacher-prefix probe (Section 2.3, Fig. 3) and the case
# study (Section 4.4, Appendix A).

rule teacher_prefix_probe:
    input:
        models=local_models([config["models"]["teacher"], *config["models"]["students"].values()]),
        dev=benchmark_files([DEV])[DEV],
        code=script_code("teacher_prefix_probe"),
    output:
        csv=report(paths.PROBE, category="Analyses", caption="../report/probe.rst"),
        solutions="results/probe/teacher_solutions.jsonl",
    log:
        "results/logs/analysis/teacher_prefix_probe.log",
    benchmark:
        "results/benchmarks/analysis/teacher_prefix_probe.tsv"
    params:
        teacher=lambda wc: config["models"]["teacher"],  # a folder here, a hub id at paper scale
        students=lambda wc: config["models"]["students"],
        probe=PROBE,
        eval_cfg=config["eval"] | {"max_new_tokens": PROBE.get("max_new_tokens", config["eval"]["max_new_tokens"])},
        seed=config["seed"],
    threads: 1
    resources:
        gpu=EVAL_GPUS,
    conda:
        "../../envs/main.yaml"
    script:
        "../scripts/teacher_prefix_probe.py"


rule case_study:
    input:
        unpack(case_study_inputs),
        code=script_code("case_study"),
    output:
        report("results/case_study.md", category="Analyses", caption="../report/case_study.rst"),
    log:
        "results/logs/analysis/case_study.log",
    benchmark:
        "results/benchmarks/analysis/case_study.tsv"
    params:
        student=CASE["student"],
        base=config["models"]["students"][CASE["student"]],
        teacher=config["models"]["teacher"],
        run=CASE_RUN,
        opd_prefix=config["experiments"]["windows"]["prefix"],
        case=CASE,
        answer_margin=PROBE["answer_margin"],
        dev=DEV,
        eval_cfg=config["eval"],
        seed=config["seed"],
    threads: 1
    resources:
        gpu=EVAL_GPUS,
    conda:
        "../../envs/main.yaml"
    script:
        "../scripts/case_study.py"
