//! How one load sends its rows to MySQL: `LOAD DATA LOCAL INFILE` while the server takes it
//! ([`super::infile`]), else `INSERT` batches ([`super::insert`]), remembered per server for
//! the rest of the run.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use mysql_async::Conn;

use super::conn::Settings;
use super::{infile, insert};
use crate::load::layout::Layout;
use crate::load::stream::Pass;
use crate::load::{DbError, Parts};

/// The servers (`host:port`) that refused `LOAD DATA LOCAL INFILE` in this run: every later
/// load into them stages its rows with `INSERT` at once.
static REFUSED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Whether the `local_infile=false` of a connection string was said in this run.
static FORCED_SAID: AtomicBool = AtomicBool::new(false);

/// How one load sends its rows: `LOAD DATA LOCAL INFILE` while the server takes it, else
/// `INSERT` batches (see [`insert`]).
pub(super) struct Rows {
    settings: Settings,
    /// The `INSERT` statement size limit, read from the server when first needed.
    limit: Option<usize>,
}

impl Rows {
    pub(super) fn new(settings: Settings) -> Rows {
        Rows {
            settings,
            limit: None,
        }
    }

    fn infile(&self) -> bool {
        self.settings.local_infile
            && !REFUSED
                .lock()
                .is_ok_and(|r| r.contains(&self.settings.server))
    }

    /// Remembers a refusal for the rest of the run, and says so once per server.
    fn refused(&self, why: &str) {
        let first = REFUSED
            .lock()
            .map(|mut r| r.insert(self.settings.server.clone()))
            .unwrap_or(true);
        if first {
            tracing::warn!(
                "MySQL at {} refuses LOAD DATA LOCAL INFILE ({why}): staging rows with INSERT batches instead, which is slower; for speed, a DBA can run `SET GLOBAL local_infile = ON` (add `?local_infile=false` to the connection string to skip the attempt)",
                self.settings.server
            );
        }
    }

    /// Streams the files into the tables of `into`, each file into each table in turn, with
    /// what its [`Pass`] says of each record (but [`Pass::Rows`], each row gets its action in
    /// `dap_action`), one statement or batch of statements per file and table, in the caller's
    /// transaction. Returns the rows read and the deletions among them, as the last table got
    /// them.
    pub(super) async fn load_files(
        &mut self,
        conn: &mut Conn,
        into: &[(&str, Pass)],
        layout: &Layout,
        files: &Parts,
    ) -> Result<(u64, u64), DbError> {
        let (mut read, mut deletes) = (0u64, 0u64);
        let mut part = 0;
        while let Some(path) = files.get(part).await? {
            part += 1;
            let mut sent = (0, 0);
            for (table, pass) in into {
                sent = self.load_file(conn, table, layout, &path, *pass).await?;
            }
            read += sent.0;
            deletes += sent.1;
        }
        Ok((read, deletes))
    }

    async fn load_file(
        &mut self,
        conn: &mut Conn,
        into: &str,
        layout: &Layout,
        path: &std::path::Path,
        pass: Pass,
    ) -> Result<(u64, u64), DbError> {
        if self.infile() {
            match infile::load_file(conn, into, layout, path, pass).await {
                Ok(sent) => return Ok(sent),
                Err(infile::Failure::Refused(why)) => self.refused(&why),
                Err(infile::Failure::Other(e)) => return Err(e),
            }
        }
        if !self.settings.local_infile && !FORCED_SAID.swap(true, Ordering::Relaxed) {
            tracing::info!(
                "MySQL at {}: staging rows with INSERT batches (`local_infile=false` in the connection string)",
                self.settings.server
            );
        }
        let limit = match self.limit {
            Some(l) => l,
            None => *self.limit.insert(insert::statement_limit(conn).await?),
        };
        insert::insert_file(conn, into, layout, path, pass, limit).await
    }
}
