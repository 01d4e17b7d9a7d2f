"""Running the rows of :mod:`tests.audit.table`: in this process, or in a worker subprocess.

:func:`run_row` calls a row, judges what happened against the row's expectation and checks the
inputs are unchanged (against clones taken before the call). It returns an :class:`Outcome`,
whose ``observed`` text goes into docs/reliability.md.

:func:`run_isolated` runs rows that could crash or hang in ``python -m tests.audit.run``: one
worker runs them in turn and reports each outcome as a JSON line; a row that kills the worker or
overruns the timeout is recorded as such and the worker is restarted for the remaining rows.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import subprocess
import sys
import time
import traceback
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from .table import Raises, Result, Row, Warns, rows

ROOT = Path(__file__).resolve().parents[2]
ROW_TIMEOUT_S = 60.0  # per isolated row; generous for a loaded machine (JAX compiles)
_MARK = "@@audit "
_NOISE = ("Sparse CSR tensor support is in beta state",
          "Sparse invariant checks are implicitly disabled")


@dataclass
class Outcome:
    passed: bool
    observed: str  # what happened, for the report (deterministic: no addresses, no residuals)
    problem: str = ""  # why the row failed

    def to_json(self) -> str:
        return json.dumps(asdict(self))


# ------------------------------------------------------------------------ input snapshots
def _snapshot(x):
    if isinstance(x, torch.Tensor):
        return ("torch", x.detach().clone())
    if isinstance(x, np.ndarray):
        return ("numpy", x.copy())
    if hasattr(x, "indptr") and hasattr(x, "data") and hasattr(x, "toarray"):  # SciPy sparse
        return ("scipy", x.copy())
    if isinstance(x, (list, tuple)):
        return (type(x).__name__, [_snapshot(v) for v in x])
    if isinstance(x, dict):
        return ("dict", {k: _snapshot(v) for k, v in x.items()})
    return ("other", None)  # immutable (JAX arrays, numbers, strings) or not a data input


def _same_tensor(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.layout != b.layout or a.shape != b.shape or a.dtype != b.dtype or a.device != b.device:
        return False
    if a.device.type == "meta":
        return True
    if a.layout == torch.sparse_coo:
        parts = [(a._indices(), b._indices()), (a._values(), b._values())]
    elif a.layout in (torch.sparse_csr, torch.sparse_bsr):
        parts = [(a.crow_indices(), b.crow_indices()), (a.col_indices(), b.col_indices()),
                 (a.values(), b.values())]
    elif a.layout in (torch.sparse_csc, torch.sparse_bsc):
        parts = [(a.ccol_indices(), b.ccol_indices()), (a.row_indices(), b.row_indices()),
                 (a.values(), b.values())]
    else:
        parts = [(a, b)]
    for x, y in parts:
        if x.shape != y.shape or x.dtype != y.dtype:
            return False
        x = x.resolve_conj().resolve_neg()
        if not (torch.equal(x, y) or (x.is_floating_point() and torch.allclose(x, y, 0, 0, True))):
            return False
    return True


def _changed(snap, x, path: str) -> str | None:
    kind, saved = snap
    if kind == "torch":
        return None if _same_tensor(x.detach(), saved) else path
    if kind == "numpy":
        same = x.shape == saved.shape and np.array_equal(x, saved, equal_nan=x.dtype.kind in "fc")
        return None if same else path
    if kind == "scipy":
        same = (x != saved).nnz == 0 if x.shape == saved.shape else False
        return None if same else path
    if kind in ("list", "tuple"):
        if len(x) != len(saved):
            return path
        for i, (s, v) in enumerate(zip(saved, x, strict=True)):
            if (bad := _changed(s, v, f"{path}[{i}]")) is not None:
                return bad
    if kind == "dict":
        for k, s in saved.items():
            if (bad := _changed(s, x[k], f"{path}[{k!r}]")) is not None:
                return bad
    return None


# ------------------------------------------------------------------------------ one row
def _first_line(text: str, limit: int = 170) -> str:
    line = str(text).strip().splitlines()[0] if str(text).strip() else ""
    line = re.sub(r" at 0x[0-9a-f]+", "", line)
    return line if len(line) <= limit else line[: limit - 3] + "..."


def run_row(row: Row) -> Outcome:
    """Call ``row`` here, judge the outcome, and check its inputs are unchanged."""
    try:
        with row.context(), warnings.catch_warnings():
            for text in _NOISE:
                warnings.filterwarnings("ignore", text)
            call = row.make()
            watched = (call.args, call.kwargs, call.watch)
            snap = _snapshot(watched)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    result, exc = call.fn(*call.args, **call.kwargs), None
                except Exception as e:  # judged below
                    result, exc = None, e
                outcome = _judge(row, result, exc, caught, call)
    except Exception as e:  # building the inputs or a check itself failed
        return Outcome(False, f"audit error: {type(e).__name__}", traceback.format_exc(limit=4))
    mutated = _changed(snap, watched, "inputs")
    if mutated is not None:
        return Outcome(False, outcome.observed + " (INPUT MUTATED)",
                       f"{mutated} changed by the call")
    return outcome


def _judge(row: Row, result, exc, caught, call) -> Outcome:
    exp = row.expect
    conv = [w for w in caught if type(w.message).__name__ == "ConvergenceWarning"]
    if exc is not None:
        observed = f"{type(exc).__name__}: {_first_line(exc)}"
        if not isinstance(exp, Raises):
            return Outcome(False, observed,
                           f"unexpected exception:\n{''.join(traceback.format_exception(exc))}")
        if not isinstance(exc, exp.exc):
            return Outcome(False, observed, f"expected {exp.describe()}")
        msg = str(exc)
        args = [a for a in re.split(r"[/,] ?", exp.arg) if a]
        if not any(re.search(rf"(?<![\w.]){re.escape(a)}(?![\w])", msg) for a in args):
            return Outcome(False, observed, f"the message does not name {exp.arg!r}: {msg!r}")
        if exp.match and not re.search(exp.match, msg):
            return Outcome(False, observed, f"the message does not match {exp.match!r}: {msg!r}")
        return Outcome(True, observed)
    if isinstance(exp, Raises):
        return Outcome(False, "returned a result", f"expected {exp.describe()}, got a result")
    if isinstance(exp, Warns):
        hits = [w for w in caught if issubclass(w.category, exp.category)
                and re.search(exp.match, str(w.message))]
        if not hits:
            got = [f"{w.category.__name__}: {w.message}" for w in caught]
            return Outcome(False, "result without the warning",
                           f"expected {exp.describe()}, got {got}")
        observed = f"{exp.category.__name__}: {_first_line(str(hits[0].message).split(':')[0])}"
        try:
            if exp.check is not None:
                exp.check(result, call)
        except AssertionError as e:
            return Outcome(False, observed, f"wrong result: {e}")
        return Outcome(True, observed)
    assert isinstance(exp, Result)
    if conv:
        return Outcome(False, "result with a ConvergenceWarning", f"unexpected: {conv[0].message}")
    try:
        exp.check(result, call)
    except AssertionError as e:
        return Outcome(False, "WRONG result", f"wrong result: {_first_line(e, 2000)}")
    return Outcome(True, "as required")


# ----------------------------------------------------------------------- isolated rows
def run_isolated(selected: list[Row], timeout: float = ROW_TIMEOUT_S) -> dict[str, Outcome]:
    """Outcomes of ``selected`` rows, each run in a worker subprocess (restarted after a crash
    or a timeout)."""
    todo = [r.id for r in selected]
    results: dict[str, Outcome] = {}
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    while todo:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.audit.run"], cwd=ROOT, env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        proc.stdin.write(json.dumps(todo))
        proc.stdin.close()
        current, deadline = None, time.monotonic() + 4 * timeout  # startup: imports
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        buffer = ""
        while True:
            if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                proc.kill()
                proc.wait()
                if current is not None:
                    results[current] = Outcome(False, f"hang: killed after {timeout:.0f} s",
                                               "the call did not return")
                    todo.remove(current)
                break
            chunk = proc.stdout.readline()
            if not chunk:  # the worker exited
                code = proc.wait()
                if current is not None:
                    results[current] = Outcome(False, f"process crashed (exit code {code})",
                                               "the call killed the interpreter")
                    todo.remove(current)
                elif todo:  # died before starting a row
                    for rid in todo:
                        results[rid] = Outcome(False, "audit error", f"worker exited ({code})")
                    todo = []
                break
            buffer = chunk
            if not buffer.startswith(_MARK):
                continue
            msg = json.loads(buffer[len(_MARK):])
            if "start" in msg:
                current, deadline = msg["start"], time.monotonic() + timeout
            else:
                results[msg["id"]] = Outcome(**msg["outcome"])
                todo.remove(msg["id"])
                current = None
        sel.close()
    return results


def _worker() -> None:
    ids = json.loads(sys.stdin.read())
    table = {r.id: r for r in rows()}
    out = sys.stdout
    for rid in ids:
        print(_MARK + json.dumps({"start": rid}), file=out, flush=True)
        outcome = run_row(table[rid])
        print(_MARK + json.dumps({"id": rid, "outcome": asdict(outcome)}), file=out, flush=True)


if __name__ == "__main__":
    _worker()
