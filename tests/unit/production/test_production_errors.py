"""Production's errors are FabflowErrors with stable codes, and survive a trip between processes."""

from __future__ import annotations

import pickle

import pytest

from fabflow.errors import (
    FabflowError,
    InvalidInput,
    MeshCheckFailed,
    NotFound,
    ParameterError,
    PoolTimeout,
    ProductionError,
    UnknownProduct,
    WorkerCrashed,
)

CASES = [
    (
        ParameterError("textHeight", "at most 20"),
        InvalidInput,
        "parameter_error",
        "textHeight: at most 20",
    ),
    (
        UnknownProduct("nameplat", "nameplate"),
        NotFound,
        "unknown_product",
        'no product is named "nameplat" (did you mean "nameplate"?)',
    ),
    (UnknownProduct("cup", None), NotFound, "unknown_product", 'no product is named "cup"'),
    (
        MeshCheckFailed("lid", ["it is not closed", "2 separate bodies"]),
        ProductionError,
        "mesh_check_failed",
        "part 'lid' is not a printable solid: it is not closed; 2 separate bodies",
    ),
    (PoolTimeout("ran longer than 5 s"), ProductionError, "pool_timeout", "ran longer than 5 s"),
    (WorkerCrashed("the process died"), ProductionError, "worker_crashed", "the process died"),
]


@pytest.mark.parametrize(("error", "parent", "code", "text"), CASES)
def test_each_error_has_its_place_code_and_message(
    error: FabflowError, parent: type[FabflowError], code: str, text: str
) -> None:
    assert isinstance(error, parent)
    assert error.code == code
    assert str(error) == text


@pytest.mark.parametrize(("error", "parent", "code", "text"), CASES)
def test_each_error_pickles_whole(
    error: FabflowError, parent: type[FabflowError], code: str, text: str
) -> None:
    """A worker process hands exceptions back pickled; the fields must come back too."""
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is type(error)
    assert str(back) == text
    assert vars(back) == vars(error)


def test_parameter_error_points_at_the_parameter() -> None:
    error = ParameterError("text", "the font cannot draw '☃'")
    assert error.message == "the font cannot draw '☃'"
    assert [p.as_dict() for p in error.problems] == [
        {"pointer": "/text", "message": "the font cannot draw '☃'", "severity": "error"}
    ]
