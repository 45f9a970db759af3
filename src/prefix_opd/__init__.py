"""On-policy prefix distillation: toy world, training engine, evaluation and aggregation."""
