//! Reads of a SQLite database stepped on the caller's own thread.
//!
//! Why: sqlx runs each SQLite connection on a thread of its own. A
//! statement is a message to that thread, every row a message back (each
//! value copied on the way), and every connection returning to the pool a
//! ping there and back — most of a list page's cost in `orgplane dev`
//! (`BENCHMARKS.md`), for a read of an in-process database that takes tens
//! of microseconds. Here a page is read on the task's own thread, from a
//! connection of the same file that only reads (WAL lets readers run beside
//! the writer, and each sees every transaction committed before it
//! starts), its statements kept prepared.
//!
//! A read this module cannot make exactly as sqlx would — a bound value of
//! a type it does not convert, a column whose type it does not know, a
//! database busy recovering — answers `None`, and the caller reads through
//! sqlx as before. It never waits: a busy database is such a case.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ColumnType, DatabaseConnection, DbBackend, DbErr, EntityTrait,
    RuntimeErr, Statement, TryIntoModel, Value,
};

use crate::db::{PerPool, SQLITE_CACHE_KIB, SQLITE_STATEMENTS};

/// Reading connections kept open per database, at most: a read holds one
/// only while it steps its statement, so as many as the threads reading at
/// once (the runtime's workers) are enough.
pub const IDLE_READERS: usize = 4;

/// How a result column is decoded: the variant of [`Value`] its model field
/// takes (sea-orm's conversions of proxied rows are exact: an `i32` field
/// needs a [`Value::Int`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// `bool`, stored as 0 or 1.
    Bool,
    /// `i32`.
    Int,
    /// `i64`.
    BigInt,
    /// `f64`.
    Double,
    /// `String`.
    Text,
}

impl ColumnKind {
    /// The kind of a column of type `column_type`, `None` for one this
    /// module does not decode.
    pub fn of(column_type: &ColumnType) -> Option<Self> {
        Some(match column_type {
            ColumnType::Boolean => ColumnKind::Bool,
            ColumnType::Integer | ColumnType::SmallInteger | ColumnType::TinyInteger => {
                ColumnKind::Int
            }
            ColumnType::BigInteger => ColumnKind::BigInt,
            ColumnType::Double | ColumnType::Float => ColumnKind::Double,
            ColumnType::String(_) | ColumnType::Text | ColumnType::Char(_) => ColumnKind::Text,
            _ => return None,
        })
    }

    /// `value` as this kind, `None` for SQLite's NULL.
    fn decode(self, value: rusqlite::types::ValueRef<'_>) -> Result<Value, DbErr> {
        use rusqlite::types::ValueRef;
        let mismatch = || {
            DbErr::Type(format!(
                "a {} column holds a {}",
                self.name(),
                value.data_type()
            ))
        };
        Ok(match (self, value) {
            (ColumnKind::Bool, ValueRef::Null) => Value::Bool(None),
            (ColumnKind::Int, ValueRef::Null) => Value::Int(None),
            (ColumnKind::BigInt, ValueRef::Null) => Value::BigInt(None),
            (ColumnKind::Double, ValueRef::Null) => Value::Double(None),
            (ColumnKind::Text, ValueRef::Null) => Value::String(None),
            (ColumnKind::Bool, ValueRef::Integer(i)) => Value::Bool(Some(i != 0)),
            (ColumnKind::Int, ValueRef::Integer(i)) => {
                Value::Int(Some(i32::try_from(i).map_err(|_| mismatch())?))
            }
            (ColumnKind::BigInt, ValueRef::Integer(i)) => Value::BigInt(Some(i)),
            (ColumnKind::Double, ValueRef::Real(f)) => Value::Double(Some(f)),
            (ColumnKind::Double, ValueRef::Integer(i)) => Value::Double(Some(i as f64)),
            (ColumnKind::Text, ValueRef::Text(text)) => Value::String(Some(
                std::str::from_utf8(text)
                    .map_err(|_| mismatch())?
                    .to_owned(),
            )),
            _ => return Err(mismatch()),
        })
    }

    fn name(self) -> &'static str {
        match self {
            ColumnKind::Bool => "boolean",
            ColumnKind::Int => "32-bit integer",
            ColumnKind::BigInt => "64-bit integer",
            ColumnKind::Double => "floating point",
            ColumnKind::Text => "text",
        }
    }
}

