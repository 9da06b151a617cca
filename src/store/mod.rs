//! SQL persistence for the ticket API: an embedded SQLite file by default, its migrations applied at start.
//!
//! Writes go through [`Store::write`], which serialises write transactions inside the process: SQLite allows
//! one writer at a time, and a transaction that reads before it writes could otherwise fail with
//! `SQLITE_BUSY` instead of waiting. Reads run concurrently on the pool (WAL mode). The SQL itself is plain
//! enough for PostgreSQL (`$N` parameters, `RETURNING`, `ON CONFLICT`); see `migrations/` for the DDL.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};
use time::{OffsetDateTime, UtcOffset};

/// The migrations, embedded in the binary.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("src/store/migrations");

/// How long a statement waits for SQLite's lock before it fails (another process holding the file).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or a statement failed.
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    /// A migration failed at start.
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// The database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pub pool: SqlitePool,
    writer: Arc<tokio::sync::Mutex<()>>,
}

/// A write transaction holding the store's write lock; dropped without [`WriteTx::commit`] it rolls back.
pub struct WriteTx {
    pub tx: Transaction<'static, Sqlite>,
    _lock: tokio::sync::OwnedMutexGuard<()>,
}

impl WriteTx {
    /// The connection to run statements on.
    pub fn conn(&mut self) -> &mut sqlx::SqliteConnection {
        &mut self.tx
    }

    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }
}

impl std::ops::Deref for WriteTx {
    type Target = Transaction<'static, Sqlite>;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}
impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

impl Store {
    /// Opens (creating if missing) the SQLite file and applies the migrations.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        Store::connect(opts).await
    }

    /// A private in-memory database (unit tests).
    pub async fn in_memory() -> Result<Store, StoreError> {
        let opts = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        Store::connect_with(opts, 1).await
    }

    async fn connect(opts: SqliteConnectOptions) -> Result<Store, StoreError> {
        Store::connect_with(opts, 8).await
    }

    async fn connect_with(opts: SqliteConnectOptions, max: u32) -> Result<Store, StoreError> {
        let pool = SqlitePoolOptions::new()
            .max_connections(max)
            .connect_with(opts)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Store {
            pool,
            writer: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// Begins a write transaction (waits for the write lock).
    pub async fn write(&self) -> Result<WriteTx, StoreError> {
        let lock = self.writer.clone().lock_owned().await;
        let tx = self.pool.begin().await?;
        Ok(WriteTx { tx, _lock: lock })
    }
}

/// Parses a UTC offset: `+08:00`, `-05:30`, `+0800`, `Z`, `UTC`.
pub fn parse_utc_offset(s: &str) -> Option<UtcOffset> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("z") || t.eq_ignore_ascii_case("utc") {
        return Some(UtcOffset::UTC);
    }
    let (sign, rest) = match t.as_bytes().first()? {
        b'+' => (1i8, &t[1..]),
        b'-' => (-1i8, &t[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) || rest.len() > 5 {
        return None;
    }
    let h: i8 = digits[..2].parse().ok()?;
    let m: i8 = digits[2..].parse().ok()?;
    if h > 14 || m > 59 {
        return None;
    }
    UtcOffset::from_hms(sign * h, sign * m, 0).ok()
}

/// `s` with `\`, `%` and `_` escaped for a `LIKE` pattern used with `ESCAPE '\'`, so user input matches
/// literally.
pub fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// RFC 3339 UTC with milliseconds, the form every time column holds (sorts as text).
pub fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// The business day (`yyyymmdd`) at wall time `t` in the zone `offset`.
pub fn business_day(t: SystemTime, offset: UtcOffset) -> String {
    let dt = OffsetDateTime::from(t).to_offset(offset);
    format!("{:04}{:02}{:02}", dt.year(), u8::from(dt.month()), dt.day())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_parse_and_bad_ones_do_not() {
        assert_eq!(
            parse_utc_offset("+08:00"),
            UtcOffset::from_hms(8, 0, 0).ok()
        );
        assert_eq!(
            parse_utc_offset("-05:30"),
            UtcOffset::from_hms(-5, -30, 0).ok()
        );
        assert_eq!(parse_utc_offset("+0800"), UtcOffset::from_hms(8, 0, 0).ok());
        assert_eq!(parse_utc_offset("Z"), Some(UtcOffset::UTC));
        for bad in [
            "",
            "8",
            "+8",
            "+08:0",
            "+25:00",
            "08:00",
            "+08:00:00",
            "+ab:cd",
        ] {
            assert_eq!(parse_utc_offset(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_business_day_follows_the_zone() {
        // 2023-10-26T16:00:00Z is midnight of the 27th at +08:00.
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_698_336_000);
        let cst = parse_utc_offset("+08:00").unwrap();
        assert_eq!(business_day(t, cst), "20231027");
        assert_eq!(business_day(t - Duration::from_millis(1), cst), "20231026");
        assert_eq!(business_day(t, UtcOffset::UTC), "20231026");
    }

    #[tokio::test]
    async fn migrations_apply_to_a_fresh_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        let n: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM approval_rules")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(n.0, 4);
        // Opening again applies nothing twice.
        drop(store);
        Store::open(&dir.path().join("t.db")).await.unwrap();
    }
}
