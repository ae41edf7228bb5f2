//! Opaque keyset page tokens.
//!
//! A token holds the sort key of the last row of a page and a fingerprint of
//! the query (filter and order) it belongs to, base64url-encoded. The next
//! page is `WHERE key > last ORDER BY key LIMIT n`, which costs the same at
//! row 10 and at row 10 million. A token from another query is refused.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};

use std::{
    any::Any,
    sync::{Arc, LazyLock},
    time::Duration,
};

use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait, Select, Value,
    sea_query::{Expr, SelectStatement, SubQueryStatement},
};

use orgplane_platform::error::Error;

use crate::{postgres_reads, sqlite_reads};

/// Page size when a request asks for 0.
pub const DEFAULT_PAGE_SIZE: u64 = 50;
/// Largest page size accepted.
pub const MAX_PAGE_SIZE: u64 = 1000;

/// Most matches a list counts for `total_size` when the request did not ask
/// for the exact count: reading up to this many index entries costs about
/// what the page itself does.
pub const COUNTED_WITHOUT_ASKING: u64 = 1000;
/// How long the count of a longer list is reused when the request did not
/// ask for the exact count (the bound on seeing another replica's change
/// that the services' read caches also keep).
pub const LONG_COUNT_TTL: Duration = Duration::from_secs(1);

/// Counts of long lists by database and query, each made once for however
/// many pages ask within [`LONG_COUNT_TTL`]. A database is told by its
/// pool's options, held by the entry so that its address is not reused
/// while the entry lives.
type LongCounts = moka::future::Cache<LongCountKey, (u64, Arc<dyn Any + Send + Sync>)>;

/// A long count's database (its pool's address), statement (with
/// placeholders) and the values bound to it.
///
/// Why not the statement printed with its values: printing parses the SQL
/// again to inline them, 2.7 % of a PostgreSQL page (`BENCHMARKS.md`).
type LongCountKey = (usize, String, Vec<Value>);

static LONG_COUNTS: LazyLock<LongCounts> = LazyLock::new(|| {
    moka::future::Cache::builder()
        .max_capacity(10_000)
        .time_to_live(LONG_COUNT_TTL)
        .build()
});

/// Where a count of `matches` is kept in [`LONG_COUNTS`], with the pool the
/// entry holds (`None`: a database without a pool to tell it by).
fn long_count_key(
    db: &DatabaseConnection,
    matches: &SelectStatement,
) -> Option<(LongCountKey, Arc<dyn Any + Send + Sync>)> {
    let (pool_address, pool) = crate::db::pool_identity(db)?;
    let statement = db.get_database_backend().build(matches);
    let values = statement.values.map(|values| values.0).unwrap_or_default();
    Some(((pool_address, statement.sql, values), pool))
}

/// The count of `matches` made within [`LONG_COUNT_TTL`], when it found
/// more than [`COUNTED_WITHOUT_ASKING`]: the next pages of a long list need
/// not count again.
async fn recent_long_count(db: &DatabaseConnection, matches: &SelectStatement) -> Option<u64> {
    let (key, _) = long_count_key(db, matches)?;
    LONG_COUNTS.get(&key).await.map(|(counted, _)| counted)
}

/// Every match of `matches` counted, or reused from a count made within
/// [`LONG_COUNT_TTL`] (concurrent pages wait for one count).
async fn long_count(db: &DatabaseConnection, matches: SelectStatement) -> Result<u64, Error> {
    let Some((key, pool)) = long_count_key(db, &matches) else {
        return count(db, matches, None).await;
    };
    LONG_COUNTS
        .try_get_with(key, async {
            Ok::<_, Error>((count(db, matches, None).await?, pool))
        })
        .await
        .map(|(counted, _)| counted)
        .map_err(|err| {
            Arc::try_unwrap(err).unwrap_or_else(|err| anyhow::anyhow!("counting: {err}").into())
        })
}

/// Name of the count [`keyed_page`] selects beside a page's columns.
pub(crate) const COUNTED_ALIAS: &str = "orgplane_counted_matches";

/// How many rows `query` matches, reading at most `limit` of them.
async fn count(
    db: &DatabaseConnection,
    matches: SelectStatement,
    limit: Option<u64>,
) -> Result<u64, Error> {
    let statement = count_statement(matches, limit);
    let counted = db.query_one(&statement).await?;
    let counted: i64 = match counted {
        Some(row) => row.try_get("", "matches")?,
        None => 0,
    };
    Ok(counted.max(0) as u64)
}

