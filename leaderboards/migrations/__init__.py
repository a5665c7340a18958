"""Alembic migrations for the hub's schema (run through `leaderboards.db.init_db` / `upgrade`)."""
