"""``fabflow validate`` and ``fabflow schema``: check flow files, print the format's schema."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from fabflow.cli.app import EXIT_FAILED, EXIT_OK, app
from fabflow.errors import Problem
from fabflow.flows.explain import explain, flow_graph
from fabflow.flows.schema import flow_schema, render
from fabflow.flows.validate import ValidationResult, load_flow

STDIN = "-"


@dataclass(frozen=True)
class Checked:
    """One file and what validating it found."""

    file: str
    result: ValidationResult


def _load_plugins() -> None:
    # Plugin step types become valid in flows once their executors are registered.
    from fabflow.steps.registry import load_entry_points

    load_entry_points()


def _read(file: str) -> bytes | Problem:
    try:
        return sys.stdin.buffer.read() if file == STDIN else Path(file).read_bytes()
    except FileNotFoundError:
        return Problem("", "file not found")
    except IsADirectoryError:
        return Problem("", "is a directory, not a flow file")
    except OSError as exc:
        return Problem("", f"cannot read the file: {exc.strerror or exc}")


def check_file(file: str) -> Checked:
    """Read and validate one flow file (``-`` is standard input)."""
    data = _read(file)
    if isinstance(data, Problem):
        return Checked(file, ValidationResult(None, [data]))
    name = "stdin" if file == STDIN else Path(file).stem
    return Checked(file, load_flow(data, name=name))


def problem_line(file: str, problem: Problem) -> str:
    """``FILE: POINTER: message`` (``warning:`` before the message of a warning).

    A problem with the whole document (empty pointer) reads ``FILE: message``.
    """
    where = f"{file}: {problem.pointer}: " if problem.pointer else f"{file}: "
    severity = "warning: " if problem.severity == "warning" else ""
    return f"{where}{severity}{problem.message}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _summary(checked: Checked) -> str:
    flow = checked.result.flow
    if flow is None:
        return f"{checked.file}: invalid ({_count(len(checked.result.errors), 'error')})"
    warnings = len(checked.result.warnings)
    extra = f", {_count(warnings, 'warning')}" if warnings else ""
    return f"{checked.file}: ok ({_count(len(flow.steps), 'step')}{extra})"


def _print_text(all_checked: list[Checked], with_explain: bool) -> None:
    for checked in all_checked:
        for problem in checked.result.problems:
            typer.echo(problem_line(checked.file, problem))
        typer.echo(_summary(checked))
        if with_explain and checked.result.flow is not None:
            typer.echo("")
            typer.echo(explain(checked.result.flow))
            typer.echo("")


def _problem_dicts(all_checked: list[Checked]) -> list[dict[str, str]]:
    return [{"file": c.file, **p.as_dict()} for c in all_checked for p in c.result.problems]


def _print_json(all_checked: list[Checked], with_explain: bool) -> None:
    problems = _problem_dicts(all_checked)
    if not with_explain:
        typer.echo(json.dumps(problems, indent=2, ensure_ascii=False))
        return
    graphs: dict[str, Any] = {
        c.file: flow_graph(c.result.flow).as_dict() for c in all_checked if c.result.flow
    }
    typer.echo(json.dumps({"problems": problems, "graphs": graphs}, indent=2, ensure_ascii=False))


@app.command()
def validate(
    flows: Annotated[
        list[str], typer.Argument(help="Flow files (JSON) to check; - reads standard input.")
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the problems as a JSON list.")
    ] = False,
    with_explain: Annotated[
        bool,
        typer.Option(
            "--explain", help="Also print where each valid flow goes on success and error."
        ),
    ] = False,
) -> None:
    """Check flow files: exit 0 when all are valid (warnings are printed), 1 otherwise.

    Prints one line per problem: FILE: POINTER: message (POINTER is a JSON Pointer).
    """
    _load_plugins()
    all_checked = [check_file(file) for file in flows]
    if as_json:
        _print_json(all_checked, with_explain)
    else:
        _print_text(all_checked, with_explain)
    valid = all(c.result.flow is not None for c in all_checked)
    raise typer.Exit(EXIT_OK if valid else EXIT_FAILED)


@app.command()
def schema() -> None:
    """Print the JSON Schema of the flow format (with the installed step types)."""
    _load_plugins()
    typer.echo(render(flow_schema()), nl=False)