/// `SELECT COUNT(*) AS matches` of the rows `matches` selects, at most
/// `limit` of them read.
fn count_statement(mut matches: SelectStatement, limit: Option<u64>) -> SelectStatement {
    matches
        .clear_selects()
        .expr(Expr::val(1))
        .clear_order_by()
        .reset_offset();
    match limit {
        Some(limit) => matches.limit(limit),
        None => matches.reset_limit(),
    };
    SelectStatement::new()
        .expr(Expr::cust("COUNT(*) AS matches"))
        .from_subquery(matches, "matches")
        .to_owned()
}

/// One page of a list, as every `List*` RPC answers.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The rows.
    pub items: Vec<T>,
    /// Token of the next page; empty on the last.
    pub next_page_token: String,
    /// Matches in all: exact when the request asked for the count, when the
    /// page is the whole list, or when at most [`COUNTED_WITHOUT_ASKING`]
    /// match; otherwise an exact count made at most [`LONG_COUNT_TTL`] ago
    /// (see [`PageRequest::total_size`]).
    pub total_size: u64,
}

/// One page of `query`'s rows and the count of all of them, in the order of
/// `columns` (the sort key, typed by `parts`, unique as a whole), whose
/// values in a row are `key`.
///
/// One statement: the count [`PageRequest::total_size`] needs rides on the
/// page's rows as a scalar subquery (evaluated once), so a page costs one
/// round trip to the database — on PostgreSQL on a connection outside the
/// pool, which pings every connection it takes back ([`postgres_reads`]);
/// on SQLite none: the statement is stepped on this thread
/// ([`sqlite_reads`]) — and none is needed while a long
/// list's count made within [`LONG_COUNT_TTL`] stands. Only an empty page
/// past the first, or the first page of a long list in a while, asks
/// again.
pub async fn keyed_page<E>(
    db: &DatabaseConnection,
    page: &PageRequest,
    query: Select<E>,
    columns: &[E::Column],
    parts: &[KeyPart],
    descending: bool,
    key: impl Fn(&E::Model) -> Vec<String>,
) -> Result<Page<E::Model>, Error>
where
    E: EntityTrait,
    E::Model: Sync,
    E::ActiveModel: sea_orm::TryIntoModel<E::Model>,
{
    let matches = query.clone().into_query();
    let long = page.reusable_long_count(db, &matches).await;
    let counting = long.is_none().then_some(&matches);
    let select = page_select(page, query, columns, parts, descending, counting)?;
    let statement = db.get_database_backend().build(&select);
    let (rows, counted) = match sqlite_reads::query_models::<E>(db, &statement, COUNTED_ALIAS) {
        Some(read) => read?,
        None => {
            let rows = match postgres_reads::query_all(db, &statement).await {
                Some(rows) => rows?,
                None => db.query_all_raw(statement).await?,
            };
            let counted = match rows.first() {
                Some(row) if long.is_none() => Some(row.try_get::<i64>("", COUNTED_ALIAS)?),
                _ => None,
            };
            let rows = rows
                .iter()
                .map(|row| E::Model::from_query_result(row, ""))
                .collect::<Result<Vec<_>, _>>()?;
            (rows, counted)
        }
    };
    let counted = counted.map(|counted| counted.max(0) as u64);
    let (items, next_page_token) = page.finish(rows, key);
    let total_size = page
        .total_size_counted(db, items.len(), &next_page_token, matches, counted, long)
        .await?;
    Ok(Page {
        items,
        next_page_token,
        total_size,
    })
}

/// The statement of [`keyed_page`]: `page` of `query`'s rows and, given
/// `counting` (`query`'s statement), the count of its matches beside each
/// row as [`COUNTED_ALIAS`].
pub(crate) fn page_select<E: EntityTrait>(
    page: &PageRequest,
    query: Select<E>,
    columns: &[E::Column],
    parts: &[KeyPart],
    descending: bool,
    counting: Option<&SelectStatement>,
) -> Result<SelectStatement, Error> {
    let mut select = page.apply(query, columns, parts, descending)?;
    if let Some(matches) = counting {
        let counted = count_statement(matches.clone(), page.count_bound());
        select = select.expr_as(
            Expr::SubQuery(None, Box::new(SubQueryStatement::SelectStatement(counted))),
            COUNTED_ALIAS,
        );
    }
    Ok(select.into_query())
}