/// The models read, and the extra column's value in the first row.
pub type Read<E> = (Vec<<E as EntityTrait>::Model>, Option<i64>);

/// The models `statement` selects from `db` (`E`'s columns, and maybe the
/// 64-bit integer `extra`, whose value in the first row comes beside them),
/// read on this thread; `None` when this module cannot read them (not
/// SQLite, a value or column it does not convert, a busy database: the
/// module's doc), and the caller reads through sqlx.
pub fn query_models<E>(
    db: &DatabaseConnection,
    statement: &Statement,
    extra: &str,
) -> Option<Result<Read<E>, DbErr>>
where
    E: EntityTrait,
    E::ActiveModel: TryIntoModel<E::Model>,
{
    if db.get_database_backend() != DbBackend::Sqlite {
        return None;
    }
    let parameters = statement
        .values
        .as_ref()
        .map(|values| values.0.iter().map(parameter).collect::<Option<Vec<_>>>())
        .unwrap_or_else(|| Some(Vec::new()))?;
    let readers = Readers::of(db);
    let connection = match readers.take() {
        Ok(connection) => connection,
        Err(err) => return Some(Err(err)),
    };
    let read = read::<E>(&connection, &statement.sql, &parameters, extra);
    // A failed statement leaves the connection as good as before (its
    // statement is reset when dropped), as sqlx keeps its own.
    readers.give_back(connection);
    match read {
        Ok(read) => Some(Ok(read)),
        // Busy, or a column this module does not know: sqlx reads it.
        Err(Unreadable::Here) => None,
        Err(Unreadable::Failed(err)) => Some(Err(err)),
    }
}

/// Why [`read`] gave no rows.
enum Unreadable {
    /// Nothing wrong with the statement; sqlx may read it.
    Here,
    /// The statement failed.
    Failed(DbErr),
}

/// A busy or locked database is left to sqlx (which waits for it); any
/// other error is the statement's.
fn unreadable(err: rusqlite::Error) -> Unreadable {
    match err.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            Unreadable::Here
        }
        _ => Unreadable::Failed(DbErr::Query(RuntimeErr::Internal(format!(
            "reading SQLite: {err}"
        )))),
    }
}

/// Where a result column goes.
enum Destination<C> {
    /// To the model's column.
    Column(C, ColumnKind),
    /// Beside the models (the first row's).
    Extra,
}

fn read<E>(
    connection: &rusqlite::Connection,
    sql: &str,
    parameters: &[rusqlite::types::Value],
    extra: &str,
) -> Result<Read<E>, Unreadable>
where
    E: EntityTrait,
    E::ActiveModel: TryIntoModel<E::Model>,
{
    let mut prepared = connection.prepare_cached(sql).map_err(unreadable)?;
    let destinations = prepared
        .column_names()
        .into_iter()
        .map(|name| {
            if name == extra {
                return Some(Destination::Extra);
            }
            let column = <E::Column as std::str::FromStr>::from_str(name).ok()?;
            let kind = ColumnKind::of(column.def().get_column_type())?;
            Some(Destination::Column(column, kind))
        })
        .collect::<Option<Vec<_>>>()
        .ok_or(Unreadable::Here)?;
    let mut rows = prepared
        .query(rusqlite::params_from_iter(parameters))
        .map_err(unreadable)?;
    let (mut models, mut extra) = (Vec::new(), None);
    while let Some(row) = rows.next().map_err(unreadable)? {
        let mut model = <E::ActiveModel as ActiveModelTrait>::default();
        for (index, destination) in destinations.iter().enumerate() {
            let value = row.get_ref(index).map_err(unreadable)?;
            match destination {
                Destination::Column(column, kind) => {
                    let value = kind.decode(value).map_err(Unreadable::Failed)?;
                    model.try_set(*column, value).map_err(Unreadable::Failed)?;
                }
                Destination::Extra if models.is_empty() => {
                    extra = Some(value.as_i64().map_err(|err| unreadable(err.into()))?);
                }
                Destination::Extra => {}
            }
        }
        models.push(model.try_into_model().map_err(Unreadable::Failed)?);
    }
    Ok((models, extra))
}

