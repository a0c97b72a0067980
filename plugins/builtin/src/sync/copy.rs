//! The workers. Each opens a read-only REPEATABLE READ transaction on the source that imports
//! the run's exported snapshot (so all of them read the same database state), and a session on
//! the target. They take ranges from one queue, largest tables first; each range is one target
//! transaction: `COPY … FROM STDIN` fed straight from `COPY … TO STDOUT`, then the range's row in
//! `confiture_sync` (rows, bytes, checksum), then COMMIT. A range is written whole or not at all.
//! Memory stays bounded: rows stream through one at a time, with the sink's own small buffer.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use confiture_engine::ExitCode;
use confiture_engine::event::{Event, EventKind, Tone};
use confiture_engine::pg::{self, ConnInfo, PgError, Session, quote_literal};
use confiture_engine::stage::{StageContext, StageError};
use futures::{SinkExt, StreamExt};
use tokio_util::sync::CancellationToken;

use super::plan::Unit;
use super::progress::RANGES;
use super::stream::{Checksum, Rewrite, Scratch};
use crate::anonymize::verify::FORMS;
use crate::catalog::model::ident;

/// The bytes sent to the target in one COPY message.
const BATCH: usize = 64 * 1024;

/// After each table is copied (all its ranges): details `table`, `rows`.
pub const AFTER_TABLE: EventKind = EventKind("after-sync-table");

/// What the workers share.
pub struct Work {
    pub run: String,
    pub snapshot: String,
    pub units: Vec<Unit>,
    /// Per unit: how its rows are masked, if they are.
    pub rewrites: Vec<Option<Arc<Rewrite>>>,
    /// Per unit of a restricted table: the kept ctids as an array literal.
    pub kept: Vec<Option<Arc<String>>>,
    /// `(unit, range)` still to copy.
    pub queue: Mutex<VecDeque<(usize, usize)>>,
    /// Per unit: rows and bytes written so far (ranges done earlier included), ranges left.
    pub rows: Vec<AtomicU64>,
    pub bytes: Vec<AtomicU64>,
    pub left: Vec<AtomicUsize>,
    pub started: Vec<Mutex<Option<Instant>>>,
}

/// One range written.
#[derive(Clone, Debug)]
pub struct Done {
    pub unit: usize,
    pub range: usize,
    pub checksum: Checksum,
    pub bytes: u64,
    pub ms: u64,
}

impl Work {
    pub fn new(
        run: String,
        snapshot: String,
        units: Vec<Unit>,
        rewrites: Vec<Option<Arc<Rewrite>>>,
        kept: Vec<Option<Arc<String>>>,
        todo: Vec<(usize, usize)>,
    ) -> Work {
        let n = units.len();
        let mut left = vec![0usize; n];
        for (u, _) in &todo {
            left[*u] += 1;
        }
        Work {
            run,
            snapshot,
            rewrites,
            kept,
            queue: Mutex::new(todo.into()),
            rows: (0..n).map(|_| AtomicU64::new(0)).collect(),
            bytes: (0..n).map(|_| AtomicU64::new(0)).collect(),
            left: left.into_iter().map(AtomicUsize::new).collect(),
            started: (0..n).map(|_| Mutex::new(None)).collect(),
            units,
        }
    }

    fn next(&self) -> Option<(usize, usize)> {
        self.queue.lock().expect("queue").pop_front()
    }

