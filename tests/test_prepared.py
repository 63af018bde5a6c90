"""annotator.prepared: statements prepared once per connection, values passed as values."""

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from annotator.prepared import Prepared

pytestmark = pytest.mark.django_db

ECHO = Prepared("test_prepared_echo", "SELECT %(text)s::text, %(n)s::int + 1, %(text)s::text = %(other)s::text")


def echo(conn, **params):
    with conn.cursor() as cursor:
        ECHO.execute(cursor, params)
        return cursor.fetchone()


def test_placeholders_are_numbered_once_per_name():
    assert ECHO.prepare_sql == "PREPARE test_prepared_echo AS SELECT $1::text, $2::int + 1, $1::text = $3::text"
    assert ECHO.execute_sql == "EXECUTE test_prepared_echo(%(text)s, %(n)s, %(other)s)"


def test_values_arrive_as_values_whatever_they_hold():
    for text in ["'); DROP TABLE auth_user; --", "$1 and %s and %(n)s", 'quote " and \\ backslash', "", "ünï"]:
        assert echo(connection, text=text, n=41, other=text) == (text, 42, True)
    assert echo(connection, text=None, n=1, other="x") == (None, 2, None)


def test_a_connection_prepares_once_and_a_new_connection_again():
    with CaptureQueriesContext(connection) as ctx:
        for n in range(3):
            echo(connection, text="a", n=n, other="b")
    prepares = [q["sql"] for q in ctx.captured_queries if q["sql"].startswith("PREPARE")]
    assert len(prepares) <= 1  # none if an earlier test prepared it on this connection
    other = connections.create_connection("default")
    try:
        with CaptureQueriesContext(other) as ctx:
            assert echo(other, text="a", n=1, other="a") == ("a", 2, True)
            assert echo(other, text="a", n=2, other="b") == ("a", 3, False)
        assert [q["sql"].split()[0] for q in ctx.captured_queries] == ["PREPARE", "EXECUTE", "EXECUTE"]
    finally:
        other.close()


def test_a_statement_prepared_in_a_rolled_back_transaction_is_still_there():
    other = connections.create_connection("default")
    try:
        other.set_autocommit(False)
        echo(other, text="x", n=0, other="x")
        other.rollback()
        other.set_autocommit(True)
        with CaptureQueriesContext(other) as ctx:
            assert echo(other, text="y", n=5, other="x") == ("y", 6, False)
        assert [q["sql"].split()[0] for q in ctx.captured_queries] == ["EXECUTE"]
    finally:
        other.close()
