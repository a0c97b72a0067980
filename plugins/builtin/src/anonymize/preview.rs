//! Original and masked values side by side, for the person writing a profile. Reads only.

use confiture_engine::pg::{PgError, Session};
use serde::Serialize;

use super::plan::TablePlan;
use crate::catalog::model::ident;

#[derive(Clone, Debug, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Preview {
    pub table: String,
    /// The masked columns, in order.
    pub columns: Vec<String>,
    /// Per row, per column: `[original, masked]` (`null` for SQL NULL).
    pub rows: Vec<Vec<[Option<String>; 2]>>,
}

/// The first `limit` rows of the table (in key order when it has one), masked.
pub async fn preview(t: &TablePlan, session: &Session, limit: usize) -> Result<Result<Preview, String>, PgError> {
    let masked: Vec<&str> = t.columns.iter().map(|c| c.column.as_str()).collect();
    let mut names: Vec<String> = masked.iter().map(|s| s.to_string()).collect();
    for c in &t.columns {
        for r in c.masker.reads() {
            if !names.contains(&r) {
                names.push(r);
            }
        }
    }
    let order = t.table.walking_key(&[]).map_or_else(String::new, |k| {
        format!(" ORDER BY {}", k.iter().map(|c| format!("src.{}", ident(c))).collect::<Vec<_>>().join(", "))
    });
    let list = names.iter().map(|n| format!("src.{}::text", ident(n))).collect::<Vec<_>>().join(", ");
    let c = session.client();
    c.batch_execute(
        "BEGIN READ ONLY; SET LOCAL DateStyle = ISO; SET LOCAL bytea_output = hex; SET LOCAL extra_float_digits = 3",
    )
    .await?;
    let rows = c.query(&format!("SELECT {list} FROM {} src{order} LIMIT {limit}", t.table.sql_name()), &[]).await;
    let _ = c.batch_execute("COMMIT").await;
    let rows = rows?;
    let mut out = Vec::new();
    for r in &rows {
        let mut values: Vec<Option<String>> = (0..names.len()).map(|i| r.get(i)).collect();
        let originals = values.clone();
        for (ci, col) in t.columns.iter().enumerate() {
            let mut buf = String::new();
            let masked = {
                let row = super::inplace::RowView { names: &names, values: &values };
                match col.masker.apply(values[ci].as_deref(), &row, &mut buf) {
                    Ok(m) => m.map(|()| buf.clone()),
                    Err(e) => return Ok(Err(format!("{}: {e}", col.column))),
                }
            };
            values[ci] = masked;
        }
        out.push((0..masked.len()).map(|i| [originals[i].clone(), values[i].clone()]).collect());
    }
    Ok(Ok(Preview { table: t.table.qualified(), columns: names[..masked.len()].to_vec(), rows: out }))
}
