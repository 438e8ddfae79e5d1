"""Production files: parametric products, text, mesh checks, file writers and previews.

The step ``generate-production-files`` (``fabflow.steps.production``) drives this package;
order intake calls ``validate_lines`` and the API publishes ``catalogue()``.
"""

from fabflow.production.line_check import validate_lines
from fabflow.production.registry import catalogue, register

__all__ = ["catalogue", "register", "validate_lines"]
