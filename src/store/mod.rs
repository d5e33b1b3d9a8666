//! SQLite storage: one writing connection owned by one thread, read-only
//! connections on threads beside it, embedded migrations, and one repository
//! module per table.
//!
//! Why one writer: SQLite serialises writers anyway, and a household appliance
//! needs far less than one connection can do. Owning the connection on its own
//! thread keeps blocking I/O off the async reactor threads (async callers use
//! [`Db::call`]) and avoids `SQLITE_BUSY` between our own connections.
//!
//! Why readers beside it: in WAL mode readers never block the writer nor each
//! other, so hot read paths (the session check of every request, the call
//! history) use [`Db::read`] and do not queue behind writes or one another.
//! A read sees everything committed before it started: a write awaited with
//! [`Db::call`] is visible to every read issued after it.
//!
//! Why these pragmas: WAL with `synchronous=NORMAL` is corruption-safe and
//! syncs only at checkpoints, which spares the SD card; `foreign_keys=ON`
//! makes the schema's references real; the busy timeout covers the CLI
//! (`homeline migrate`, `admin reset-password`) running beside the service.
//!
//! Repositories are plain functions over `&Connection`, so they can be composed
//! inside one transaction and tested on a temporary database.

/// Declares an enum stored as TEXT, with its SQL, serde and display forms in
/// one list, so a column's CHECK values and the Rust type cannot drift apart
/// silently (the repository tests insert every variant).
macro_rules! text_enum {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        $vis enum $name { $($(#[$vmeta])* #[doc = concat!("Stored as `", $text, "`.")] #[serde(rename = $text)] $variant),+ }

        impl $name {
            /// Every variant, in declaration order.
            #[allow(dead_code)]
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The text stored in the database and used in the API.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(self.as_str()) }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(format!(concat!("unknown ", stringify!($name), " {:?}"), s)),
                }
            }
        }

        impl rusqlite::types::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(self.as_str().into())
            }
        }

        impl rusqlite::types::FromSql for $name {
            fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
                v.as_str()?.parse().map_err(|e: String| rusqlite::types::FromSqlError::Other(e.into()))
            }
        }
    };
}

pub mod migrate;

pub mod alerts;
pub mod auto_replies;
pub mod blocklist;
pub mod caller_lists;
pub mod cdrs;
pub mod config;
pub mod devices;
pub mod dids;
pub mod dnd;
pub mod login_attempts;
pub mod messages;
pub mod registrations;
pub mod routes;
pub mod secrets;
pub mod sessions;
pub mod users;
pub mod voicemails;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::constants::{DB_BUSY_TIMEOUT, DB_MAX_READERS};

/// What can go wrong in the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused or failed an operation.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Opening the database file failed.
    #[error("cannot open database {path}: {source}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
    /// A migration could not be applied; it was rolled back as a whole.
    #[error("migration {version:03}_{name} failed: {source}")]
    Migration {
        /// Its number.
        version: u32,
        /// Its name.
        name: &'static str,
        /// Why.
        source: rusqlite::Error,
    },
    /// The database does not match the migrations embedded in this binary.
    #[error("database schema mismatch: {0}")]
    SchemaMismatch(String),
    /// A row that was asked for does not exist.
    #[error("{entity} {id} not found")]
    NotFound {
        /// The kind of row, e.g. "user".
        entity: &'static str,
        /// How it was looked up.
        id: String,
    },
    /// A uniqueness or reference rule was violated.
    #[error("{0}")]
    Conflict(String),
    /// The database thread has stopped (the process is shutting down).
    #[error("the database is closed")]
    Closed,
}

impl StoreError {
    /// A `NotFound` for `entity` looked up by `id`.
    pub fn not_found(entity: &'static str, id: impl ToString) -> Self {
        StoreError::NotFound {
            entity,
            id: id.to_string(),
        }
    }
}

/// Turns a uniqueness/foreign-key violation into a `Conflict` with a message a
/// user can act on; other errors pass through.
pub(crate) fn conflict_as(err: rusqlite::Error, what: &str) -> StoreError {
    match err.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ConstraintViolation) => {
            StoreError::Conflict(format!("{what}: {err}"))
        }
        _ => StoreError::Sqlite(err),
    }
}

/// `Ok` when an UPDATE/DELETE touched a row, `NotFound` when it touched none.
pub(crate) fn one_row(
    changed: usize,
    entity: &'static str,
    id: impl ToString,
) -> Result<(), StoreError> {
    if changed == 0 {
        return Err(StoreError::not_found(entity, id));
    }
    Ok(())
}

/// Maps `QueryReturnedNoRows` to `NotFound`.
pub(crate) fn found<T>(
    r: rusqlite::Result<T>,
    entity: &'static str,
    id: impl ToString,
) -> Result<T, StoreError> {
    match r {
        Ok(v) => Ok(v),
        Err(rusqlite::Error::QueryReturnedNoRows) => Err(StoreError::not_found(entity, id)),
        Err(e) => Err(e.into()),
    }
}

