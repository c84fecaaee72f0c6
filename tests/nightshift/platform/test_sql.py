"""Set-based helpers that depend on the database: statistics refreshed after a bulk change."""

from __future__ import annotations

from sqlalchemy import text

from nightshift.platform.db import make_engine, make_sessionmaker, transaction
from nightshift.platform.models import Assignment
from nightshift.platform.sql import BULK_CHANGE_ROWS, REFRESH_STATISTICS_TARGET, refresh_statistics


def test_a_bulk_change_refreshes_the_tables_statistics_and_a_small_one_does_not(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    sessions = make_sessionmaker(engine)

    def analyzed() -> int:
        # A fresh session each time: statistics views are a snapshot per transaction.
        with sessions() as session:
            count = session.scalar(
                text(
                    "SELECT analyze_count FROM pg_stat_user_tables"
                    " WHERE relname = 'assignments' AND schemaname = current_schema()"
                )
            )
            return int(count or 0)

    before = analyzed()
    with transaction(sessions) as session:
        refresh_statistics(session, BULK_CHANGE_ROWS - 1, Assignment)
    assert analyzed() == before
    with transaction(sessions) as session:
        refresh_statistics(session, BULK_CHANGE_ROWS, Assignment)
    assert analyzed() == before + 1
    engine.dispose()


def test_the_smaller_analyze_sample_ends_with_the_transaction(postgres_url: str) -> None:
    # The refresh samples fewer rows than the server's default; the connection goes back to the
    # pool afterwards, and whatever it runs next must plan and analyze with the server's setting.
    engine = make_engine(postgres_url)
    sessions = make_sessionmaker(engine)
    show = text("SELECT pg_backend_pid(), current_setting('default_statistics_target')")
    with sessions() as session:
        backend, default = session.execute(show).one()
    with transaction(sessions) as session:
        refresh_statistics(session, BULK_CHANGE_ROWS, Assignment)
        assert session.execute(show).one() == (backend, str(REFRESH_STATISTICS_TARGET))
    with sessions() as session:
        # The same pooled connection, back to the server's default.
        assert session.execute(show).one() == (backend, default)
    engine.dispose()