    /// One line for a terminal: each table being copied with a bar, rate and time left.
    pub fn progress_line(&self) -> String {
        let mut parts = Vec::new();
        for (i, u) in self.units.iter().enumerate() {
            let Some(start) = *self.started[i].lock().expect("started") else { continue };
            if self.left[i].load(Ordering::Relaxed) == 0 {
                continue;
            }
            let rows = self.rows[i].load(Ordering::Relaxed);
            let bytes = self.bytes[i].load(Ordering::Relaxed);
            let secs = start.elapsed().as_secs_f64().max(0.001);
            let mbs = bytes as f64 / 1e6 / secs;
            let part = if u.estimated_rows > 0 {
                let f = (rows as f64 / u.estimated_rows as f64).min(1.0);
                let filled = (f * 10.0).round() as usize;
                let eta = if rows > 0 { (secs / f - secs).max(0.0) } else { f64::NAN };
                format!(
                    "{} [{}{}] {:.0}% {:.1} MB/s{}",
                    u.table,
                    "█".repeat(filled),
                    "░".repeat(10 - filled),
                    f * 100.0,
                    mbs,
                    if eta.is_finite() { format!(" ETA {eta:.0}s") } else { String::new() }
                )
            } else {
                format!("{} {rows} rows {mbs:.1} MB/s", u.table)
            };
            parts.push(part);
        }
        parts.join(" | ")
    }
}

/// Open a source session inside the run's snapshot: read only, in the same text forms as the
/// target (so checksums compare).
pub async fn source_session(info: &ConnInfo, snapshot: &str) -> Result<Session, PgError> {
    let s = pg::connect(info, "confiture sync (read)").await?;
    s.client()
        .batch_execute(&format!(
            "SET default_transaction_read_only = on; BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; \
             SET TRANSACTION SNAPSHOT {}; {FORMS}",
            quote_literal(snapshot)
        ))
        .await?;
    Ok(s)
}

/// Open a target session for writing: commits need not wait for the disk (a crash of the
/// server loses the last ranges together with their progress rows, so they are copied again).
pub async fn target_session(info: &ConnInfo) -> Result<Session, PgError> {
    let s = pg::connect(info, "confiture sync (write)").await?;
    s.client().batch_execute(&format!("SET synchronous_commit = off; {}", FORMS.replace("SET LOCAL", "SET"))).await?;
    Ok(s)
}

/// Copy every queued range with `jobs` workers; the first failure stops the others.
pub async fn copy_all(
    work: Arc<Work>,
    source: &ConnInfo,
    target: &ConnInfo,
    jobs: usize,
    cx: &StageContext,
) -> Result<Vec<Done>, StageError> {
    let queued = work.queue.lock().expect("queue").len();
    let jobs = jobs.clamp(1, queued.max(1));
    let stop = cx.cancel.child_token();
    let ticker = {
        let work = work.clone();
        let cx = cx.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
                let line = work.progress_line();
                if !line.is_empty() {
                    cx.progress(&line);
                }
            }
        })
    };
    let mut handles = Vec::new();
    for n in 0..jobs {
        let (work, source, target, cx, stop) = (work.clone(), source.clone(), target.clone(), cx.clone(), stop.clone());
        handles.push(tokio::spawn(async move {
            let result = worker(n, &work, &source, &target, &cx, &stop).await;
            if result.is_err() {
                stop.cancel();
            }
            result
        }));
    }
    let mut done = Vec::new();
    let mut first_error: Option<StageError> = None;
    for h in handles {
        match h.await {
            Ok(Ok(d)) => done.extend(d),
            Ok(Err(e)) => {
                // A worker stopped because another failed reports "cancelled": keep the cause.
                if first_error.as_ref().is_none_or(StageError::is_cancelled) {
                    first_error = Some(e);
                }
            }
            Err(e) => first_error = Some(StageError::new(ExitCode::Failure, format!("a copy worker panicked: {e}"))),
        }
    }
    stop.cancel();
    let _ = ticker.await;
    if let Some(e) = first_error {
        return Err(if cx.cancel.is_cancelled() { StageError::cancelled() } else { e });
    }
    Ok(done)
}

