"""Step executors: one module per step type behind the interface of ``base``."""
