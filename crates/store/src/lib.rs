//! The results database: one SQLite file (WAL) per results folder, written only by the
//! runner. Schema and migrations in [`schema`] (documented in `docs/schema.md`); typed
//! queries in [`trials`] (planning, leases, outcomes), [`ingest`] (metrics, predictions,
//! environment) and [`queries`] (status, export, report).

mod ingest;
mod queries;
mod schema;
mod trials;

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

pub use ingest::{EnvironmentRow, EvalRow, MetricRow, PredictionRow};
pub use queries::{AttemptRow, StudyRow, StudyTrialRow, FINAL_METRIC_PREFIX};
pub use schema::SCHEMA_VERSION;
pub use trials::{Claimed, Finish, PlannedRow, Reclaimed};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: cannot open the results database: {source}")]
    Open {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{path}: no results database here (run `sweep run` first, or pass --db)")]
    Missing { path: String },
    #[error(
        "{path}: the database has schema version {found}, newer than this sweep binary \
         understands ({supported}); use a newer sweep or another --db"
    )]
    TooNew {
        path: String,
        found: u32,
        supported: u32,
    },
    #[error("{path}: migration to schema version {version} failed: {source}")]
    Migration {
        path: String,
        version: u32,
        #[source]
        source: rusqlite::Error,
    },
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("database: stored JSON is invalid: {0}")]
    Json(#[from] serde_json::Error),
}

impl StoreError {
    /// Whether the failure may go away on its own: the database locked by another process
    /// past the busy wait, a full disk, an I/O error. The runner retries these.
    pub fn is_transient(&self) -> bool {
        use rusqlite::ErrorCode;
        match self {
            StoreError::Sql(rusqlite::Error::SqliteFailure(f, _)) => matches!(
                f.code,
                ErrorCode::DatabaseBusy
                    | ErrorCode::DatabaseLocked
                    | ErrorCode::DiskFull
                    | ErrorCode::SystemIoFailure
            ),
            _ => false,
        }
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// An open results database.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: String,
}

impl Store {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_at_version(path, SCHEMA_VERSION)
    }

    /// Opens without migrating past `version`: lets tests build databases as older
    /// binaries left them. Use [`Store::open`].
    #[doc(hidden)]
    pub fn open_at_version(path: &Path, version: u32) -> Result<Self> {
        let shown = path.display().to_string();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| StoreError::Open {
                path: shown.clone(),
                source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
            })?;
        }
        let mut conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: shown.clone(),
            source,
        })?;
        // Switching a new database to WAL needs a moment of exclusive access, which SQLite
        // does not wait for: two runners starting together retry instead of failing.
        let mut tries = 0;
        loop {
            match configure(&conn) {
                Ok(()) => break,
                Err(e) if is_busy(&e) && tries < 100 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(source) => {
                    return Err(StoreError::Open {
                        path: shown.clone(),
                        source,
                    })
                }
            }
        }
        schema::migrate(&mut conn, &shown, version)?;
        Ok(Store { conn, path: shown })
    }

    /// Opens an existing database for reading only (`sweep status`, `export`, `report`);
    /// never creates or migrates it.
    pub fn open_read_only(path: &Path) -> Result<Self> {
        let shown = path.display().to_string();
        if !path.exists() {
            return Err(StoreError::Missing { path: shown });
        }
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(
            |source| StoreError::Open {
                path: shown.clone(),
                source,
            },
        )?;
        conn.busy_timeout(Duration::from_secs(30))?;
        let v = schema::version(&conn)?;
        if v > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: shown,
                found: v,
                supported: SCHEMA_VERSION,
            });
        }
        Ok(Store { conn, path: shown })
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// SQLite's `PRAGMA data_version`: changes whenever another connection has committed
    /// since this one last looked, so a long-lived reader (`sweep serve`) can keep what it
    /// computed until the database really changes.
    pub fn data_version(&self) -> Result<i64> {
        Ok(self
            .conn
            .pragma_query_value(None, "data_version", |r| r.get(0))?)
    }

    pub fn schema_version(&self) -> Result<u32> {
        schema::version(&self.conn)
    }

    /// `PRAGMA integrity_check`: `Ok(())` or the problems SQLite found.
    pub fn integrity_check(&self) -> Result<std::result::Result<(), String>> {
        let mut stmt = self.conn.prepare("PRAGMA integrity_check")?;
        let rows: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        if rows == ["ok"] {
            Ok(Ok(()))
        } else {
            Ok(Err(rows.join("; ")))
        }
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    // WAL: readers (status, report) never block the runner; NORMAL sync is durable across
    // process crashes (what we must survive) and fast. Two runners wait for each other's
    // short write transactions instead of failing.
    conn.busy_timeout(Duration::from_secs(30))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// The current time as RFC 3339 text (UTC), the format of every `*_at` text column.
pub fn now_text() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Seconds since the Unix epoch, the format of lease and heartbeat columns.
pub fn now_seconds() -> f64 {
    chrono::Utc::now().timestamp_millis() as f64 / 1000.0
}

/// Hooks for tests that need a database in states the API never produces.
#[doc(hidden)]
pub mod testing {
    /// Writes `PRAGMA user_version` directly (e.g. to simulate a newer binary's database).
    pub fn set_user_version(path: &std::path::Path, version: u32) -> crate::Result<()> {
        let conn = rusqlite::Connection::open(path)?;
        conn.pragma_update(None, "user_version", version)?;
        Ok(())
    }
}
