//! How one load sends its rows to MySQL: `LOAD DATA LOCAL INFILE` while the server takes it
//! ([`super::infile`]), else `INSERT` batches ([`super::insert`]), remembered per server for
//! the rest of the run.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use mysql_async::Conn;

use super::conn::Settings;
use super::infile::Sent;
use super::{infile, insert};
use crate::load::layout::Layout;
use crate::load::stream::Pass;
use crate::load::target::MyServer;
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
    /// transaction if one is open. Returns what the last table got.
    pub(super) async fn load_files(
        &mut self,
        conn: &mut Conn,
        into: &[(&str, Pass)],
        layout: &Layout,
        files: &Parts,
    ) -> Result<Sent, DbError> {
        let mut total = Sent::default();
        let mut part = 0;
        while let Some(path) = files.get(part).await? {
            part += 1;
            let mut sent = Sent::default();
            for (table, pass) in into {
                sent = self.load_file(conn, table, layout, &path, *pass).await?;
            }
            total += sent;
        }
        Ok(total)
    }

    /// Loads the `U` records' rows of the parts into `into`, taking the next part from `next`
    /// until there is none (see [`helper`]), each statement committing on its own: what
    /// `into` got.
    pub(super) async fn take_parts(
        &mut self,
        conn: &mut Conn,
        into: &str,
        layout: &Layout,
        files: &Parts,
        next: &AtomicUsize,
    ) -> Result<Sent, DbError> {
        let mut total = Sent::default();
        while let Some(path) = files.get(next.fetch_add(1, Ordering::Relaxed)).await? {
            total += self
                .load_file(conn, into, layout, &path, Pass::Rows)
                .await?;
        }
        Ok(total)
    }

    async fn load_file(
        &mut self,
        conn: &mut Conn,
        into: &str,
        layout: &Layout,
        path: &std::path::Path,
        pass: Pass,
    ) -> Result<Sent, DbError> {
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

/// A second connection loading parts into the table `into` while the load's own takes others
/// ([`Rows::take_parts`] with the same `next`): one `LOAD DATA` runs on one server thread, and
/// two at a time loaded 1M rows in 3.5–3.9 s where one took 5.1–5.2 s. Opened when it first
/// gets a part, so a table of one part opens none (unless the load's own connection is busy
/// with a rewrite's untouched rows). `into` is a table no reader sees yet (a new table before
/// its swap, or an upsert's source): each statement commits on its own, and a failed load
/// drops the table. The order of the parts is lost, so only loads in which no key can repeat,
/// or none did, take a helper.
pub(super) async fn helper(
    server: &MyServer,
    into: &str,
    layout: &Layout,
    files: &Parts,
    next: &AtomicUsize,
) -> Result<Sent, DbError> {
    let mut opened: Option<(Conn, Rows)> = None;
    let mut total = Sent::default();
    while let Some(path) = files.get(next.fetch_add(1, Ordering::Relaxed)).await? {
        let (conn, rows) = match opened.as_mut() {
            Some(o) => o,
            None => {
                let (conn, settings) = super::conn::open(server).await?;
                opened.insert((conn, Rows::new(settings)))
            }
        };
        total += rows
            .load_file(conn, into, layout, &path, Pass::Rows)
            .await?;
    }
    if let Some((conn, _)) = opened {
        tracing::debug!(
            table = into,
            rows = total.read,
            "a second connection loaded parts at the same time"
        );
        let _ = conn.disconnect().await;
    }
    Ok(total)
}