/// [`keyed_page`] over one unique text column (a name, or a UUIDv7 for
/// creation order) whose value in a row is `key`.
pub async fn text_keyed_page<E>(
    db: &DatabaseConnection,
    page: &PageRequest,
    query: Select<E>,
    column: E::Column,
    descending: bool,
    key: impl Fn(&E::Model) -> String,
) -> Result<Page<E::Model>, Error>
where
    E: EntityTrait,
    E::Model: Sync,
    E::ActiveModel: sea_orm::TryIntoModel<E::Model>,
{
    keyed_page(
        db,
        page,
        query,
        &[column],
        &[KeyPart::Text],
        descending,
        |row| vec![key(row)],
    )
    .await
}

/// A list request as every list method receives it (AIP-132, AIP-160):
/// read from the request at the API edge and handed whole to the domain,
/// which parses the parts it supports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// Rows asked for (0: the default).
    pub page_size: i32,
    /// `next_page_token` of the previous page; empty for the first.
    pub page_token: String,
    /// `key:value` terms; empty for none.
    pub filter: String,
    /// A field, optionally followed by ` desc`; empty for the default.
    pub order_by: String,
    /// Count every match (AIP-158's `total_size`), which reads them all.
    pub count_all: bool,
}

impl ListQuery {
    /// A list request's four fields.
    pub fn new(page_size: i32, page_token: &str, filter: &str, order_by: &str) -> Self {
        Self {
            page_size,
            page_token: page_token.to_owned(),
            filter: filter.to_owned(),
            order_by: order_by.to_owned(),
            count_all: false,
        }
    }

    /// With every match counted when `count_all` (the request's
    /// `include_total_size`).
    pub fn counting(mut self, count_all: bool) -> Self {
        self.count_all = count_all;
        self
    }

    /// A list without filter or order: pages only.
    pub fn pages(page_size: i32, page_token: &str) -> Self {
        Self::new(page_size, page_token, "", "")
    }

    /// The page asked for. Its token is bound to this filter and order and
    /// to `scope` (what else narrows the list, e.g. its parent), so a token
    /// of another list is refused.
    pub fn page(&self, scope: &str) -> Result<PageRequest, Error> {
        let mut page = PageRequest::parse(
            self.page_size,
            &self.page_token,
            &format!("{scope}|{}|{}", self.filter, self.order_by),
        )?;
        page.count_all = self.count_all;
        Ok(page)
    }

    /// The order, one of `allowed` (the first is the default).
    pub fn order<'a>(&self, allowed: &[&'a str]) -> Result<OrderBy<'a>, Error> {
        OrderBy::parse(&self.order_by, allowed)
    }

    /// The filter's terms, each key one of `allowed`.
    pub fn terms(&self, allowed: &[&str]) -> Result<Vec<(&str, &str)>, Error> {
        parse_filter(&self.filter, allowed)
    }
}

/// A validated list request: how many rows, and after which key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Rows to return.
    pub size: u64,
    /// Sort key of the last row of the previous page, if any.
    pub after: Option<Vec<String>>,
    /// Count every match for `total_size`.
    pub count_all: bool,
    query: String,
}

#[derive(Serialize, Deserialize)]
struct Token {
    /// Sort key of the last row.
    k: Vec<String>,
    /// The query the token belongs to.
    q: String,
}

impl PageRequest {
    /// Validates `page_size` and `page_token` for a query identified by
    /// `query` (e.g. the normalized filter and order).
    pub fn parse(page_size: i32, page_token: &str, query: &str) -> Result<Self, Error> {
        let size = match page_size {
            0 => DEFAULT_PAGE_SIZE,
            n if n < 0 => return Err(Error::invalid("page_size", "must not be negative")),
            n => (n as u64).min(MAX_PAGE_SIZE),
        };
        let after = if page_token.is_empty() {
            None
        } else {
            let token: Token = URL_SAFE_NO_PAD
                .decode(page_token)
                .ok()
                .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                .ok_or_else(|| Error::invalid("page_token", "is not a valid page token"))?;
            if token.q != query {
                return Err(Error::invalid(
                    "page_token",
                    "belongs to a list with another filter or order",
                ));
            }
            Some(token.k)
        };
        Ok(Self {
            size,
            after,
            count_all: false,
            query: query.to_owned(),
        })
    }

