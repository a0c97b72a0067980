//! `--verify`: read every copied table back from the target and compare its row count and
//! order-independent checksum with what the run recorded writing. For a table without masked
//! columns, copied whole by an uninterrupted run, the source is read again in the run's own
//! snapshot and its checksum must match too: what the target holds is exactly what the source
//! held at that instant.
//!
//! A masked table cannot be compared byte for byte with what was sent: the target stores a
//! masked jsonb document in its own normal form. Its row count is compared, and — in an
//! uninterrupted run — the checksum of its unmasked columns with the source's.

use std::collections::BTreeMap;

use confiture_engine::pg::{PgError, Session};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::plan::Unit;
use super::stream::Checksum;
use crate::anonymize::verify::FORMS;
use crate::catalog::model::ident;

#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TableCheck {
    pub table: String,
    /// Rows the run recorded writing, and rows read back.
    pub expected_rows: u64,
    pub rows: u64,
    pub expected_checksum: String,
    pub checksum: String,
    /// The source's checksum in the run's snapshot (whole, unmasked tables of an uninterrupted run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_checksum: Option<String>,
    /// What the checksums cover: `all columns`, or `unmasked columns` of a masked table.
    pub compared: String,
    pub ok: bool,
}

async fn checksum(session: &Session, unit: &Unit, columns: &[&String]) -> Result<Checksum, PgError> {
    let cols = columns.iter().map(|c| ident(c)).collect::<Vec<_>>().join(", ");
    let stream = session.client().copy_out(&format!("COPY {} ({cols}) TO STDOUT", unit.sql_name)).await?;
    futures::pin_mut!(stream);
    let mut sum = Checksum::default();
    while let Some(row) = stream.next().await {
        sum.add(&row?);
    }
    Ok(sum)
}

/// Check every unit. `source`: a session still inside the run's snapshot, when there is one.
pub async fn verify(
    units: &[Unit],
    recorded: &BTreeMap<String, (Checksum, u64, usize)>,
    target: &Session,
    source: Option<&Session>,
) -> Result<Vec<TableCheck>, PgError> {
    target.client().batch_execute(&format!("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; {FORMS}")).await?;
    let mut out = Vec::new();
    for u in units {
        let expected = recorded.get(&u.table).map(|r| r.0).unwrap_or_default();
        let masked = !u.masked.is_empty();
        let columns: Vec<&String> = u.columns.iter().filter(|c| !u.masked.contains(c)).collect();
        let (found, src) = match source.filter(|_| u.subset.is_none()) {
            Some(s) if !columns.is_empty() => {
                let (a, b) = futures::try_join!(checksum(target, u, &columns), checksum(s, u, &columns))?;
                (a, Some(b))
            }
            _ => (checksum(target, u, &columns).await?, None),
        };
        let ok = found.rows == expected.rows && (masked || found == expected) && src.is_none_or(|s| s == found);
        out.push(TableCheck {
            table: u.table.clone(),
            expected_rows: expected.rows,
            rows: found.rows,
            expected_checksum: if masked { String::new() } else { expected.hex() },
            checksum: found.hex(),
            source_checksum: src.map(|s| s.hex()),
            compared: if masked { "unmasked columns" } else { "all columns" }.into(),
            ok,
        });
    }
    target.client().batch_execute("COMMIT").await?;
    Ok(out)
}