/// `value` bound as sqlx binds it for SQLite (booleans as 0 and 1); `None`
/// for a type this module does not bind.
fn parameter(value: &Value) -> Option<rusqlite::types::Value> {
    use rusqlite::types::Value as Sqlite;
    fn or_null<T>(value: &Option<T>, to: impl FnOnce(&T) -> Sqlite) -> Sqlite {
        value.as_ref().map_or(Sqlite::Null, to)
    }
    Some(match value {
        Value::Bool(v) => or_null(v, |v| Sqlite::Integer(i64::from(*v))),
        Value::TinyInt(v) => or_null(v, |v| Sqlite::Integer(i64::from(*v))),
        Value::SmallInt(v) => or_null(v, |v| Sqlite::Integer(i64::from(*v))),
        Value::Int(v) => or_null(v, |v| Sqlite::Integer(i64::from(*v))),
        Value::BigInt(v) => or_null(v, |v| Sqlite::Integer(*v)),
        Value::TinyUnsigned(v) => or_null(v, |v| Sqlite::Integer(i64::from(*v))),
        Value::SmallUnsigned(v) => or_null(v, |v| Sqlite::Integer(i64::from(*v))),
        Value::Unsigned(v) => or_null(v, |v| Sqlite::Integer(i64::from(*v))),
        // How sea-query binds a `LIMIT`.
        Value::BigUnsigned(Some(v)) => Sqlite::Integer(i64::try_from(*v).ok()?),
        Value::BigUnsigned(None) => Sqlite::Null,
        Value::Float(v) => or_null(v, |v| Sqlite::Real(f64::from(*v))),
        Value::Double(v) => or_null(v, |v| Sqlite::Real(*v)),
        Value::String(v) => or_null(v, |v| Sqlite::Text(v.clone())),
        Value::Char(v) => or_null(v, |v| Sqlite::Text(v.to_string())),
        Value::Bytes(v) => or_null(v, |v| Sqlite::Blob(v.clone())),
        _ => return None,
    })
}

/// The reading connections of one SQLite file.
struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<rusqlite::Connection>>,
}

/// Readers by pool: each SQLite pool's file has its own.
static READERS: PerPool<Readers> = PerPool::new();

impl Readers {
    /// The readers of `db`'s file (a SQLite pool).
    fn of(db: &DatabaseConnection) -> Arc<Readers> {
        READERS
            .of(db, || Readers {
                path: db
                    .get_sqlite_connection_pool()
                    .connect_options()
                    .get_filename()
                    .to_owned(),
                idle: Mutex::new(Vec::new()),
            })
            .expect("a SQLite pool")
    }

    /// An idle connection, or a new one.
    fn take(&self) -> Result<rusqlite::Connection, DbErr> {
        if let Some(connection) = self.idle.lock().expect("the readers' lock").pop() {
            return Ok(connection);
        }
        open(&self.path).map_err(|err| {
            DbErr::Conn(RuntimeErr::Internal(format!(
                "opening {} to read: {err}",
                self.path.display()
            )))
        })
    }

    /// Keeps `connection` for the next read, unless [`IDLE_READERS`] are.
    fn give_back(&self, connection: rusqlite::Connection) {
        let mut idle = self.idle.lock().expect("the readers' lock");
        if idle.len() < IDLE_READERS {
            idle.push(connection);
        }
    }
}