    /// `total_size` of a page of `shown` rows followed by
    /// `next_page_token`, whose rows all match `matches` (AIP-158): when the
    /// request asked for it, every match counted now; otherwise what costs
    /// about as little as the page — its own length when it is the whole
    /// list, the matches counted up to [`COUNTED_WITHOUT_ASKING`], and past
    /// that an exact count made at most [`LONG_COUNT_TTL`] ago (then the
    /// next pages count nothing). For lists not read through
    /// [`keyed_page`], which saves a page even the bounded count.
    pub async fn total_size(
        &self,
        db: &DatabaseConnection,
        shown: usize,
        next_page_token: &str,
        matches: SelectStatement,
    ) -> Result<u64, Error> {
        let long = match self.is_whole_list(next_page_token) {
            true => None,
            false => self.reusable_long_count(db, &matches).await,
        };
        self.total_size_counted(db, shown, next_page_token, matches, None, long)
            .await
    }

    /// Whether a page followed by `next_page_token` is the whole list and,
    /// the request not asking for a count, counts itself.
    fn is_whole_list(&self, next_page_token: &str) -> bool {
        !self.count_all && self.after.is_none() && next_page_token.is_empty()
    }

    /// A long list's count made within [`LONG_COUNT_TTL`], which serves
    /// unless the request asked for a count made now.
    async fn reusable_long_count(
        &self,
        db: &DatabaseConnection,
        matches: &SelectStatement,
    ) -> Option<u64> {
        match self.count_all {
            true => None,
            false => recent_long_count(db, matches).await,
        }
    }

    /// At most how many matches the count of [`Self::total_size`] reads
    /// (`None`: all).
    fn count_bound(&self) -> Option<u64> {
        (!self.count_all).then_some(COUNTED_WITHOUT_ASKING + 1)
    }

    /// [`Self::total_size`], given the matches already `counted` up to
    /// [`Self::count_bound`] or a `long` count reused, when the caller has
    /// them.
    async fn total_size_counted(
        &self,
        db: &DatabaseConnection,
        shown: usize,
        next_page_token: &str,
        matches: SelectStatement,
        counted: Option<u64>,
        long: Option<u64>,
    ) -> Result<u64, Error> {
        if self.is_whole_list(next_page_token) {
            return Ok(shown as u64);
        }
        if let Some(long) = long {
            return Ok(long);
        }
        let counted = match counted {
            Some(counted) => counted,
            None => count(db, matches.clone(), self.count_bound()).await?,
        };
        if self.count_all || counted <= COUNTED_WITHOUT_ASKING {
            return Ok(counted);
        }
        long_count(db, matches).await
    }

    /// Rows to fetch: one more than the page, to know whether another follows.
    pub fn fetch_limit(&self) -> u64 {
        self.size + 1
    }

    /// Applies the keyset to `query`: rows after the token's key over
    /// `columns` (typed by `parts`), ordered by them, one more than the page.
    pub fn apply<Q, C>(
        &self,
        mut query: Q,
        columns: &[C],
        parts: &[KeyPart],
        descending: bool,
    ) -> Result<Q, Error>
    where
        Q: QueryFilter + QueryOrder + QuerySelect,
        C: ColumnTrait,
    {
        if let Some(key) = &self.after {
            query = query.filter(after(columns, key_values(key, parts)?, descending));
        }
        for column in columns {
            query = if descending {
                query.order_by_desc(*column)
            } else {
                query.order_by_asc(*column)
            };
        }
        Ok(query.limit(self.fetch_limit()))
    }

    /// Cuts the fetched rows to the page and makes the next page's token from
    /// the last row's key (empty when this is the last page).
    pub fn finish<T>(&self, mut rows: Vec<T>, key: impl Fn(&T) -> Vec<String>) -> (Vec<T>, String) {
        if rows.len() as u64 <= self.size {
            return (rows, String::new());
        }
        rows.truncate(self.size as usize);
        let token = rows.last().map(|last| {
            let json = serde_json::to_vec(&Token {
                k: key(last),
                q: self.query.clone(),
            })
            .expect("a page token serializes");
            URL_SAFE_NO_PAD.encode(json)
        });
        (rows, token.unwrap_or_default())
    }
}

