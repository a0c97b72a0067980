//! A column's masker: a strategy built for the column, applied element by element to arrays,
//! with the output made to fit the column (varchar(n), NOT NULL).

use super::strategy::{ColumnType, Masker, Out, Row, Uniqueness};
use super::value;

/// One column's masking, ready to apply to values.
pub struct ColumnMasker {
    pub strategy: String,
    pub uniqueness: Uniqueness,
    pub column: ColumnType,
    /// The key scope (strategy and parameters, maybe the column): not secret, and it decides
    /// the output together with the key.
    pub scope: String,
    /// For `json`: the paths masked inside the documents.
    pub paths: Vec<String>,
    masker: Box<dyn Masker>,
}

impl ColumnMasker {
    pub fn new(
        strategy: &str,
        uniqueness: Uniqueness,
        column: ColumnType,
        scope: String,
        masker: Box<dyn Masker>,
    ) -> Self {
        ColumnMasker { strategy: strategy.to_string(), uniqueness, column, scope, paths: Vec::new(), masker }
    }

    /// The other columns it reads.
    pub fn reads(&self) -> Vec<String> {
        self.masker.reads()
    }

    /// Mask one value (`None`: NULL, which stays NULL). `Ok(None)`: the output is NULL.
    pub fn apply(&self, input: Option<&str>, row: &dyn Row, out: &mut String) -> Result<Option<()>, String> {
        out.clear();
        let Some(input) = input else { return Ok(None) };
        if self.column.array {
            let masked = value::map_array(input, |element, buf| self.one(element, row, buf))?;
            out.push_str(&masked);
            return Ok(Some(()));
        }
        self.one(input, row, out)
    }

    /// Mask a batch of values of this column (no row context: not for `template`).
    pub fn apply_batch(&self, inputs: &[Option<&str>]) -> Result<Vec<Option<String>>, String> {
        if !self.column.array
            && let Some(result) = self.masker.batch(inputs)
        {
            let mut out = result?;
            for v in out.iter_mut().flatten() {
                self.fit(v)?;
            }
            if self.column.not_null && out.iter().zip(inputs).any(|(o, i)| o.is_none() && i.is_some()) {
                return Err(format!("`{}` produced NULL for a NOT NULL column", self.strategy));
            }
            return Ok(out);
        }
        let mut buf = String::new();
        inputs.iter().map(|i| Ok(self.apply(*i, &super::strategy::NoRow, &mut buf)?.map(|()| buf.clone()))).collect()
    }

    /// Make a value fit the column's length, or say why it cannot.
    fn fit(&self, out: &mut String) -> Result<(), String> {
        if let Some(max) = self.column.max_len
            && out.chars().count() > max
        {
            if self.uniqueness == Uniqueness::Preserved {
                return Err(format!(
                    "`{}` made a value of {} characters for {} and cutting it would break uniqueness; \
                     widen the column or pick a strategy whose output is shorter",
                    self.strategy,
                    out.chars().count(),
                    self.column.display
                ));
            }
            value::truncate_chars(out, max);
        }
        Ok(())
    }

    fn one(&self, input: &str, row: &dyn Row, out: &mut String) -> Result<Option<()>, String> {
        out.clear();
        match self.masker.mask(input, row, out)? {
            Out::Null if self.column.not_null && !self.column.array => Err(format!(
                "`{}` produced NULL for a NOT NULL column; use a strategy that keeps a value",
                self.strategy
            )),
            Out::Null => Ok(None),
            Out::Value => {
                self.fit(out)?;
                Ok(Some(()))
            }
        }
    }
}
