"""The flow definition language: models, validation and JSON Schema. Pure: no I/O."""