/// The keyset condition "row comes after `key`" for a sort over `columns`
/// (the last one unique), ascending or descending:
/// `(a, b) > (x, y)` written as `a > x OR (a = x AND b > y)`, which every
/// backend can serve from an index on `(a, b)`.
pub fn after<C: ColumnTrait>(columns: &[C], key: Vec<Value>, descending: bool) -> Condition {
    let mut any = Condition::any();
    for i in 0..columns.len().min(key.len()) {
        let mut all = Condition::all();
        for (column, value) in columns.iter().zip(&key).take(i) {
            all = all.add(column.eq(value.clone()));
        }
        let strict = if descending {
            columns[i].lt(key[i].clone())
        } else {
            columns[i].gt(key[i].clone())
        };
        any = any.add(all.add(strict));
    }
    any
}

/// The type of one part of a sort key, to turn a page token back into
/// typed values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPart {
    /// A text column.
    Text,
    /// An integer column (times are microseconds).
    Int,
}

/// The typed values of a page token's key, or `INVALID_ARGUMENT`.
pub fn key_values(key: &[String], parts: &[KeyPart]) -> Result<Vec<Value>, Error> {
    let bad = || Error::invalid("page_token", "is not a valid page token");
    if key.len() != parts.len() {
        return Err(bad());
    }
    key.iter()
        .zip(parts)
        .map(|(value, part)| match part {
            KeyPart::Text => Ok(Value::from(value.clone())),
            KeyPart::Int => value.parse::<i64>().map(Value::from).map_err(|_| bad()),
        })
        .collect()
}

/// A parsed `order_by`: one of the allowed fields, optionally ` desc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderBy<'a> {
    /// The field.
    pub field: &'a str,
    /// Descending.
    pub descending: bool,
}

impl<'a> OrderBy<'a> {
    /// Parses `order_by` against `allowed` (the first is the default).
    pub fn parse(order_by: &str, allowed: &[&'a str]) -> Result<Self, Error> {
        let mut words = order_by.split_whitespace();
        let field = match words.next() {
            None => allowed[0],
            Some(word) => allowed
                .iter()
                .copied()
                .find(|a| *a == word)
                .ok_or_else(|| {
                    Error::invalid(
                        "order_by",
                        format!("must be one of: {}", allowed.join(", ")),
                    )
                })?,
        };
        let descending = match words.next() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(_) => return Err(Error::invalid("order_by", "direction must be asc or desc")),
        };
        if words.next().is_some() {
            return Err(Error::invalid("order_by", "orders by one field"));
        }
        Ok(Self { field, descending })
    }
}

/// A parsed `filter` of `key:value` terms separated by spaces, each key one
/// of `allowed` and used at most once.
pub fn parse_filter<'a>(
    filter: &'a str,
    allowed: &[&str],
) -> Result<Vec<(&'a str, &'a str)>, Error> {
    let mut terms: Vec<(&str, &str)> = Vec::new();
    for term in filter.split_whitespace() {
        let Some((key, value)) = term.split_once(':') else {
            return Err(Error::invalid(
                "filter",
                format!("{term:?} is not key:value"),
            ));
        };
        if !allowed.contains(&key) {
            return Err(Error::invalid(
                "filter",
                format!("unknown key {key:?}; known: {}", allowed.join(", ")),
            ));
        }
        if value.is_empty() || terms.iter().any(|(k, _)| *k == key) {
            return Err(Error::invalid(
                "filter",
                format!("{key:?} needs one non-empty value"),
            ));
        }
        terms.push((key, value));
    }
    Ok(terms)
}

