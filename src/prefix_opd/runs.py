"""Training runs derived from config: one run = one (student, method, hyper-parameters) tuple.

`expand_runs(config)` turns the `experiments` section into `RunSpec`s with stable names that are
path segments (`results/runs/<name>/`). The runs Tables 1-2 and the main claims compare
(`experiments.main`) are replicated once per training seed of `seeds`; every run name ends in its
training seed (`small-opd-s0`), and the runs of one arm differ only in that seed. The ablations train
at the first seed. A run's `settings()` is everything its training depends
on; the workflow writes it to `results/runs/<name>/run.yaml`, so a run retrains exactly when its
own settings change.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

METHODS = ("opd", "opd_prefix", "opd_schedule", "opd_window", "gkd", "seqkd", "seqkd_prefix")
ON_POLICY_METHODS = ("opd", "opd_prefix", "opd_schedule", "opd_window")


class ConfigError(ValueError):
    """An invalid configuration: the message names the key and the fix."""


@dataclass(frozen=True)
class RunSpec:
    """The science of one training run (hardware lives in profiles, never here)."""

    name: str
    student: str
    method: str
    lr: float
    steps: int
    save_every: int
    l_train: int | None = None  # prefix length (opd_prefix, gkd, seqkd_prefix)
    window: tuple[int, int] | None = None  # opd_window: half-open [a, b)
    tail: int | None = None  # opd_window: the last `tail` tokens
    schedule: dict[str, Any] | None = None  # opd_schedule: {name, kind, **params} (schedules.py)
    gkd_lambda: int | None = None  # 1 on-policy samples, 0 dataset responses
    gkd_beta: int | None = None  # 1 reverse KL, 0 forward KL
    training: dict[str, Any] = field(default_factory=dict)  # shared settings (l_max, batch, ...)
    seed: int = 0  # training seed: sampling, data order (the world's seed is config `seed`)
    student_path: str = ""  # where the job reads its models and the world's seed: filled in by `settings`
    teacher_path: str = ""
    world_seed: int = 0

    @property
    def arm(self) -> str:
        """The run's name without its seed: what the seeds of one arm share."""
        return self.name.removesuffix(f"-s{self.seed}")

    @property
    def training_seed(self) -> int:
        return training_seed({"world_seed": self.world_seed, "seed": self.seed})

    def settings(self, config: dict[str, Any]) -> dict[str, Any]:
        """Everything the training job needs, as plain data (written to run.yaml; `from_settings` reads it)."""
        return replace(self, student_path=config["models"]["students"][self.student],
                       teacher_path=config["models"]["teacher"], world_seed=config["seed"]).as_settings()

    def as_settings(self) -> dict[str, Any]:
        out = asdict(self)
        out["window"] = list(self.window) if self.window else None
        return out

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> RunSpec:
        """The run a run.yaml describes (the inverse of `settings`)."""
        unknown = sorted(set(settings) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigError(f"run settings: unknown keys {unknown}; rewrite run.yaml through the workflow "
                              "(rule run_settings)")
        window = settings.get("window")
        return cls(**{**settings, "window": tuple(window) if window else None})


def training_seed(settings: dict[str, Any]) -> int:
    """The one integer every random draw of a training job derives from: the world's seed and the run's."""
    return int(settings["world_seed"]) * 1_000 + int(settings["seed"])


def seeds(config: dict[str, Any]) -> list[int]:
    """The training seeds of the replicated runs (`seeds`; the first one also trains the ablations)."""
    return [int(s) for s in config.get("seeds", [0])]


def _by_name(runs: list[RunSpec], key: str) -> dict[str, RunSpec]:
    out: dict[str, RunSpec] = {}
    for run in runs:
        if run.name in out and out[run.name] != run:
            raise ConfigError(f"{key}: two different runs are both named '{run.name}'; change one of their "
                              "settings so the names differ (learning rates are named with one significant digit)")
        out[run.name] = run
    return out


def lr_tag(lr: float) -> str:
    return f"{lr:.0e}".replace("e-0", "e-").replace("+0", "")


def _training(config: dict[str, Any]) -> dict[str, Any]:
    keys = ("backend", "sampler", "l_max", "batch_prompts", "samples_per_prompt", "gamma", "kl_bin", "log_steps",
            "diagnostic_rollouts", "micro_batch_tokens", "weight_decay", "betas", "grad_clip", "dtype")
    return {k: config["training"][k] for k in keys}


def run_name(arm: str, seed: int) -> str:
    return f"{arm}-s{seed}"


def base_run(student: str) -> str:
    """The pseudo-run that stands for a student before any training (evaluated at step 0)."""
    return f"{student}-base"


def _opd(config: dict, student: str, method: str, suffix: str, lr: float | None = None, steps: int | None = None,
         seed: int | None = None, **kw) -> RunSpec:
    t = config["training"]
    lr = t["lr"] if lr is None else lr
    seed = seeds(config)[0] if seed is None else seed
    arm = f"{student}-{method}{suffix}" + ("" if lr == t["lr"] else f"-lr{lr_tag(lr)}")
    return RunSpec(name=run_name(arm, seed), student=student, method=method, lr=lr, steps=steps or t["steps"],
                   save_every=t["save_every"], training=_training(config), seed=seed, **kw)


def _seqkd(config: dict, student: str, l_train: int | None = None, lr: float | None = None,
           seed: int | None = None) -> RunSpec:
    s = config["training"]["seqkd"]
    lr = s["lr"] if lr is None else lr
    seed = seeds(config)[0] if seed is None else seed
    method = "seqkd" if l_train is None else "seqkd_prefix"
    suffix = "" if l_train is None else str(l_train)
    arm = f"{student}-{method}{suffix}" + ("" if lr == s["lr"] else f"-lr{lr_tag(lr)}")
    training = _training(config) | {"batch_prompts": s["batch"], "samples_per_prompt": 1}
    return RunSpec(name=run_name(arm, seed), student=student, method=method, lr=lr, steps=s["steps"],
                   save_every=s["save_every"], l_train=l_train, training=training, seed=seed)


def main_runs(config: dict, student: str, seed: int | None = None) -> dict[str, RunSpec]:
    """Tables 1-2 for one student: full OPD, SeqKD, prefix OPD at each length, one run per schedule of
    experiments.main.schedules; at every training seed, or at `seed` alone."""
    main = config["experiments"]["main"]
    runs = []
    for s in seeds(config) if seed is None else [seed]:
        runs += [_opd(config, student, "opd", "", seed=s), _seqkd(config, student, seed=s)]
        runs += [_opd(config, student, "opd_prefix", str(n), l_train=n, seed=s) for n in main["prefix_lengths"]]
        runs += [_opd(config, student, "opd_schedule", f"_{sched['name']}", schedule=dict(sched), seed=s)
                 for sched in main["schedules"]]
    return _by_name(runs, "experiments.main")


def arm_key(run: RunSpec) -> str:
    """The run's arm among its student's main runs: `opd`, `seqkd`, `opd_prefix_<L>` or `opd_schedule_<name>`."""
    if run.method == "opd_prefix":
        return f"opd_prefix_{run.l_train}"
    if run.method == "opd_schedule" and run.schedule:
        return f"opd_schedule_{run.schedule['name']}"
    return run.method


def paper_schedule(config: dict[str, Any]) -> str:
    """The arm key of the schedule Tables 1-2 and the paper's scheduling claim read: the first of
    experiments.main.schedules."""
    return f"opd_schedule_{config['experiments']['main']['schedules'][0]['name']}"


def arms(runs: dict[str, RunSpec]) -> dict[str, list[str]]:
    """Run names grouped by arm (the seeds of one arm), in the order of `runs`."""
    out: dict[str, list[str]] = {}
    for r in runs.values():
        out.setdefault(r.arm, []).append(r.name)
    return out


def window_runs(config: dict) -> dict[str, RunSpec]:
    """Table 3: loss only inside [a, b) or on the last W tokens, trained as far as the table reads (its last step)."""
    w = config["experiments"]["windows"]
    steps = max(w["steps"])
    runs = [_opd(config, w["student"], "opd_window", f"{a}_{b}", window=(a, b), steps=steps) for a, b in w["windows"]]
    runs.append(_opd(config, w["student"], "opd_window", f"tail{w['tail']}", tail=w["tail"], steps=steps))
    return _by_name(runs, "experiments.windows")


def lr_sweep_runs(config: dict) -> dict[str, RunSpec]:
    """Table 4 / Fig. 8: prefix OPD at several learning rates."""
    s = config["experiments"]["lr_sweep"]
    runs = [_opd(config, s["student"], "opd_prefix", str(s["prefix"]), lr=lr, l_train=s["prefix"])
            for lr in s["lrs"]]
    return _by_name(runs, "experiments.lr_sweep.lrs")


def gkd_runs(config: dict) -> dict[str, RunSpec]:
    """Fig. 6: prefix GKD, lambda x beta in {0,1}^2 at each learning rate, one rollout per prompt."""
    g = config["experiments"]["gkd"]
    t = config["training"]
    runs = []
    for lam in g["lambdas"]:
        for beta in g["betas"]:
            for lr in g["lrs"]:
                name = run_name(f"{g['student']}-gkd{g['prefix']}-lam{lam}-beta{beta}-lr{lr_tag(lr)}",
                                seeds(config)[0])
                batch = g.get("batch_prompts", t["batch_prompts"] * t["samples_per_prompt"])
                training = _training(config) | {"samples_per_prompt": 1, "batch_prompts": batch}
                runs.append(RunSpec(name=name, student=g["student"], method="gkd", lr=lr, steps=t["steps"],
                                    save_every=t["save_every"], l_train=g["prefix"], gkd_lambda=lam,
                                    gkd_beta=beta, training=training, seed=seeds(config)[0]))
    return _by_name(runs, "experiments.gkd.lrs")


def seqkd_prefix_runs(config: dict) -> dict[str, RunSpec]:
    """Fig. 7 (App. C): SeqKD on responses truncated to L tokens, several learning rates."""
    s = config["experiments"]["seqkd_prefix"]
    runs = [_seqkd(config, s["student"], l_train=s["prefix"], lr=lr) for lr in s["lrs"]]
    return _by_name(runs, "experiments.seqkd_prefix.lrs")


def expand_runs(config: dict[str, Any]) -> dict[str, RunSpec]:
    """Every training run of the study, by name; the same name twice must mean the same run."""
    groups = [main_runs(config, s) for s in config["experiments"]["main"]["students"]]
    groups += [window_runs(config), lr_sweep_runs(config), gkd_runs(config), seqkd_prefix_runs(config)]
    runs: dict[str, RunSpec] = {}
    for group in groups:
        for name, run in group.items():
            if name in runs and runs[name] != run:
                raise ConfigError(f"experiments: two different runs are both named '{name}'; "
                                  "change one of their settings so the names differ")
            runs[name] = run
    return runs
