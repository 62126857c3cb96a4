//! Fresh PostgreSQL databases for tests.