async fn worker(
    n: usize,
    work: &Work,
    source: &ConnInfo,
    target: &ConnInfo,
    cx: &StageContext,
    stop: &CancellationToken,
) -> Result<Vec<Done>, StageError> {
    let src = source_session(source, &work.snapshot)
        .await
        .map_err(|e| StageError::from(e).with_field("worker", n.to_string()))?;
    let dst = target_session(target).await?;
    let mut done = Vec::new();
    while let Some((u, r)) = work.next() {
        if stop.is_cancelled() {
            return Err(StageError::cancelled());
        }
        {
            let mut s = work.started[u].lock().expect("started");
            s.get_or_insert_with(Instant::now);
        }
        let d = match copy_range(work, u, r, &src, &dst, stop).await {
            Ok(d) => d,
            Err(e) => {
                let _ = dst.client().batch_execute("ROLLBACK").await;
                return Err(e);
            }
        };
        if work.left[u].fetch_sub(1, Ordering::SeqCst) == 1 {
            let unit = &work.units[u];
            let rows = work.rows[u].load(Ordering::SeqCst);
            let secs = work.started[u].lock().expect("started").map_or(0.0, |s| s.elapsed().as_secs_f64());
            cx.emit(
                Event::new(AFTER_TABLE)
                    .subject("table", unit.table.clone())
                    .detail("table", unit.table.clone())
                    .detail("rows", rows.to_string())
                    .note(
                        format!(
                            "copied {}: {rows} rows, {:.1} MB in {secs:.1}s{}",
                            unit.table,
                            work.bytes[u].load(Ordering::SeqCst) as f64 / 1e6,
                            if unit.masked.is_empty() {
                                String::new()
                            } else {
                                format!(" (masked {})", unit.masked.join(", "))
                            }
                        ),
                        Tone::Good,
                        false,
                    ),
            )
            .await?;
        }
        done.push(d);
    }
    let _ = src.client().batch_execute("COMMIT").await;
    Ok(done)
}

fn masking_error(unit: &Unit, e: String) -> StageError {
    StageError::new(
        ExitCode::Failure,
        format!("masking a row of {}: {e}; nothing of this range was written", unit.table),
    )
}

