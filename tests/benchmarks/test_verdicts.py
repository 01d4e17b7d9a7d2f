"""Goal verdicts a person can trust, the one-thread timings, and the progress line's width."""

from __future__ import annotations

import io
import re

import pytest
import torch

from benchmarks import _report
from benchmarks._harness import (
    Case,
    Goal,
    Impl,
    Result,
    Runner,
    measure,
    memory_ratio,
    ratio_spread,
    time_ratio,
    torch_threads,
)
from benchmarks._problems import Config
from benchmarks._progress import Progress


def _res(name, fwd, fwd_1t=(), ours=False, threads=2, peak=None):
    return Result(name, ours, fwd_s=list(fwd), fwd_1t_s=list(fwd_1t), threads=threads,
                  inputs_bytes=0 if peak is not None else None, step_peak=peak)


GOAL = Goal("ours <= 0.5x base (fwd)", time_ratio("ours", "base", "fwd_s"), 0.5)


def _verdict(ours, base, at_goal_sizes=True, goal=GOAL):
    return _report.goal_row(goal, {"ours": ours, "base": base}, at_goal_sizes)


def test_every_round_below_the_limit_is_met():
    row = _verdict(_res("ours", [1.0, 1.2, 0.9], ours=True), _res("base", [4.0, 4.4, 3.9]))
    assert row["met"] is True and row["verdict"] == "met"
    assert row["value"] == pytest.approx(1.0 / 4.0)
    assert row["ratio_min"] == pytest.approx(0.9 / 3.9) and row["ratio_max"] == pytest.approx(
        1.2 / 4.4) and row["rounds"] == 3


def test_every_round_above_the_limit_is_not_met():
    row = _verdict(_res("ours", [3.0, 3.1, 2.9], ours=True), _res("base", [4.0, 4.0, 4.0]))
    assert row["met"] is False and row["verdict"] == "NOT MET"


def test_rounds_on_both_sides_of_the_limit_are_too_noisy():
    # median ratio 0.4 (met), but the second round's ratio is 1.5: the rounds disagree
    row = _verdict(_res("ours", [1.0, 6.0, 1.6], ours=True), _res("base", [4.0, 4.0, 4.0]))
    assert row["value"] == pytest.approx(0.4)
    assert row["met"] is None
    assert row["verdict"] == "too noisy: min/max ratio 0.25/1.5 over 3 rounds, on both sides of " \
                             "the limit"


def test_contention_withholds_the_verdict():
    # the baseline took 10x longer at 2 threads than at 1: a stalled kernel, not a measurement
    row = _verdict(_res("ours", [1.0, 1.0, 1.0], [1.0, 1.0, 1.0], ours=True),
                   _res("base", [40.0, 40.0, 40.0], [4.0, 4.0, 4.0]))
    assert row["met"] is None and row["value_1thread"] == pytest.approx(0.25)
    assert row["verdict"] == "too noisy: base 10.0x slower at 2 threads than at 1 (CPU contention)"
    # under the factor of 2: not contention
    row = _verdict(_res("ours", [1.0] * 3, [1.0] * 3, ours=True),
                   _res("base", [4.0] * 3, [2.5] * 3))
    assert row["verdict"] == "met"


def test_below_goal_sizes_the_ratio_is_indicative_only():
    for ours in ([1.0] * 3, [3.0] * 3):  # met or not: no verdict either way
        row = _verdict(_res("ours", ours, ours=True), _res("base", [4.0] * 3), at_goal_sizes=False)
        assert row["met"] is None
        assert row["verdict"] == "indicative only (goals are set at full sizes)"
        assert row["value"] == pytest.approx(ours[0] / 4.0)
    row = _verdict(_res("ours", [], ours=True), _res("base", [4.0]), at_goal_sizes=False)
    assert row["value"] is None and row["verdict"] == "no data"


def test_a_memory_goal_has_no_rounds_to_disagree():
    goal = Goal("peak", memory_ratio("ours", "base"), 1.0)
    row = _verdict(_res("ours", [1.0], ours=True, peak=50), _res("base", [1.0], peak=100),
                   goal=goal)
    assert row["verdict"] == "met" and row["value"] == pytest.approx(0.5)
    assert "ratio_min" not in row and "value_1thread" not in row


def test_ratio_spread_pairs_rounds_or_takes_the_widest():
    res = {"a": _res("a", [1.0, 2.0]), "b": _res("b", [2.0, 2.0]), "c": _res("c", [4.0])}
    assert ratio_spread(res, "a", "b", "fwd_s") == (0.5, 1.0, 2)
    # a baseline timed once: the widest ratio its samples allow
    assert ratio_spread(res, "a", "c", "fwd_s") == (0.25, 0.5, 1)
    assert ratio_spread(res, "a", "missing", "fwd_s") is None


