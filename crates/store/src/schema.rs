//! Versioned schema migrations (`PRAGMA user_version`). Each migration runs in one
//! transaction with the version bump, so a crash leaves the database at the old or the new
//! version, never between. A database newer than this binary is refused. Documented in
//! `docs/schema.md`; add a migration, never edit one that has shipped.

use rusqlite::Connection;

use crate::StoreError;

/// `MIGRATIONS[i]` takes the database from version `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: studies, trials and everything a trial produces.
    r#"
    CREATE TABLE studies (
        name        TEXT PRIMARY KEY,
        description TEXT,
        yaml        TEXT NOT NULL,
        yaml_sha256 TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        updated_at  TEXT NOT NULL
    );
    CREATE TABLE trials (
        id                  TEXT PRIMARY KEY,
        effective_config    TEXT NOT NULL,
        config              TEXT NOT NULL,
        seed                INTEGER NOT NULL,
        status              TEXT NOT NULL DEFAULT 'pending',
        attempts            INTEGER NOT NULL DEFAULT 0,
        device              TEXT,
        host                TEXT,
        lease_owner         TEXT,
        lease_expires_at    REAL,
        started_at          TEXT,
        finished_at         TEXT,
        exit_code           INTEGER,
        signal              INTEGER,
        error               TEXT,
        em                  REAL,
        f1                  REAL,
        train_loss          REAL,
        train_seconds       REAL,
        examples_per_second REAL,
        steps               INTEGER,
        metrics_offset      INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE study_trials (
        study            TEXT NOT NULL REFERENCES studies(name) ON DELETE CASCADE,
        ordinal          INTEGER NOT NULL,
        variant          TEXT NOT NULL,
        ablation         TEXT NOT NULL,
        grid_point       TEXT NOT NULL,
        seed             INTEGER NOT NULL,
        params           TEXT NOT NULL,
        trial_id         TEXT NOT NULL REFERENCES trials(id),
        duplicate_of     TEXT,
        duplicate_reason TEXT,
        PRIMARY KEY (study, variant, seed)
    );
    CREATE INDEX study_trials_trial ON study_trials(trial_id);
    CREATE TABLE attempts (
        trial_id    TEXT NOT NULL REFERENCES trials(id),
        attempt     INTEGER NOT NULL,
        runner      TEXT NOT NULL,
        device      TEXT,
        host        TEXT,
        pid         INTEGER,
        started_at  TEXT NOT NULL,
        finished_at TEXT,
        status      TEXT NOT NULL,
        exit_code   INTEGER,
        signal      INTEGER,
        stderr_tail TEXT,
        PRIMARY KEY (trial_id, attempt)
    );
    CREATE TABLE metrics (
        trial_id TEXT NOT NULL,
        step     INTEGER NOT NULL,
        epoch    REAL,
        name     TEXT NOT NULL,
        value    REAL,
        time     REAL,
        PRIMARY KEY (trial_id, name, step)
    ) WITHOUT ROWID;
    CREATE TABLE evaluations (
        trial_id TEXT NOT NULL,
        step     INTEGER NOT NULL,
        epoch    REAL,
        split    TEXT NOT NULL,
        em       REAL NOT NULL,
        f1       REAL NOT NULL,
        PRIMARY KEY (trial_id, split, step)
    );
    CREATE TABLE predictions (
        trial_id    TEXT NOT NULL,
        question_id TEXT NOT NULL,
        answer      TEXT NOT NULL,
        em          REAL,
        f1          REAL,
        PRIMARY KEY (trial_id, question_id)
    ) WITHOUT ROWID;
    CREATE TABLE environments (
        trial_id       TEXT PRIMARY KEY,
        git_commit     TEXT,
        binary_version TEXT,
        backend        TEXT,
        device_name    TEXT,
        host           TEXT,
        train_sha256   TEXT,
        eval_sha256    TEXT,
        json           TEXT NOT NULL
    );
    CREATE TABLE runners (
        id           TEXT PRIMARY KEY,
        host         TEXT NOT NULL,
        pid          INTEGER NOT NULL,
        started_at   TEXT NOT NULL,
        heartbeat_at REAL NOT NULL
    );
    "#,
    // 2: attempts remember which executor ran them and the scheduler's job id, so a
    // restarted runner can reattach to Slurm jobs it submitted.
    r#"
    ALTER TABLE attempts ADD COLUMN executor TEXT NOT NULL DEFAULT 'local';
    ALTER TABLE attempts ADD COLUMN job_id TEXT;
    "#,
    // 3: a search's pruner records where it stopped a trial: the step of the evaluation it
    // compared and that evaluation's metric value.
    r#"
    ALTER TABLE trials ADD COLUMN pruned_step INTEGER;
    ALTER TABLE trials ADD COLUMN pruned_value REAL;
    "#,
];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

pub(crate) fn version(conn: &Connection) -> Result<u32, StoreError> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// Brings the database up to `target` (normally [`SCHEMA_VERSION`]).
pub(crate) fn migrate(conn: &mut Connection, path: &str, target: u32) -> Result<(), StoreError> {
    let current = version(conn)?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.into(),
            found: current,
            supported: SCHEMA_VERSION,
        });
    }
    // Each step re-reads the version inside an IMMEDIATE transaction: two processes opening
    // a new database at once migrate it once, not twice.
    loop {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let v = version(&tx)?;
        if v >= target.min(SCHEMA_VERSION) {
            return Ok(());
        }
        tx.execute_batch(MIGRATIONS[v as usize])
            .map_err(|e| StoreError::Migration {
                path: path.into(),
                version: v + 1,
                source: e,
            })?;
        tx.pragma_update(None, "user_version", v + 1)?;
        tx.commit()?;
    }
}