async fn copy_range(
    work: &Work,
    u: usize,
    r: usize,
    src: &Session,
    dst: &Session,
    stop: &CancellationToken,
) -> Result<Done, StageError> {
    let unit = &work.units[u];
    let range = &unit.ranges[r];
    let started = Instant::now();
    let cols = unit.columns.iter().map(|c| ident(c)).collect::<Vec<_>>().join(", ");
    let mut conditions: Vec<String> = range.predicate.iter().cloned().collect();
    if let Some(kept) = &work.kept[u] {
        src.client()
            .query("SELECT set_config('confiture.kept', $1, true)", &[&kept.as_str()])
            .await
            .map_err(PgError::from)?;
        // A sub-select: the array is parsed once, not once per row.
        conditions.push("ctid = ANY ((SELECT current_setting('confiture.kept')::tid[])::tid[])".into());
    }
    let read = if conditions.is_empty() {
        format!("COPY {} ({cols}) TO STDOUT", unit.sql_name)
    } else {
        format!("COPY (SELECT {cols} FROM ONLY {} WHERE {}) TO STDOUT", unit.sql_name, conditions.join(" AND "))
    };
    let c = dst.client();
    c.batch_execute("BEGIN").await.map_err(PgError::from)?;
    let write = format!("COPY {} ({cols}) FROM STDIN", unit.sql_name);
    let rewrite = work.rewrites[u].as_deref();
    let (sum, bytes) = pipe(src.client(), &read, c, &write, rewrite, |rows, bytes| {
        work.rows[u].fetch_add(rows, Ordering::Relaxed);
        work.bytes[u].fetch_add(bytes, Ordering::Relaxed);
        !stop.is_cancelled()
    })
    .await
    .map_err(|e| match e {
        PipeError::Pg(e) => StageError::from(e),
        PipeError::Mask(e) => masking_error(unit, e),
        PipeError::Stopped => StageError::cancelled(),
        PipeError::Count { written, sent } => StageError::new(
            ExitCode::Failure,
            format!("{}: the target took {written} rows of the {sent} sent", unit.table),
        ),
    })?;
    let ms = started.elapsed().as_millis() as u64;
    c.execute(
        &format!(
            "INSERT INTO {RANGES} (run, table_name, range_no, range, rows, bytes, checksum, duration_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ),
        &[
            &work.run,
            &unit.table,
            &(range.no as i32),
            &range.what,
            &(sum.rows as i64),
            &(bytes as i64),
            &sum.hex(),
            &(ms as i64),
        ],
    )
    .await
    .map_err(PgError::from)?;
    c.batch_execute("COMMIT").await.map_err(PgError::from)?;
    Ok(Done { unit: u, range: r, checksum: sum, bytes, ms })
}

/// Sum the ranges done by unit.
pub fn by_unit(done: &[Done]) -> BTreeMap<usize, (Checksum, u64, u64)> {
    let mut out: BTreeMap<usize, (Checksum, u64, u64)> = BTreeMap::new();
    for d in done {
        let e = out.entry(d.unit).or_default();
        e.0.merge(d.checksum);
        e.1 += d.bytes;
        e.2 += d.ms;
    }
    out
}

/// Why [`pipe`] stopped.
#[derive(Debug)]
pub enum PipeError {
    Pg(PgError),
    /// A masker failed on a row.
    Mask(String),
    /// `tick` said stop.
    Stopped,
    /// The target's COPY counted other rows than were sent.
    Count {
        written: u64,
        sent: u64,
    },
}

impl From<tokio_postgres::Error> for PipeError {
    fn from(e: tokio_postgres::Error) -> Self {
        PipeError::Pg(PgError::from(e))
    }
}

/// Stream `read` (a `COPY … TO STDOUT` on `src`) into `write` (a `COPY … FROM STDIN` on
/// `dst`), in the callers' transactions, rows rewritten by `rewrite` when there is one; every
/// row written is added to the checksum. `tick(rows, bytes)` is told of progress every 2048
/// rows (and at the end) and stops the copy by returning false. Returns the checksum and bytes.
pub async fn pipe(
    src: &tokio_postgres::Client,
    read: &str,
    dst: &tokio_postgres::Client,
    write: &str,
    rewrite: Option<&Rewrite>,
    mut tick: impl FnMut(u64, u64) -> bool,
) -> Result<(Checksum, u64), PipeError> {
    let sink = dst.copy_in::<_, Bytes>(write).await?;
    let stream = src.copy_out(read).await?;
    futures::pin_mut!(sink);
    futures::pin_mut!(stream);
    let mut sum = Checksum::default();
    let mut bytes = 0u64;
    let mut pending = 0u64;
    let mut reported = 0u64;
    let mut buf = Vec::new();
    let mut scratch = Scratch::default();
    // The source sends a message per row; the target gets them in batches, so that the
    // connection task wakes once per batch rather than once per row.
    let mut batch = BytesMut::with_capacity(BATCH + 4096);
    while let Some(row) = stream.next().await {
        let row = row?;
        let out: &[u8] = match rewrite {
            None => &row,
            Some(rw) => {
                rw.row(&row, &mut buf, &mut scratch).map_err(PipeError::Mask)?;
                &buf
            }
        };
        sum.add(out);
        bytes += out.len() as u64;
        batch.extend_from_slice(out);
        pending += 1;
        if pending == 2048 {
            let go = tick(pending, bytes - reported);
            reported = bytes;
            pending = 0;
            if !go {
                return Err(PipeError::Stopped);
            }
        }
        if batch.len() >= BATCH {
            sink.feed(batch.split().freeze()).await?;
            // `split` took the buffer whole: the next batch gets one of its own, once.
            batch.reserve(BATCH + 4096);
        }
    }
    if !batch.is_empty() {
        sink.feed(batch.freeze()).await?;
    }
    let written = sink.as_mut().finish().await?;
    tick(pending, bytes - reported);
    if written != sum.rows {
        return Err(PipeError::Count { written, sent: sum.rows });
    }
    Ok((sum, bytes))
}
