//! What a strategy is: its declaration ([`Meta`]: the SQL types it accepts, its parameters,
//! whether it is deterministic and what it promises about uniqueness) and how it masks one
//! value ([`Masker`]). Each built-in strategy is one file in `strategies/`, declared with
//! [`declare_strategy!`](crate::declare_strategy); its documentation is generated into
//! docs/strategies/ and checked current by a test.

use std::collections::BTreeMap;

use serde::Serialize;

use super::key::Keyring;

/// Whether distinct inputs stay distinct (the WIT's `uniqueness`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Uniqueness {
    /// A bijection: distinct inputs always give distinct outputs (unique indexes keep holding).
    Preserved,
    /// Distinct inputs usually stay distinct, with no guarantee.
    NotGuaranteed,
    /// Many inputs map to one output (a fixed value, a pick from a list).
    Lossy,
}

impl Uniqueness {
    pub fn as_str(self) -> &'static str {
        match self {
            Uniqueness::Preserved => "preserved",
            Uniqueness::NotGuaranteed => "not-guaranteed",
            Uniqueness::Lossy => "lossy",
        }
    }
}

/// The kinds of SQL type a strategy can take, from `pg_type` (arrays are masked element by
/// element, so an array column has its element's class).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TypeClass {
    /// text, varchar, char, citext, name.
    Text,
    /// smallint, integer, bigint.
    Integer,
    /// numeric, real, double precision.
    Numeric,
    Date,
    /// timestamp, timestamptz.
    Timestamp,
    Uuid,
    /// inet.
    Inet,
    /// macaddr, macaddr8.
    Mac,
    Bytea,
    /// json, jsonb.
    Json,
    Boolean,
    /// Anything else (enums, composites, ranges, …).
    Other,
}

impl TypeClass {
    pub fn as_str(self) -> &'static str {
        match self {
            TypeClass::Text => "text",
            TypeClass::Integer => "integer",
            TypeClass::Numeric => "numeric",
            TypeClass::Date => "date",
            TypeClass::Timestamp => "timestamp",
            TypeClass::Uuid => "uuid",
            TypeClass::Inet => "inet",
            TypeClass::Mac => "macaddr",
            TypeClass::Bytea => "bytea",
            TypeClass::Json => "json",
            TypeClass::Boolean => "boolean",
            TypeClass::Other => "other",
        }
    }

    /// From `pg_type.typname` of the column's type (the element type for arrays) and its
    /// `typcategory`.
    pub fn of(typname: &str, category: &str) -> TypeClass {
        match typname {
            "int2" | "int4" | "int8" => TypeClass::Integer,
            "numeric" | "float4" | "float8" => TypeClass::Numeric,
            "date" => TypeClass::Date,
            "timestamp" | "timestamptz" => TypeClass::Timestamp,
            "uuid" => TypeClass::Uuid,
            "inet" => TypeClass::Inet,
            "macaddr" | "macaddr8" => TypeClass::Mac,
            "bytea" => TypeClass::Bytea,
            "json" | "jsonb" => TypeClass::Json,
            "bool" => TypeClass::Boolean,
            _ if category == "S" => TypeClass::Text,
            _ => TypeClass::Other,
        }
    }
}

/// Every class: for strategies that take any type (`keep`, `null`, `constant`).
pub const ANY: &[TypeClass] = &[
    TypeClass::Text,
    TypeClass::Integer,
    TypeClass::Numeric,
    TypeClass::Date,
    TypeClass::Timestamp,
    TypeClass::Uuid,
    TypeClass::Inet,
    TypeClass::Mac,
    TypeClass::Bytea,
    TypeClass::Json,
    TypeClass::Boolean,
    TypeClass::Other,
];

/// What a parameter's value is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ParamKind {
    Bool,
    Int,
    Float,
    Text,
    /// Several text values (`value "a" "b"` as a child, or a comma-separated property).
    List,
}

/// A declared parameter.
#[derive(Clone, Copy, Debug, Serialize, schemars::JsonSchema)]
pub struct ParamSpec {
    pub name: &'static str,
    pub kind: ParamKind,
    /// `None`: required.
    pub default: Option<&'static str>,
    pub doc: &'static str,
}

/// A strategy's declaration: written by [`declare_strategy!`](crate::declare_strategy).
#[derive(Debug)]
pub struct Meta {
    pub name: &'static str,
    pub summary: &'static str,
    pub accepts: &'static [TypeClass],
    pub params: &'static [ParamSpec],
    /// The same key and input always give the same output.
    pub deterministic: bool,
    /// Its uniqueness class with default parameters (a few strategies change it with
    /// parameters: [`Masker::uniqueness`]).
    pub uniqueness: Uniqueness,
    /// Markdown, from the doc comment.
    pub doc: &'static str,
}

impl Meta {
    /// The documentation as Markdown (doc-comment indentation removed).
    pub fn markdown(&self) -> String {
        crate::doc_markdown(self.doc)
    }

