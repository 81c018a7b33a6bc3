"""User-facing errors are printed as one message; anything else keeps its traceback."""

from __future__ import annotations

import sys

import pytest
from kedro.io.core import DatasetError

from memory_efficient_embeddings.hooks import NodeError, UserErrorHooks, user_error
from memory_efficient_embeddings.ingest import ArchiveNotFoundError
from memory_efficient_embeddings.parameters import ParameterError, validate_parameters


def _raised(error: BaseException) -> BaseException:
    try:
        raise error
    except BaseException as caught:  # noqa: BLE001 - the test inspects what was raised
        return caught


def test_project_errors_are_user_errors_and_others_are_not() -> None:
    parameter_error = _raised(ParameterError("`training.epoch` is not a known parameter."))
    assert user_error(parameter_error) is parameter_error
    missing = _raised(ArchiveNotFoundError("data.path is '/x.zip', but nothing exists there."))
    assert user_error(missing) is missing
    assert user_error(_raised(ValueError("a bug"))) is None
    assert user_error(_raised(NodeError("please report it"))) is None
    # Kedro's own dataset errors are not ours: they keep their traceback.
    assert user_error(_raised(DatasetError("kedro internals"))) is None


def test_a_user_error_wrapped_by_another_exception_is_found() -> None:
    inner = _raised(ParameterError("bad"))
    try:
        raise RuntimeError("wrapper") from inner
    except RuntimeError as outer:
        assert user_error(outer) is inner


def test_the_excepthook_prints_one_line_for_user_errors(monkeypatch, capsys) -> None:
    calls = []
    monkeypatch.setattr(sys, "excepthook", lambda *args: calls.append(args))
    UserErrorHooks().after_context_created(context=None)
    with pytest.raises(ParameterError) as caught:
        validate_parameters({"training": {"epoch": 1}})
    sys.excepthook(ParameterError, caught.value, caught.value.__traceback__)
    err = capsys.readouterr().err
    assert "Error (ParameterError)" in err and "training.epochs" in err
    assert "Traceback" not in err and not calls
    bug = _raised(ZeroDivisionError("division by zero"))
    sys.excepthook(ZeroDivisionError, bug, bug.__traceback__)
    assert len(calls) == 1  # anything else goes to the previous hook, traceback and all