def test_goal_sizes_are_the_full_suites_defaults(tmp_path):
    assert _report.at_goal_sizes(Config.for_suite("full"))
    assert not _report.at_goal_sizes(Config.for_suite("quick"))
    assert not _report.at_goal_sizes(Config.for_suite("full", size=30))
    assert not _report.at_goal_sizes(Config.for_suite("full", rhs=8))
    assert not _report.at_goal_sizes(Config.for_suite("full", dtype=torch.float64))
    assert not _report.at_goal_sizes(Config.for_suite("full", matrix=tmp_path / "m.mtx"))


def test_timings_at_one_thread_and_at_the_default():
    seen = {"fwd": [], "fwdbwd": []}

    def fwd():
        seen["fwd"].append(torch.get_num_threads())
        return torch.ones(2)

    def backward(out):
        seen["fwdbwd"].append(torch.get_num_threads())
        return out

    with torch_threads(2):
        res = measure(Case("op", "p", [Impl("x", lambda: Runner(forward=fwd, backward=backward))]),
                      device="cpu", repeats=3, budget_s=10, one_thread=True)["x"]
        assert torch.get_num_threads() == 2  # restored
    assert res.threads == 2 and len(res.fwd_s) == len(res.fwd_1t_s) == 3
    assert len(res.fwdbwd_s) == len(res.fwdbwd_1t_s) == 3
    # per round: fwd, fwd at 1 thread, fwd+bwd, fwd+bwd at 1 thread
    assert seen["fwd"][-12:] == [2, 1, 2, 1] * 3
    assert seen["fwdbwd"][-6:] == [2, 1] * 3
    # by default, a CPU with one torch thread has nothing to compare
    with torch_threads(1):
        res = measure(Case("op", "p", [Impl("x", lambda: Runner(forward=fwd))]), device="cpu",
                      repeats=2, budget_s=10)["x"]
    assert res.threads == 1 and len(res.fwd_s) == 2 and res.fwd_1t_s == []


def test_quick_suite_goal_table_shows_ratios_not_failures(capsys):
    rows = _report.ratio_rows([(Case("op", "p", [], [GOAL]),
                                {"ours": _res("ours", [3.0] * 3, ours=True),
                                 "base": _res("base", [4.0] * 3)})])
    rows = [r for r in rows if "limit" in r]  # the goals (the rest: every ours / base ratio)
    _report.print_goals(rows, "quick")
    out = capsys.readouterr().out
    assert "0.75 (limit 0.5): indicative only (goals are set at full sizes)" in out
    assert "NOT MET" not in out
    md = _report.summary_markdown(rows, {"date": "d", "gpu": "", "cpu": "c", "torch": "t",
                                         "jax": "j", "suite": "quick", "torch_threads": 2})
    assert "| op | p | ours <= 0.5x base (fwd) | 0.75 | - | 0.5 | indicative only" in md


def test_case_table_flags_contention_and_backward_faster_than_forward(capsys):
    res = {"ok": _res("ok", [1e-3], [1e-3]), "stalled": _res("stalled", [24e-3], [0.35e-3]),
           "odd": Result("odd", False, fwd_s=[2e-3], fwdbwd_s=[1e-3], threads=2)}
    _report.print_case(Case("op", "p", []), res)
    lines = capsys.readouterr().out.splitlines()
    by_name = {line.split()[0]: line for line in lines[2:]}
    assert "contention: 68.6x slower at 2 threads than at 1" in by_name["stalled"]
    assert "fwd+bwd below fwd alone" in by_name["odd"]
    assert "[" not in by_name["ok"]


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("use_tqdm", [True, False], ids=["tqdm", "plain"])
def test_progress_line_fits_the_terminal(monkeypatch, use_tqdm):
    if use_tqdm:
        pytest.importorskip("tqdm")
    stream = _Terminal()
    monkeypatch.setenv("COLUMNS", "60")
    progress = Progress(2, stream=stream, use_tqdm=use_tqdm)
    progress("sparse_mm [27-point stencil 16^3 csr] torch_api: setup " + "x" * 200)
    progress.step("first")
    monkeypatch.setenv("COLUMNS", "40")  # the window shrinks: the next line follows it
    progress("timing round 3 " * 20)
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", stream.getvalue())
    frames = [f for f in re.split(r"[\r\n]", text) if f.strip()]
    assert any("sparse_mm [27-point" in f for f in frames)
    assert any("timing round 3" in f for f in frames)
    assert "\n" not in text  # one line, rewritten in place
    assert max(len(f) for f in frames) <= 59
    assert max(len(f) for f in frames if "timing round" in f) <= 39


def test_progress_without_a_terminal_prints_a_line_per_case():
    stream = io.StringIO()
    progress = Progress(2, stream=stream)
    progress("setup")  # nothing: no terminal to update in place
    progress.step("sparse_mm [p]")
    progress.step("memory_scaling")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("[1/2] ") and lines[0].endswith("sparse_mm [p]")
    assert lines[1].startswith("[2/2] ")
