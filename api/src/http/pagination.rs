//! Page and cursor pagination, shared by every list endpoint.
//!
//! Lists are ordered newest first by id: ids are prefixed ULIDs, so id order is creation order,
//! and a cursor that is simply the last id seen stays correct however many rows are inserted
//! while a client pages through.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Select,
    sea_query::{Expr, SelectStatement},
};
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult};

const DEFAULT_PER_PAGE: u64 = 20;
const MAX_PER_PAGE: u64 = 100;
/// Page mode reaches the newest this many rows, and its `total` counts no further. An `OFFSET`
/// costs every row it skips and an exact total every row there is, so on a merchant with
/// millions of payments either would grow without bound; search APIs cap their result window
/// the same way. Deeper, a client pages by cursor, whose every page costs the same.
pub const PAGE_WINDOW: u64 = 10_000;

pub enum PageRequest {
    Page { page: u64, per_page: u64 },
    Cursor { after: Option<String>, limit: u64 },
}

impl PageRequest {
    /// Reads `?page&per_page`, or `?pagination=cursor&cursor&limit`.
    pub fn from_query(
        page: Option<u64>,
        per_page: Option<u64>,
        pagination: Option<&str>,
        cursor: Option<&str>,
        limit: Option<u64>,
    ) -> ApiResult<Self> {
        let bounded = |name: &str, value: Option<u64>| match value {
            None => Ok(DEFAULT_PER_PAGE),
            Some(n) if (1..=MAX_PER_PAGE).contains(&n) => Ok(n),
            Some(_) => Err(ApiError::validation(name, format!("must be between 1 and {MAX_PER_PAGE}"))),
        };
        match pagination {
            None | Some("page") => {
                let (page, per_page) = (page.unwrap_or(1), bounded("per_page", per_page)?);
                check_window(page, per_page)?;
                Ok(Self::Page { page, per_page })
            }
            Some("cursor") => {
                let after = cursor
                    .filter(|c| !c.is_empty())
                    .map(|c| {
                        URL_SAFE_NO_PAD
                            .decode(c)
                            .ok()
                            .and_then(|bytes| String::from_utf8(bytes).ok())
                            .filter(|id| id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
                            .ok_or_else(|| {
                                ApiError::validation("cursor", "is not a cursor this API returned")
                            })
                    })
                    .transpose()?;
                Ok(Self::Cursor { after, limit: bounded("limit", limit)? })
            }
            Some(_) => Err(ApiError::validation("pagination", "must be `cursor` or absent")),
        }
    }
}

/// Runs `select` for one page, newest first, and returns the rows with the `meta` to send.
pub async fn paginate<E, C>(
    db: &impl ConnectionTrait,
    select: Select<E>,
    id_column: C,
    id_of: impl Fn(&E::Model) -> &str,
    request: &PageRequest,
) -> ApiResult<(Vec<E::Model>, Value)>
where
    E: EntityTrait,
    E::Model: Sync,
    C: ColumnTrait,
{
    match request {
        PageRequest::Page { page, per_page } => {
            let (rows, total) = page_of(db, select, id_column, *page, *per_page).await?;
            let meta = json!({
                "page": page,
                "perPage": per_page,
                "total": total.count,
                "totalPages": total.count.div_ceil(*per_page),
                "totalCapped": total.capped,
            });
            Ok((rows, meta))
        }
        PageRequest::Cursor { after, limit } => {
            let select = select.order_by_desc(id_column);
            let select = match after {
                Some(last_id) => select.filter(id_column.lt(last_id.as_str())),
                None => select,
            };
            let mut rows = select.limit(limit + 1).all(db).await?;
            let has_more = rows.len() as u64 > *limit;
            rows.truncate(*limit as usize);
            let next = has_more.then(|| rows.last().map(|row| URL_SAFE_NO_PAD.encode(id_of(row)))).flatten();
            let meta = json!({ "limit": limit, "hasMore": has_more, "nextCursor": next });
            Ok((rows, meta))
        }
    }
}

/// One page of `select`, newest first, and how many rows there are: for surfaces whose seeds
/// page by number only (Maxtera's integer ids take no cursor).
pub async fn page_of<E, C>(
    db: &impl ConnectionTrait,
    select: Select<E>,
    id_column: C,
    page: u64,
    per_page: u64,
) -> ApiResult<(Vec<E::Model>, Total)>
where
    E: EntityTrait,
    E::Model: Sync,
    C: ColumnTrait,
{
    check_window(page, per_page)?;
    let counted = select.clone().select_only().column(id_column).limit(PAGE_WINDOW + 1).into_query();
    let count =
        SelectStatement::new().expr(Expr::cust("COUNT(*) AS n")).from_subquery(counted, "window").to_owned();
    let count = match db.query_one(&count).await? {
        Some(row) => u64::try_from(row.try_get::<i64>("", "n")?).unwrap_or_default(),
        None => 0,
    };
    let rows = select.order_by_desc(id_column).offset((page - 1) * per_page).limit(per_page).all(db).await?;
    Ok((rows, Total { count: count.min(PAGE_WINDOW), capped: count > PAGE_WINDOW }))
}

/// How many rows a list has, counted up to [`PAGE_WINDOW`]: `capped` when there are more.
pub struct Total {
    pub count: u64,
    pub capped: bool,
}

fn check_window(page: u64, per_page: u64) -> ApiResult<()> {
    if page == 0 {
        return Err(ApiError::validation("page", "must be at least 1"));
    }
    if (page - 1).saturating_mul(per_page) >= PAGE_WINDOW {
        return Err(ApiError::validation(
            "page",
            format!(
                "page mode reaches the newest {PAGE_WINDOW} rows (page {} at per_page {per_page}); pass \
                 pagination=cursor to go further",
                PAGE_WINDOW.div_ceil(per_page)
            ),
        ));
    }
    Ok(())
}