    pub fn param(&self, name: &str) -> Option<&'static ParamSpec> {
        self.params.iter().find(|p| p.name == name)
    }

    /// The page in docs/strategies/ and `--explain`.
    pub fn page(&self) -> String {
        let mut s = format!("# {}\n\n{}\n\n", self.name, self.summary);
        s.push_str(&format!(
            "- **Types:** {}\n- **Deterministic:** {}\n- **Uniqueness:** `{}`\n",
            self.accepts.iter().map(|c| format!("`{}`", c.as_str())).collect::<Vec<_>>().join(", "),
            if self.deterministic { "yes (keyed)" } else { "no" },
            self.uniqueness.as_str()
        ));
        if self.params.is_empty() {
            s.push_str("- **Parameters:** none\n");
        } else {
            s.push_str("\n| parameter | type | default | meaning |\n|---|---|---|---|\n");
            for p in self.params {
                let kind = match p.kind {
                    ParamKind::Bool => "bool",
                    ParamKind::Int => "integer",
                    ParamKind::Float => "number",
                    ParamKind::Text => "text",
                    ParamKind::List => "list",
                };
                let default = p.default.map_or_else(|| "required".to_string(), |d| format!("`{d}`"));
                s.push_str(&format!("| `{}` | {} | {} | {} |\n", p.name, kind, default, p.doc));
            }
        }
        s.push('\n');
        s.push_str(&self.markdown());
        s
    }
}

/// A strategy's identity, written by [`declare_strategy!`](crate::declare_strategy).
pub trait Described {
    fn meta(&self) -> &'static Meta;
}

/// A built-in strategy: its declaration and how to make a masker for one column.
pub trait Strategy: Described + Send + Sync {
    /// A masker for `column` with `params` (already checked against the declaration: every
    /// declared parameter has a value, defaults filled in). `key` derives its PRF; the scope
    /// is in `cx`.
    fn build(&self, params: &Params, cx: &BuildCx<'_>) -> Result<Box<dyn Masker>, String>;
}

/// The column a masker is built for.
#[derive(Clone, Debug)]
pub struct ColumnType {
    /// `format_type`, e.g. `character varying(64)`, `text[]`.
    pub display: String,
    /// The class of the type (of its elements, for an array).
    pub class: TypeClass,
    pub array: bool,
    /// Characters, for varchar(n) and char(n).
    pub max_len: Option<usize>,
    pub not_null: bool,
    /// Whole-digit range for integers (`smallint`: 32767).
    pub int_max: Option<i64>,
}

impl ColumnType {
    pub fn text() -> ColumnType {
        ColumnType {
            display: "text".into(),
            class: TypeClass::Text,
            array: false,
            max_len: None,
            not_null: false,
            int_max: None,
        }
    }
}

/// What building a masker may look at.
pub struct BuildCx<'a> {
    pub keys: &'a Keyring,
    /// The key scope: the strategy and its parameters, plus the column when keys are scoped
    /// per column.
    pub scope: String,
    pub column: &'a ColumnType,
    /// The other columns of the table, for `template`.
    pub row_columns: &'a [String],
    /// The project root (WASM plugins' paths are relative to it).
    pub root: &'a std::path::Path,
}

impl BuildCx<'_> {
    pub fn prf(&self) -> super::key::Prf {
        self.keys.prf(&self.scope)
    }

    pub fn prp(&self) -> super::prp::Prp {
        super::prp::Prp::new(self.prf())
    }
}

/// The values of the row being masked, by column (masked values where a column is masked
/// before this one, originals otherwise).
pub trait Row {
    fn get(&self, column: &str) -> Option<Option<&str>>;
}

/// No other columns.
pub struct NoRow;

impl Row for NoRow {
    fn get(&self, _: &str) -> Option<Option<&str>> {
        None
    }
}

/// What a masker produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Out {
    /// The value is in the output buffer.
    Value,
    Null,
}

/// Masks values of one column. Inputs are PostgreSQL's text form of non-NULL values (NULL
/// stays NULL without a call); the output is written to `out` (cleared by the caller).
pub trait Masker: Send + Sync {
    fn mask(&self, input: &str, row: &dyn Row, out: &mut String) -> Result<Out, String>;
    /// Its uniqueness class with the parameters it was built with.
    fn uniqueness(&self) -> Option<Uniqueness> {
        None
    }
    /// The other columns it reads (`template`): they are read with the row.
    fn reads(&self) -> Vec<String> {
        Vec::new()
    }
    /// Mask many values in one call, in order (`None`: NULL), for maskers that pay per call
    /// (a WASM plugin crosses the sandbox once per batch). `None`: not supported, the caller
    /// masks value by value.
    fn batch(&self, _inputs: &[Option<&str>]) -> Option<Result<Vec<Option<String>>, String>> {
        None
    }
}

/// A parameter value.
#[derive(Clone, Debug, PartialEq)]
pub enum Param {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    List(Vec<String>),
}

