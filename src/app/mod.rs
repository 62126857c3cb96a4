//! The composition root: builds every part ([`startup`]), holds them
//! ([`state::AppState`]), mounts the routes of both listeners ([`routes`]),
//! documents them ([`openapi`]) and runs the drain ([`drain`]). Everything
//! else is below this module and never reaches up into it: handlers and
//! sessions receive the parts they need.

pub mod drain;
pub mod openapi;
pub mod routes;
pub mod startup;
pub mod state;

pub use state::AppState;
