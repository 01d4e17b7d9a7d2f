"""The bad-input audit (issue 7): every row of the audit table (tests/audit/rows_*.py), and
docs/reliability.md.

Each row calls one public callable with one bad (or edge) input and must give what the table
says: a TypeError/ValueError naming the argument, a correct result (NaN only where the reference
has it), or a documented ConvergenceWarning; its inputs must be unchanged. Rows that could crash
or hang run in a subprocess with a timeout.
"""

from __future__ import annotations

import pytest

from .report import DOC, outcomes_for, render
from .run import run_row
from .table import EXEMPT, public_callables, rows

ROWS = rows()
CPU_ROWS = [r for r in ROWS if not r.gpu]
GPU_ROWS = [r for r in ROWS if r.gpu]


@pytest.mark.parametrize("row", CPU_ROWS, ids=[r.id for r in CPU_ROWS])
def test_row(row, audit_outcomes, request):
    if row.isolate:
        outcome = request.getfixturevalue("isolated_outcomes")[row.id]
    else:
        outcome = run_row(row)
    audit_outcomes[row.id] = outcome
    assert outcome.passed, f"{row.id}: {outcome.observed}\n{outcome.problem}"


@pytest.mark.gpu
@pytest.mark.parametrize("row", GPU_ROWS, ids=[r.id for r in GPU_ROWS])
def test_gpu_row(row):
    outcome = run_row(row)
    assert outcome.passed, f"{row.id}: {outcome.observed}\n{outcome.problem}"


def test_every_public_callable_has_rows():
    covered = {r.target for r in ROWS}
    missing = [n for n in public_callables() if n not in covered and n not in EXEMPT]
    assert not missing, f"public callables without audit rows: {missing}"
    assert not set(EXEMPT) & covered


def test_table_rows_name_existing_targets():
    """Each row's target is a real public name (a module attribute, or a method of one)."""
    import importlib

    for r in ROWS:
        parts = r.target.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
            break
        assert callable(obj), r.target


def test_reliability_doc_is_current(audit_outcomes):
    """docs/reliability.md equals what the table and its outcomes generate (run last, it reuses
    the outcomes recorded by test_row; rows not run in this session are run here)."""
    text = render(ROWS, outcomes_for(ROWS, audit_outcomes))
    committed = DOC.read_text() if DOC.exists() else ""
    assert committed == text, (
        "docs/reliability.md is out of date with the audit table (tests/audit/rows_*.py): "
        "regenerate it with `python -m tests.audit.report` and commit it."
    )