/// Checked parameters, defaults filled in.
#[derive(Clone, Debug, Default)]
pub struct Params {
    values: BTreeMap<String, Param>,
    /// Sub-rules of `json` (path → strategy and its params).
    pub paths: Vec<(String, String, Params)>,
    /// A WASM plugin's own `param` settings, passed through.
    pub plugin: Vec<(String, String)>,
}

impl Params {
    pub fn insert(&mut self, name: &str, value: Param) {
        self.values.insert(name.to_string(), value);
    }

    pub fn get(&self, name: &str) -> Option<&Param> {
        self.values.get(name)
    }

    pub fn bool(&self, name: &str) -> bool {
        matches!(self.values.get(name), Some(Param::Bool(true)))
    }

    pub fn int(&self, name: &str) -> i64 {
        match self.values.get(name) {
            Some(Param::Int(i)) => *i,
            Some(Param::Float(f)) => *f as i64,
            _ => 0,
        }
    }

    pub fn float(&self, name: &str) -> f64 {
        match self.values.get(name) {
            Some(Param::Float(f)) => *f,
            Some(Param::Int(i)) => *i as f64,
            _ => 0.0,
        }
    }

    pub fn text(&self, name: &str) -> &str {
        match self.values.get(name) {
            Some(Param::Text(s)) => s,
            _ => "",
        }
    }

    pub fn list(&self, name: &str) -> &[String] {
        match self.values.get(name) {
            Some(Param::List(l)) => l,
            _ => &[],
        }
    }

    /// Whether the user gave it (or it has a default).
    pub fn has(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// A canonical text of the values, for key scopes: other parameters, other outputs.
    pub fn canonical(&self) -> String {
        let mut s = String::new();
        for (k, v) in &self.values {
            s.push_str(k);
            s.push('=');
            match v {
                Param::Bool(b) => s.push_str(if *b { "true" } else { "false" }),
                Param::Int(i) => s.push_str(&i.to_string()),
                Param::Float(f) => s.push_str(&f.to_string()),
                Param::Text(t) => s.push_str(&format!("{t:?}")),
                Param::List(l) => s.push_str(&format!("{l:?}")),
            }
            s.push(';');
        }
        s
    }

    /// Parse `value` as the declared kind of `spec`.
    pub fn parse(spec: &ParamSpec, value: &str) -> Result<Param, String> {
        match spec.kind {
            ParamKind::Bool => match value {
                "true" | "#true" | "yes" | "on" => Ok(Param::Bool(true)),
                "false" | "#false" | "no" | "off" => Ok(Param::Bool(false)),
                _ => Err(format!("`{}` is true or false, not `{value}`", spec.name)),
            },
            ParamKind::Int => {
                value.parse().map(Param::Int).map_err(|_| format!("`{}` is an integer, not `{value}`", spec.name))
            }
            ParamKind::Float => {
                value.parse().map(Param::Float).map_err(|_| format!("`{}` is a number, not `{value}`", spec.name))
            }
            ParamKind::Text => Ok(Param::Text(value.to_string())),
            ParamKind::List => Ok(Param::List(value.split(',').map(|s| s.trim().to_string()).collect())),
        }
    }

    /// Defaults for what was not given; an error names a missing required parameter.
    pub fn complete(&mut self, meta: &Meta) -> Result<(), String> {
        for spec in meta.params {
            if self.values.contains_key(spec.name) {
                continue;
            }
            match spec.default {
                Some(d) => {
                    let v = Params::parse(spec, d).expect("declared defaults parse");
                    self.values.insert(spec.name.to_string(), v);
                }
                None => return Err(format!("`{}` needs `{}`: {}", meta.name, spec.name, spec.doc)),
            }
        }
        Ok(())
    }
}

/// Declare a strategy: its struct, and its [`Meta`] from the doc comment and the fields.
#[macro_export]
macro_rules! declare_strategy {
    (
        $(#[doc = $doc:literal])*
        pub struct $name:ident {
            name: $id:literal,
            summary: $summary:literal,
            accepts: $accepts:expr,
            deterministic: $det:literal,
            uniqueness: $uniq:ident,
            params: [$( ($pname:literal, $pkind:ident, $pdefault:expr, $pdoc:literal) ),* $(,)?] $(,)?
        }
    ) => {
        $(#[doc = $doc])*
        pub struct $name;

        impl $name {
            pub const META: $crate::anonymize::strategy::Meta = $crate::anonymize::strategy::Meta {
                name: $id,
                summary: $summary,
                accepts: $accepts,
                params: &[$($crate::anonymize::strategy::ParamSpec {
                    name: $pname,
                    kind: $crate::anonymize::strategy::ParamKind::$pkind,
                    default: $pdefault,
                    doc: $pdoc,
                }),*],
                deterministic: $det,
                uniqueness: $crate::anonymize::strategy::Uniqueness::$uniq,
                doc: concat!($($doc, "\n"),*),
            };
        }

        impl $crate::anonymize::strategy::Described for $name {
            fn meta(&self) -> &'static $crate::anonymize::strategy::Meta {
                &Self::META
            }
        }
    };
}
