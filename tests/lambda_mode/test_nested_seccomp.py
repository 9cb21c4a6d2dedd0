"""Where Lambda refuses nested seccomp filters (as it is reported to: openai/codex#38779), what the
sandbox does: the image's handler runs under a parent filter that answers EPERM to seccomp(2) and
prctl(PR_SET_SECCOMP). With SANDBOX_REQUIRE_SECCOMP=1 (the default) no code runs, and every answer
says why; with 0, code runs without the filter, and every execution's isolation report says so.
Each way of installing a filter is recorded as this environment answered it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.lambda_mode.harness import Harness, available

pytestmark = pytest.mark.skipif(not available(), reason="awslambdaric is not installed beside the sandbox venv")


@pytest.fixture
def rig(request: pytest.FixtureRequest) -> Iterator[Harness]:
    harness = Harness(env=request.param, refuse_nested_seccomp=True)
    yield harness
    harness.close()


@pytest.mark.parametrize("rig", [{}], indirect=True)
def test_by_default_no_code_runs_without_the_filter_and_the_answer_says_why(rig: Harness) -> None:
    result = rig.attempt("print('should not run')")
    assert result.status == "crashed" and "should not run" not in result.code_output()
    why = result.code_output()
    assert "the seccomp filter could not be installed, and SANDBOX_REQUIRE_SECCOMP is set" in why
    assert "seccomp_syscall EPERM" in why and "prctl_seccomp EPERM" in why and "no_new_privs ok" in why


@pytest.mark.parametrize("rig", [{"SANDBOX_REQUIRE_SECCOMP": "0"}], indirect=True)
def test_an_operator_who_chose_to_run_without_it_gets_code_run_and_a_report_that_says_so(rig: Harness) -> None:
    result = rig.run("import socket\nsocket.socket(socket.AF_INET, socket.SOCK_STREAM).close()\nprint('inet socket')")
    assert result.code_output() == "inet socket\n"  # what the filter would have refused: the cost of the choice
    assert result.isolation["seccomp"] is False and result.isolation["require_seccomp"] is False
    assert result.isolation["seccomp_probe"] == {"no_new_privs": "ok", "seccomp_syscall": "EPERM",
                                                 "prctl_seccomp": "EPERM"}


def test_without_a_parent_filter_the_report_shows_each_way_works(lambda_harness: Harness) -> None:
    result = lambda_harness.run("print(1)")
    assert result.isolation["seccomp"] is True and result.isolation["require_seccomp"] is True
    assert result.isolation["seccomp_probe"] == {"no_new_privs": "ok", "seccomp_syscall": "ok", "prctl_seccomp": "ok"}
