"""The Typer application and the exit codes scripts can rely on."""

from __future__ import annotations

import typer

# Exit codes, stable for scripts.
EXIT_OK = 0
EXIT_FAILED = 1  # the flow is invalid (validate) or the execution failed (run)
EXIT_INVALID_INPUT = 2  # the inputs were refused (run: bad flow or order; usage errors)
EXIT_CONFIG = 3  # bad settings, or the store could not be opened
EXIT_WAITING = 4  # run: a step waits for a callback or a confirmation

app = typer.Typer(
    name="fabflow",
    help=(
        "fabflow runs order flows for made-to-order 3D products: it generates production "
        "files, calls your systems, sends emails and sets each order's status.\n\n"
        "Settings come from FABFLOW_* environment variables (see the README)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