/// Opens (creating if needed) the database at `path` with Homeline's pragmas.
pub fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(|source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    configure(&conn)?;
    Ok(conn)
}

/// An in-memory database with the same pragmas and all migrations; for tests.
pub fn open_in_memory() -> Result<Connection, StoreError> {
    let mut conn = Connection::open_in_memory()?;
    configure(&conn)?;
    migrate::apply(&mut conn, &crate::clock::SystemClock)?;
    Ok(conn)
}

fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(DB_BUSY_TIMEOUT)?;
    // journal_mode returns a row; in-memory databases answer "memory".
    let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;
         PRAGMA journal_size_limit = 4194304;",
    )?;
    Ok(())
}

/// Opens a read-only connection to the database at `path` (the writer must
/// have opened and migrated it first, so the WAL files exist).
pub fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    use rusqlite::OpenFlags;
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    conn.busy_timeout(DB_BUSY_TIMEOUT)?;
    conn.execute_batch("PRAGMA query_only = ON; PRAGMA temp_store = MEMORY;")?;
    Ok(conn)
}

type Job = Box<dyn FnOnce(&mut Connection) + Send>;
type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

enum Msg {
    Run(Job),
    Stop,
}

enum ReadMsg {
    Run(ReadJob),
    Stop,
}

/// A cheap, cloneable handle to the database threads.
#[derive(Clone)]
pub struct Db {
    jobs: mpsc::Sender<Msg>,
    /// The readers' shared queue; `None` when there are none (an in-memory
    /// database cannot be shared), and reads then run on the writer.
    reads: Option<mpsc::Sender<ReadMsg>>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Db")
    }
}

/// Joins the database threads when closed; held by the app only.
#[derive(Debug)]
pub struct DbThread {
    handle: Option<thread::JoinHandle<()>>,
    readers: Vec<thread::JoinHandle<()>>,
}

/// How many read-only connections to open: one per core, at least two, at
/// most [`DB_MAX_READERS`] (each holds its own page cache).
pub fn reader_count() -> usize {
    thread::available_parallelism()
        .map_or(2, usize::from)
        .clamp(2, DB_MAX_READERS)
}

impl Db {
    /// Starts the writer thread that owns `conn` and `readers` read-only
    /// connections to the same file `path`, each on its own thread.
    pub fn start_with_readers(
        conn: Connection,
        path: &Path,
        readers: usize,
    ) -> Result<(Db, DbThread), StoreError> {
        let conns = (0..readers)
            .map(|_| open_reader(path))
            .collect::<Result<Vec<_>, _>>()?;
        let (db, mut thread) = Db::start(conn);
        let (tx, rx) = mpsc::channel::<ReadMsg>();
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        for (i, conn) in conns.into_iter().enumerate() {
            let rx = rx.clone();
            let handle = thread::Builder::new()
                .name(format!("homeline-db-r{i}"))
                .spawn(move || loop {
                    // One reader waits on the queue, the others on the lock.
                    let msg = match rx.lock() {
                        Ok(queue) => queue.recv(),
                        Err(_) => return,
                    };
                    match msg {
                        Ok(ReadMsg::Run(job)) => job(&conn),
                        Ok(ReadMsg::Stop) | Err(_) => return,
                    }
                })
                .map_err(|e| StoreError::Conflict(format!("spawning a database reader: {e}")))?;
            thread.readers.push(handle);
        }
        Ok((
            Db {
                jobs: db.jobs,
                reads: Some(tx),
            },
            thread,
        ))
    }

    /// Starts the database thread that owns `conn` (no readers: reads run on
    /// it too).
    pub fn start(conn: Connection) -> (Db, DbThread) {
        let (tx, rx) = mpsc::channel::<Msg>();
        let handle = thread::Builder::new()
            .name("homeline-db".into())
            .spawn(move || {
                let mut conn = conn;
                while let Ok(Msg::Run(job)) = rx.recv() {
                    job(&mut conn);
                }
                // Stopped, or every handle is gone: fold the WAL back so the
                // next start is clean.
                if let Err(e) =
                    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA optimize;")
                {
                    tracing::warn!(error = %e, "final checkpoint failed");
                }
            })
            .expect("spawning the database thread");
        (
            Db {
                jobs: tx,
                reads: None,
            },
            DbThread {
                handle: Some(handle),
                readers: Vec::new(),
            },
        )
    }

