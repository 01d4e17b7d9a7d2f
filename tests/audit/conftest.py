"""Fixtures of the bad-input audit: the outcome of every table row run in this session.

``audit_outcomes`` collects each row's :class:`~tests.audit.run.Outcome` as the row's test runs,
so that the document check at the end of ``test_bad_inputs.py`` renders docs/reliability.md from
the outcomes the tests actually observed. ``isolated_outcomes`` runs all isolated rows selected in
this session in one worker subprocess the first time one of them is needed.
"""

from __future__ import annotations

import pytest

from .run import Outcome, run_isolated
from .table import rows


@pytest.fixture(scope="session")
def audit_table():
    return rows()


@pytest.fixture(scope="session")
def audit_outcomes() -> dict[str, Outcome]:
    return {}


@pytest.fixture(scope="session")
def isolated_outcomes(request, audit_table) -> dict[str, Outcome]:
    selected = {
        item.callspec.params["row"].id
        for item in request.session.items
        if hasattr(item, "callspec") and "row" in item.callspec.params
        and item.callspec.params["row"].isolate
    }
    return run_isolated([r for r in audit_table if r.id in selected and not r.gpu])