/// Escapes `%`, `_` and `\` for a `LIKE 'prefix%'` match.
pub fn like_prefix(prefix: &str) -> String {
    let mut escaped = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped.push('%');
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_through_with_keys() {
        let rows: Vec<u32> = (1..=5).collect();
        let page = PageRequest::parse(2, "", "q").unwrap();
        let (first, token) = page.finish(rows[..3].to_vec(), |r| vec![r.to_string()]);
        assert_eq!(first, [1, 2]);
        let next = PageRequest::parse(2, &token, "q").unwrap();
        assert_eq!(next.after, Some(vec!["2".to_string()]));
        let (last, token) = next.finish(vec![3], |r| vec![r.to_string()]);
        assert_eq!(last, [3]);
        assert!(token.is_empty());
    }

    #[test]
    fn orders_and_filters() {
        let o = OrderBy::parse("create_time desc", &["name", "create_time"]).unwrap();
        assert_eq!((o.field, o.descending), ("create_time", true));
        assert_eq!(OrderBy::parse("", &["name"]).unwrap().field, "name");
        assert!(OrderBy::parse("size", &["name"]).is_err());
        assert!(OrderBy::parse("name sideways", &["name"]).is_err());
        assert_eq!(
            parse_filter("role:admin name:ad", &["role", "name"]).unwrap(),
            [("role", "admin"), ("name", "ad")]
        );
        assert!(parse_filter("role", &["role"]).is_err());
        assert!(parse_filter("size:1", &["role"]).is_err());
        assert!(parse_filter("role:a role:b", &["role"]).is_err());
        assert_eq!(like_prefix("a_b%"), "a\\_b\\%%");
    }

    #[test]
    fn refuses_bad_tokens_and_sizes() {
        assert!(PageRequest::parse(-1, "", "q").is_err());
        assert!(PageRequest::parse(10, "garbage!", "q").is_err());
        let page = PageRequest::parse(1, "", "a").unwrap();
        let (_, token) = page.finish(vec![1, 2], |r: &i32| vec![r.to_string()]);
        assert!(
            PageRequest::parse(1, &token, "b").is_err(),
            "token of another query"
        );
        assert_eq!(
            PageRequest::parse(5000, "", "q").unwrap().size,
            MAX_PAGE_SIZE
        );
        assert_eq!(
            PageRequest::parse(0, "", "q").unwrap().size,
            DEFAULT_PAGE_SIZE
        );
    }

    /// A table of `n` numbers on SQLite.
    async fn numbers(n: i64) -> (tempfile::TempDir, sea_orm::DatabaseConnection) {
        let (dir, db) = crate::db::scratch_numbers().await;
        db.execute_unprepared(&format!(
            "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < {n}) \
             INSERT INTO t SELECT n FROM c"
        ))
        .await
        .unwrap();
        (dir, db)
    }

    fn rows_over(min: i64) -> sea_orm::sea_query::SelectStatement {
        use sea_orm::sea_query::{Alias, ExprTrait, Query};
        Query::select()
            .column(Alias::new("n"))
            .from(Alias::new("t"))
            .and_where(Expr::col(Alias::new("n")).gt(min))
            .order_by(Alias::new("n"), sea_orm::Order::Asc)
            .limit(5)
            .to_owned()
    }

    #[tokio::test]
    async fn counts_exactly_when_asked_and_long_lists_once_a_second() {
        let (_dir, db) = numbers(2500).await;
        let first = ListQuery::pages(2, "").page("").unwrap();
        let total = |page: PageRequest, shown, next: &'static str, min| {
            let db = db.clone();
            async move {
                page.total_size(&db, shown, next, rows_over(min))
                    .await
                    .unwrap()
            }
        };
        assert_eq!(
            total(first.clone(), 2, "", 0).await,
            2,
            "the whole list: itself"
        );
        assert_eq!(
            total(first.clone(), 2, "next", 2000).await,
            500,
            "few: exact"
        );
        assert_eq!(
            total(first.clone(), 2, "next", 0).await,
            2500,
            "many: exact"
        );
        assert_eq!(
            total(first.clone(), 2, "next", 100).await,
            2400,
            "another long list, told by its bound values alone: its own count"
        );
        db.execute_unprepared("DELETE FROM t WHERE n > 2400")
            .await
            .unwrap();
        assert_eq!(
            total(first.clone(), 2, "next", 0).await,
            2500,
            "many: counted once a second at most"
        );
        assert_eq!(
            total(first.clone(), 2, "next", 2000).await,
            400,
            "few: at once"
        );
        tokio::time::sleep(LONG_COUNT_TTL + Duration::from_millis(100)).await;
        assert_eq!(total(first.clone(), 2, "next", 0).await, 2400, "then again");
        let (_, token) = first.finish(vec![1, 2, 3], |r: &i32| vec![r.to_string()]);
        let later = ListQuery::pages(2, &token).page("").unwrap();
        assert_eq!(total(later, 1, "", 2397).await, 3, "a last page is counted");
        let asked = ListQuery::pages(2, &token).counting(true).page("").unwrap();
        db.execute_unprepared("DELETE FROM t WHERE n > 2300")
            .await
            .unwrap();
        assert_eq!(
            total(asked.clone(), 1, "", 0).await,
            2300,
            "asked: exact, now"
        );
        assert_eq!(total(asked, 1, "next", 100).await, 2200);
    }
}