    /// Runs the read-only `f` on a reader connection (on the writer when
    /// there are none) and waits for its result without blocking the async
    /// runtime. Writes fail there (`query_only`): use [`Db::call`].
    pub async fn read<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let Some(reads) = &self.reads else {
            return self.call(move |c| f(c)).await;
        };
        let (tx, rx) = oneshot::channel();
        let job: ReadJob = Box::new(move |conn| {
            let _ = tx.send(f(conn));
        });
        reads
            .send(ReadMsg::Run(job))
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs `f` on the database thread and waits for its result without
    /// blocking the async runtime.
    ///
    /// The error type is the caller's (`StoreError` itself, or a layer's own
    /// error that a `StoreError` converts into, such as
    /// `sysconfig::ConfigError`), so a closure that also fails for reasons of
    /// its own says so in its type instead of disguising them as a store
    /// error. A stopped database thread is `StoreError::Closed`, converted.
    pub async fn call<R, E, F>(&self, f: F) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, E> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            // The caller may have gone away (request cancelled); that is fine.
            let _ = tx.send(f(conn));
        });
        self.jobs
            .send(Msg::Run(job))
            .map_err(|_| E::from(StoreError::Closed))?;
        rx.await.map_err(|_| E::from(StoreError::Closed))?
    }

    /// Like [`Db::call`], for synchronous callers (the CLI).
    pub fn call_blocking<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |conn| {
            let _ = tx.send(f(conn));
        });
        self.jobs
            .send(Msg::Run(job))
            .map_err(|_| StoreError::Closed)?;
        rx.recv().map_err(|_| StoreError::Closed)?
    }
}

impl DbThread {
    /// Finishes the jobs queued before now, checkpoints and stops the thread.
    /// Later calls through any [`Db`] handle fail with [`StoreError::Closed`].
    pub fn close(self, db: &Db) {
        if let Some(reads) = &db.reads {
            for _ in &self.readers {
                let _ = reads.send(ReadMsg::Stop);
            }
        }
        let _ = db.jobs.send(Msg::Stop);
        self.join();
    }

    /// Waits for the database threads to end (after [`DbThread::close`], or
    /// once every [`Db`] handle is dropped).
    pub fn join(mut self) {
        for h in self.readers.drain(..) {
            if h.join().is_err() {
                tracing::error!("a database reader panicked");
            }
        }
        if let Some(h) = self.handle.take() {
            if h.join().is_err() {
                tracing::error!("the database thread panicked");
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers for repository tests.
    use super::*;
    use crate::clock::Timestamp;

    /// A migrated in-memory database.
    pub fn db() -> Connection {
        open_in_memory().expect("in-memory database")
    }

    /// A fixed instant for rows written by tests.
    pub fn t(secs: i64) -> Timestamp {
        Timestamp::from_unix_millis(1_795_255_200_000 + secs * 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_database_uses_wal_normal_and_foreign_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = open_connection(&dir.path().join("t.db")).expect("open");
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .expect("pragma");
        let sync: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .expect("pragma");
        let fk: i64 = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .expect("pragma");
        assert_eq!((mode.as_str(), sync, fk), ("wal", 1, 1));
    }

    #[tokio::test]
    async fn calls_run_on_the_database_thread_and_stop_when_closed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (db, thread) = Db::start(open_connection(&dir.path().join("t.db")).expect("open"));
        let name = db
            .call(|_| Ok::<_, StoreError>(std::thread::current().name().map(str::to_owned)))
            .await
            .expect("call");
        assert_eq!(name.as_deref(), Some("homeline-db"));
        let n: i64 = db
            .call(|c| Ok::<_, StoreError>(c.query_row("SELECT 41 + 1", [], |r| r.get(0))?))
            .await
            .expect("call");
        assert_eq!(n, 42);
        let other = db.clone();
        thread.close(&db);
        assert!(
            matches!(other.call(|_| Ok(())).await, Err(StoreError::Closed)),
            "closed for every handle"
        );
    }

    #[tokio::test]
    async fn reads_run_on_read_only_connections_and_see_committed_writes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let mut conn = open_connection(&path).expect("open");
        migrate::apply(&mut conn, &crate::clock::SystemClock).expect("migrate");
        let (db, thread) = Db::start_with_readers(conn, &path, 2).expect("start");
        db.call(|c| {
            c.execute(
                "INSERT INTO config (key, value, updated_at) VALUES ('k', 'v', 'now')",
                [],
            )?;
            Ok::<_, StoreError>(())
        })
        .await
        .expect("write");
        let (name, value) = db
            .read(|c| {
                let v: String =
                    c.query_row("SELECT value FROM config WHERE key = 'k'", [], |r| r.get(0))?;
                Ok((std::thread::current().name().map(str::to_owned), v))
            })
            .await
            .expect("read");
        assert!(name.is_some_and(|n| n.starts_with("homeline-db-r")));
        assert_eq!(value, "v", "the write awaited before is visible");
        let refused = db.read(|c| Ok(c.execute("DELETE FROM config", [])?)).await;
        assert!(refused.is_err(), "readers cannot write");
        thread.close(&db);
        assert!(matches!(db.read(|_| Ok(())).await, Err(StoreError::Closed)));
    }
}

/// A window of rows, as asked for by a paginated API call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// At most this many rows.
    pub limit: u32,
    /// Skip this many rows first.
    pub offset: u64,
}

impl Page {
    /// Everything (for internal callers that need whole lists).
    pub const ALL: Page = Page {
        limit: u32::MAX,
        offset: 0,
    };
}

/// One page of rows and the total count without paging.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Paged<T> {
    /// The rows of this page.
    pub items: Vec<T>,
    /// How many rows match in all.
    pub total: u64,
}