/// A connection to `path` that only reads, never waits for a lock, and
/// keeps as many statements and pages as the pool's connections do.
fn open(path: &Path) -> rusqlite::Result<rusqlite::Connection> {
    use rusqlite::OpenFlags;
    let connection = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.busy_timeout(std::time::Duration::ZERO)?;
    connection.pragma_update(None, "query_only", true)?;
    connection.pragma_update(None, "cache_size", format!("-{SQLITE_CACHE_KIB}"))?;
    connection.set_prepared_statement_cache_capacity(SQLITE_STATEMENTS);
    Ok(connection)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{
        ConnectionTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Schema,
        sea_query::ExprTrait,
    };

    /// A row with a column of every kind.
    mod thing {
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
        #[sea_orm(table_name = "thing")]
        pub struct Model {
            #[sea_orm(primary_key, auto_increment = false)]
            pub name: String,
            pub note: Option<String>,
            pub small: i32,
            pub big: i64,
            pub maybe: Option<i64>,
            pub flag: bool,
            pub ratio: f64,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }

    fn thing(name: &str, n: i64) -> thing::Model {
        thing::Model {
            name: name.to_owned(),
            note: (n % 2 == 0).then(|| format!("note {n}")),
            small: -(n as i32),
            big: n << 40,
            maybe: (n % 3 == 0).then_some(n),
            flag: n % 2 == 1,
            ratio: n as f64 / 4.0,
        }
    }

    async fn things(n: i64) -> (tempfile::TempDir, DatabaseConnection) {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::connect(&crate::db::DbTarget::Sqlite(dir.path().join("t.db")))
            .await
            .unwrap();
        let schema = Schema::new(DbBackend::Sqlite);
        db.execute(&schema.create_table_from_entity(thing::Entity))
            .await
            .unwrap();
        for i in 0..n {
            insert(&db, thing(&format!("t{i:03}"), i)).await;
        }
        (dir, db)
    }

    async fn insert(db: &DatabaseConnection, model: thing::Model) {
        use sea_orm::IntoActiveModel;
        thing::Entity::insert(model.into_active_model())
            .exec(db)
            .await
            .unwrap();
    }

    fn statement(query: sea_orm::Select<thing::Entity>) -> Statement {
        DbBackend::Sqlite.build(&query.into_query())
    }

    #[tokio::test]
    async fn reads_what_sqlx_reads() {
        let (_dir, db) = things(7).await;
        let query = thing::Entity::find()
            .filter(thing::Column::Big.gte(2_i64 << 40))
            .filter(thing::Column::Flag.eq(true).or(thing::Column::Small.lt(-4)))
            .order_by_desc(thing::Column::Name)
            .limit(3);
        let (here, extra) = query_models::<thing::Entity>(&db, &statement(query.clone()), "x")
            .expect("read here")
            .unwrap();
        assert_eq!(here, query.all(&db).await.unwrap());
        assert_eq!(
            here.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            ["t006", "t005", "t003"]
        );
        assert_eq!(here[0], thing("t006", 6), "every kind, NULL or not");
        assert_eq!(extra, None, "nothing beside the columns");
    }

    #[tokio::test]
    async fn reads_every_page_of_a_list() {
        use crate::page::{COUNTED_ALIAS, KeyPart, ListQuery, page_select};
        let (_dir, db) = things(5).await;
        let read = |token: &str, counting: bool| {
            let page = ListQuery::pages(2, token).page("").unwrap();
            let query = thing::Entity::find().filter(thing::Column::Big.gte(1_i64 << 40));
            let matches = query.clone().into_query();
            let select = page_select(
                &page,
                query,
                &[thing::Column::Name],
                &[KeyPart::Text],
                true,
                counting.then_some(&matches),
            )
            .unwrap();
            let statement = DbBackend::Sqlite.build(&select);
            let (models, counted) = query_models::<thing::Entity>(&db, &statement, COUNTED_ALIAS)
                .expect("every page is read here")
                .unwrap();
            let (models, token) = page.finish(models, |t| vec![t.name.clone()]);
            let names: Vec<_> = models.into_iter().map(|t| t.name).collect();
            (names, token, counted)
        };
        let (names, token, counted) = read("", true);
        assert_eq!(
            (names, counted),
            (vec!["t004".into(), "t003".into()], Some(4))
        );
        let (names, token, counted) = read(&token, false);
        assert_eq!((names, counted), (vec!["t002".into(), "t001".into()], None));
        assert!(token.is_empty(), "the last page");
    }

    #[tokio::test]
    async fn reads_the_first_rows_extra_column_and_committed_writes() {
        let (_dir, db) = things(3).await;
        let with_count = |min: i64| {
            let mut select = thing::Entity::find()
                .filter(thing::Column::Big.gte(min << 40))
                .order_by_asc(thing::Column::Name)
                .into_query();
            select.expr_as(
                sea_orm::sea_query::Expr::cust("(SELECT COUNT(*) FROM thing)"),
                "counted",
            );
            DbBackend::Sqlite.build(&select)
        };
        let read = |statement: Statement| {
            query_models::<thing::Entity>(&db, &statement, "counted")
                .expect("read here")
                .unwrap()
        };
        let (models, counted) = read(with_count(1));
        assert_eq!((models.len(), counted), (2, Some(3)));
        // A connection kept from the last read sees what was committed since.
        insert(&db, thing("t100", 100)).await;
        let (models, counted) = read(with_count(1));
        assert_eq!((models.len(), counted), (3, Some(4)));
        assert_eq!(models[2], thing("t100", 100));
        let (models, counted) = read(with_count(1000));
        assert_eq!((models.len(), counted), (0, None), "no row, no count");
    }

    #[tokio::test]
    async fn leaves_to_sqlx_what_it_cannot_read() {
        let (_dir, db) = things(2).await;
        let mut unknown = thing::Entity::find().into_query();
        unknown.expr_as(sea_orm::sea_query::Expr::val(1), "other");
        let unknown = DbBackend::Sqlite.build(&unknown);
        assert!(
            query_models::<thing::Entity>(&db, &unknown, "x").is_none(),
            "a column of no model field"
        );
        let mut unbound = statement(thing::Entity::find());
        unbound.values = Some(sea_orm::Values(vec![Value::Json(None)]));
        assert!(
            query_models::<thing::Entity>(&db, &unbound, "x").is_none(),
            "a value it does not bind"
        );
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        assert!(
            matches!(unreadable(busy), Unreadable::Here),
            "a busy database"
        );
        let broken = DbBackend::Sqlite.build(&thing::Entity::find().into_query());
        let broken = Statement {
            sql: broken.sql.replace("\"thing\"", "\"nothing\""),
            ..broken
        };
        let err = query_models::<thing::Entity>(&db, &broken, "x")
            .expect("a failure is an answer")
            .unwrap_err();
        assert!(err.to_string().contains("no such table"), "{err}");
        let (models, _) =
            query_models::<thing::Entity>(&db, &statement(thing::Entity::find()), "x")
                .expect("read here")
                .expect("the connection kept after a failure still reads");
        assert_eq!(models.len(), 2);
    }

    #[test]
    fn decodes_exactly_or_refuses() {
        use rusqlite::types::ValueRef;
        assert_eq!(
            ColumnKind::Int.decode(ValueRef::Integer(-7)).unwrap(),
            Value::Int(Some(-7))
        );
        assert!(ColumnKind::Int.decode(ValueRef::Integer(1 << 40)).is_err());
        assert!(ColumnKind::BigInt.decode(ValueRef::Text(b"7")).is_err());
        assert!(ColumnKind::Text.decode(ValueRef::Text(b"\xff")).is_err());
        assert_eq!(
            ColumnKind::Bool.decode(ValueRef::Null).unwrap(),
            Value::Bool(None)
        );
        assert_eq!(ColumnKind::of(&ColumnType::Blob), None);
        assert_eq!(
            parameter(&Value::Bool(Some(true))),
            Some(rusqlite::types::Value::Integer(1))
        );
        assert_eq!(
            parameter(&Value::BigUnsigned(Some(20))),
            Some(rusqlite::types::Value::Integer(20))
        );
        assert_eq!(parameter(&Value::BigUnsigned(Some(u64::MAX))), None);
        assert_eq!(
            parameter(&Value::String(None)),
            Some(rusqlite::types::Value::Null)
        );
    }

    #[tokio::test]
    async fn closes_the_readers_of_a_pool_gone() {
        let (_dir, db) = things(1).await;
        let query = statement(thing::Entity::find());
        query_models::<thing::Entity>(&db, &query, "x")
            .unwrap()
            .unwrap();
        let readers = Arc::downgrade(&Readers::of(&db));
        db.close().await.unwrap();
        let (_other_dir, other) = things(1).await;
        query_models::<thing::Entity>(&other, &query, "x")
            .unwrap()
            .unwrap();
        // A new pool sweeps the dropped one's state (`PerPool`).
        assert_eq!(readers.strong_count(), 0, "its connections closed");
    }
}
