"""`aurora canary plan`: real sample sizes and times, clear errors."""

from __future__ import annotations

import json

import pytest

from aurora.cli import app, run_app


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        run_app(app, ["canary", "plan", *args], prog="aurora")
    out = capsys.readouterr()
    return int(exit_info.value.code or 0), out.out, out.err


def test_plan_prints_pairs_and_hours_per_step_that_scale_with_weight_and_rate(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--rate", "1", "--json")
    assert code == 0
    plan = json.loads(out)
    rows = {(r["weight"], r["comparison"]): r for r in plan["rows"]}
    assert {w for w, _ in rows} == {10, 50, 100}
    ten, fifty = rows[(10, "rtt_p95")], rows[(50, "rtt_p95")]
    assert ten["pairs_per_hour"] == pytest.approx(6.0)  # 10 % of 60 orders an hour
    assert ten["pairs_to_pass"] == fifty["pairs_to_pass"] > 0
    assert ten["hours_to_pass"] == pytest.approx(5 * fifty["hours_to_pass"], rel=0.01)
    assert rows[(100, "fill")]["hours_to_pass"] is None  # nothing left to compare with
    code, out, _ = _run(capsys, "--rate", "2", "--json")
    faster = {(r["weight"], r["comparison"]): r for r in json.loads(out)["rows"]}
    assert faster[(10, "rtt_p95")]["hours_to_pass"] == pytest.approx(ten["hours_to_pass"] / 2,
                                                                     rel=0.01)


@pytest.mark.parametrize("args, message", [
    (["--steps", "10,50"], "end at 100"),
    (["--rate", "0"], "--rate must be positive"),
    (["--alpha", "1.5"], "alpha"),
])
def test_plan_refuses_bad_input_with_one_line(capsys: pytest.CaptureFixture[str],
                                              args: list[str], message: str) -> None:
    code, _, err = _run(capsys, *args)
    assert code == 2
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
