"""Training backends other than the native engine (`prefix_opd.train`).

`verl_*` modules drive verl 0.9.1 (the paper's engine) from a run's `run.yaml` settings:
`verl_overrides` (Hydra overrides of verl's `ppo_trainer` config, and which methods verl cannot run),
`verl_schedule` (the per-step generation length and the loss-window mask, applied inside verl by a
custom agent loop), `verl_data` (training JSONL -> verl's RL parquet; verl's metrics -> our
`metrics.csv` rows) and `verl_launch` (command lines, a single-box launcher and a Ray-on-Slurm script).
Only `verl_schedule.PrefixOPDAgentLoop` imports verl, lazily; the rest is importable without it.
"""
