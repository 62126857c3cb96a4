//! Keyset pagination: `{items, next_cursor}` where `next_cursor` is null on
//! the last page. Stores are asked for one item more than the page size; the
//! extra item only tells whether another page exists.

use crate::domain::Limit;
use crate::http::error::{ApiError, Fields};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The query of every keyset-paginated list: how every list route reads
/// its page.
#[derive(Deserialize, IntoParams)]
pub struct PageQuery {
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1 to 200, default 50.
    pub limit: Option<i64>,
}

impl PageQuery {
    /// The cursor (parsed by `parse_cursor`: the id to continue after) and
    /// the page size, each bad one named in one `bad_request`.
    pub fn parse<T, E: std::fmt::Display>(
        &self,
        parse_cursor: impl Fn(&str) -> Result<T, E>,
    ) -> Result<(Option<T>, Limit), ApiError> {
        let mut fields = Fields::default();
        let cursor = self
            .cursor
            .as_deref()
            .map(|c| fields.check("cursor", parse_cursor(c)));
        let limit = fields.check("limit", Limit::parse(self.limit));
        let limit = fields.finish(limit)?;
        Ok((cursor.flatten(), limit))
    }
}

#[derive(Serialize, ToSchema)]
pub struct Page<T: ToSchema> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl<T: ToSchema> Page<T> {
    /// Builds a page from `limit + 1` fetched rows in page order.
    pub fn from_overfetch(mut rows: Vec<T>, limit: u32, cursor_of: impl Fn(&T) -> String) -> Self {
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_cursor = if more {
            rows.last().map(cursor_of)
        } else {
            None
        };
        Self {
            items: rows,
            next_cursor,
        }
    }
}
