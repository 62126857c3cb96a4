//! Tests: notifications.
