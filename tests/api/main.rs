//! The one integration-test binary: parley started in-process on random
//! ports against the embedded store and a real PostgreSQL (a fresh database
//! per test). One module per feature.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod db;
mod store_conformance;
