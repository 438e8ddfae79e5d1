"""Production files: parametric products, text, mesh checks, file writers and previews.

The step ``generate-production-files`` (``fabflow.steps.production``) drives this package;
order intake calls ``validate_lines`` and the API publishes ``catalogue()``.
"""
