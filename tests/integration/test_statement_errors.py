"""A failed SQL statement is logged with its traceback; its parameters (hashes, e-mail
addresses, sealed secrets) are not part of it (docs/security.md)."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from licentia.server.db.engine import Database


def test_a_failed_statement_does_not_carry_its_parameters(database: Database) -> None:
    secret = "lic_0123456789ab_secret-value-never-logged"
    with pytest.raises(DBAPIError) as raised, database.read() as session:
        session.execute(text("SELECT x FROM no_such_table WHERE y = :secret"), {"secret": secret})
    assert secret not in str(raised.value)
    assert "parameters hidden" in str(raised.value)


def test_a_failed_write_does_not_carry_its_parameters(database: Database) -> None:
    secret = "ops@customer.example"
    with pytest.raises(DBAPIError) as raised, database.transaction() as session:
        session.execute(
            text("INSERT INTO no_such_table (email) VALUES (:email)"), {"email": secret}
        )
    assert secret not in str(raised.value)
