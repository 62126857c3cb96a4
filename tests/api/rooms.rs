//! Tests: rooms.
