"""The postgres_url fixture hands each test its own empty, working database."""

from __future__ import annotations

import psycopg
import pytest

pytestmark = pytest.mark.integration


def test_each_test_gets_its_own_empty_working_database(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as connection:
        name = connection.execute("SELECT current_database()").fetchone()
        tables = connection.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
        connection.execute("CREATE TABLE probe (id integer PRIMARY KEY)")
        connection.execute("INSERT INTO probe VALUES (1)")
        stored = connection.execute("SELECT id FROM probe").fetchall()

    assert name is not None
    assert name[0].startswith("baylink_test_")
    assert postgres_url.endswith(f"/{name[0]}")
    assert tables == (0,)
    assert stored == [(1,)]
