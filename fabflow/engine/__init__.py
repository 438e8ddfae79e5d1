"""The execution engine: the pure transition function, retry policy, the worker loop."""
