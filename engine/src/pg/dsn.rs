//! Connection strings as libpq understands them: `postgresql://` URLs and `key=value` strings,
//! completed from `PG*` environment variables and `~/.pgpass`, and always shown redacted.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

/// A parse error. Never contains the password.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid connection string: {0}")]
pub struct DsnError(pub String);

/// The connection parameters libpq knows and we support, with the environment variable that
/// provides each one's default.
const KEYWORDS: &[(&str, Option<&str>)] = &[
    ("host", Some("PGHOST")),
    ("hostaddr", Some("PGHOSTADDR")),
    ("port", Some("PGPORT")),
    ("dbname", Some("PGDATABASE")),
    ("user", Some("PGUSER")),
    ("password", Some("PGPASSWORD")),
    ("passfile", Some("PGPASSFILE")),
    ("connect_timeout", Some("PGCONNECT_TIMEOUT")),
    ("options", Some("PGOPTIONS")),
    ("application_name", Some("PGAPPNAME")),
    ("fallback_application_name", None),
    ("keepalives", None),
    ("keepalives_idle", None),
    ("keepalives_interval", None),
    ("keepalives_count", None),
    ("tcp_user_timeout", None),
    ("sslmode", Some("PGSSLMODE")),
    ("sslrootcert", Some("PGSSLROOTCERT")),
    ("sslcert", Some("PGSSLCERT")),
    ("sslkey", Some("PGSSLKEY")),
    ("target_session_attrs", Some("PGTARGETSESSIONATTRS")),
    ("channel_binding", Some("PGCHANNELBINDING")),
    ("load_balance_hosts", Some("PGLOADBALANCEHOSTS")),
    ("client_encoding", Some("PGCLIENTENCODING")),
];

/// `sslmode`, with libpq's six values (`allow` behaves as `prefer`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> Result<Self, DsnError> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "allow" | "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(DsnError(format!(
                    "invalid sslmode `{other}` (use disable, allow, prefer, require, verify-ca or verify-full)"
                )));
            }
        })
    }
}

/// Parsed connection parameters. `Display` shows them with the password redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnInfo {
    params: BTreeMap<String, String>,
    /// The database name was not in the connection string: [`ConnInfo::with_defaults`] took it
    /// from `PGDATABASE` or the user name, as libpq does.
    dbname_defaulted: bool,
}

impl fmt::Debug for ConnInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnInfo({self})")
    }
}

impl ConnInfo {
    /// Parse a URL or key=value string. Nothing is taken from the environment yet.
    pub fn parse(dsn: &str) -> Result<Self, DsnError> {
        let dsn = dsn.trim();
        let params = if dsn.starts_with("postgresql://") || dsn.starts_with("postgres://") {
            parse_url(dsn)?
        } else {
            parse_key_values(dsn)?
        };
        for key in params.keys() {
            if !KEYWORDS.iter().any(|(k, _)| k == key) {
                // Name the option only when it is surely a misspelt keyword: an unquoted value
                // with a space in it (`password=a b=c`) would otherwise put part of it on screen.
                let known: Vec<&str> = KEYWORDS.iter().map(|(k, _)| *k).collect();
                return Err(DsnError(match crate::kdl::decode::closest(key, &known) {
                    Some(k) => format!("unknown connection option (did you mean `{k}`?)"),
                    None => "unknown connection option (values with spaces must be quoted: password='a b')".into(),
                }));
            }
        }
        let info = ConnInfo { params, dbname_defaulted: false };
        info.validate()?;
        Ok(info)
    }

    /// Fill unset parameters from `PG*` variables, then libpq's defaults, then `~/.pgpass`, and
    /// check the result (a bad `PGSSLMODE` is an error, as in libpq, not a silent `prefer`).
    pub fn with_defaults(mut self) -> Result<Self, DsnError> {
        self.fill_from(&|k| std::env::var(k).ok());
        self.validate()?;
        Ok(self)
    }

    fn fill_from(&mut self, var: &dyn Fn(&str) -> Option<String>) {
        if !self.params.contains_key("dbname") {
            self.dbname_defaulted = true;
        }
        for (key, env) in KEYWORDS {
            if self.params.contains_key(*key) {
                continue;
            }
            if let Some(value) = env.and_then(var).filter(|v| !v.is_empty()) {
                self.params.insert((*key).into(), value);
            }
        }
        if !self.params.contains_key("host") && !self.params.contains_key("hostaddr") {
            self.params.insert("host".into(), default_host());
        }
        if !self.params.contains_key("user") {
            self.params.insert("user".into(), current_user());
        }
        if !self.params.contains_key("dbname") {
            let user = self.params["user"].clone();
            self.params.insert("dbname".into(), user);
            self.dbname_defaulted = true;
        }
        if self.params.get("password").is_some_and(|p| p.is_empty()) {
            // libpq treats an empty password as none given.
            self.params.remove("password");
        }
        if !self.params.contains_key("password") {
            let home = var("HOME");
            let passfile =
                self.params.get("passfile").map(PathBuf::from).or_else(|| home.map(|h| Path::new(&h).join(".pgpass")));
            if let Some(password) = passfile.and_then(|p| self.pgpass_lookup(&p)) {
                self.params.insert("password".into(), password);
            }
        }
    }

    fn validate(&self) -> Result<(), DsnError> {
        if let Some(mode) = self.params.get("sslmode") {
            SslMode::parse(mode)?;
        }
        if self.get("sslrootcert") == Some("system")
            && matches!(self.get("sslmode"), Some("disable" | "allow" | "prefer" | "require"))
        {
            return Err(DsnError(format!(
                "weak sslmode `{}` may not be used with sslrootcert=system (use verify-full)",
                self.params["sslmode"]
            )));
        }
        for port in self.params.get("port").into_iter().flat_map(|p| p.split(',')) {
            if !port.is_empty() && port.parse::<u16>().is_err() {
                return Err(DsnError("invalid port: not a number from 1 to 65535".into()));
            }
        }
        for key in ["connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count"] {
            if let Some(t) = self.params.get(key)
                && t.parse::<u64>().is_err()
            {
                return Err(DsnError(format!("invalid {key}: not a whole number")));
            }
        }
        Ok(())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }

    /// Set a parameter (used to point at another database on the same server).
    pub fn set(&mut self, key: &str, value: impl Into<String>) -> &mut Self {
        if key == "dbname" {
            self.dbname_defaulted = false;
        }
        self.params.insert(key.into(), value.into());
        self
    }

    /// Whether the connection string named its database, rather than leaving libpq to default
    /// it to `PGDATABASE` or the user name. A command that drops or rewrites a database needs a
    /// name that was written down.
    pub fn names_database(&self) -> bool {
        self.params.contains_key("dbname") && !self.dbname_defaulted
    }

    /// Whether the two may reach the same database: the same database name, and a server in
    /// common — any host or address of one (case-insensitive) with its port (as a number) equal
    /// to any of the other's. Used to recognise a protected database behind another spelling of
    /// its connection string; it errs on the side of "the same".
    pub fn same_database(&self, other: &ConnInfo) -> bool {
        fn servers(c: &ConnInfo) -> Vec<(String, u16)> {
            let ports: Vec<u16> = c
                .get("port")
                .map(|p| p.split(',').map(|p| p.trim().parse().unwrap_or(5432)).collect())
                .unwrap_or_default();
            let port = |i: usize| ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            let mut out = Vec::new();
            for key in ["host", "hostaddr"] {
                for (i, h) in c.get(key).into_iter().flat_map(|h| h.split(',')).enumerate() {
                    let h = h.trim().trim_end_matches('/').to_ascii_lowercase();
                    out.push((if h.is_empty() { "localhost".to_string() } else { h }, port(i)));
                }
            }
            out
        }
        if self.get("dbname") != other.get("dbname") {
            return false;
        }
        let theirs = servers(other);
        servers(self).iter().any(|s| theirs.contains(s))
    }

    pub fn without(mut self, key: &str) -> Self {
        self.params.remove(key);
        self
    }

    /// The same server, another database.
    pub fn with_dbname(&self, dbname: &str) -> Self {
        let mut other = self.clone();
        other.set("dbname", dbname);
        other
    }

    pub fn dbname(&self) -> Option<&str> {
        self.get("dbname")
    }

    /// The sslmode: as given, else `verify-full` with `sslrootcert=system` (as libpq 16), else
    /// `prefer`. Values are validated when the connection string is parsed.
    pub fn sslmode(&self) -> SslMode {
        match self.get("sslmode") {
            Some(m) => SslMode::parse(m).unwrap_or(SslMode::VerifyFull),
            None if self.get("sslrootcert") == Some("system") => SslMode::VerifyFull,
            None => SslMode::Prefer,
        }
    }

    /// The full connection string, password included: only for handing to a connection.
    pub fn to_secret_string(&self) -> String {
        self.params.iter().map(|(k, v)| format!("{k}={}", quote_value(v))).collect::<Vec<_>>().join(" ")
    }

    /// Convert into a tokio-postgres config; sslmode is applied by the caller's TLS connector.
    pub fn to_config(&self) -> Result<tokio_postgres::Config, DsnError> {
        let mut c = tokio_postgres::Config::new();
        let hosts: Vec<&str> = self.get("host").map(|h| h.split(',').collect()).unwrap_or_default();
        for host in &hosts {
            c.host(*host);
        }
        if let Some(addrs) = self.get("hostaddr") {
            for addr in addrs.split(',') {
                let ip = addr.parse().map_err(|_| DsnError(format!("invalid hostaddr `{addr}`")))?;
                c.hostaddr(ip);
            }
        }
        let ports: Vec<u16> = match self.get("port") {
            Some(p) => p.split(',').map(|p| p.parse().unwrap_or(5432)).collect(),
            None => vec![5432],
        };
        for port in ports {
            c.port(port);
        }
        if let Some(v) = self.get("user") {
            c.user(v);
        }
        if let Some(v) = self.get("password") {
            c.password(v);
        }
        if let Some(v) = self.get("dbname") {
            c.dbname(v);
        }
        if let Some(v) = self.get("options") {
            c.options(v);
        }
        match self.get("application_name").or(self.get("fallback_application_name")) {
            Some(v) => c.application_name(v),
            None => c.application_name("confiture"),
        };
        if let Some(v) = self.get("connect_timeout").and_then(|t| t.parse::<u64>().ok()).filter(|t| *t > 0) {
            c.connect_timeout(std::time::Duration::from_secs(v.max(2)));
        }
        if let Some(v) = self.get("keepalives") {
            c.keepalives(v != "0");
        }
        if let Some(v) = self.get("keepalives_idle").and_then(|t| t.parse().ok()) {
            c.keepalives_idle(std::time::Duration::from_secs(v));
        }
        if let Some(v) = self.get("target_session_attrs") {
            c.target_session_attrs(match v {
                "read-write" => tokio_postgres::config::TargetSessionAttrs::ReadWrite,
                "any" => tokio_postgres::config::TargetSessionAttrs::Any,
                other => return Err(DsnError(format!("unsupported target_session_attrs `{other}` (any, read-write)"))),
            });
        }
        if let Some(v) = self.get("channel_binding") {
            c.channel_binding(match v {
                "disable" => tokio_postgres::config::ChannelBinding::Disable,
                "prefer" => tokio_postgres::config::ChannelBinding::Prefer,
                "require" => tokio_postgres::config::ChannelBinding::Require,
                other => return Err(DsnError(format!("invalid channel_binding `{other}`"))),
            });
        }
        if let Some(v) = self.get("load_balance_hosts") {
            c.load_balance_hosts(match v {
                "disable" => tokio_postgres::config::LoadBalanceHosts::Disable,
                "random" => tokio_postgres::config::LoadBalanceHosts::Random,
                other => return Err(DsnError(format!("invalid load_balance_hosts `{other}`"))),
            });
        }
        c.ssl_mode(match self.sslmode() {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        });
        Ok(c)
    }

    fn pgpass_lookup(&self, path: &Path) -> Option<String> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path).ok()?;
        if meta.mode() & 0o077 != 0 {
            tracing::warn!(
                "password file {} has group or world access; permissions should be u=rw (0600) or less",
                path.display()
            );
            return None;
        }
        let content = std::fs::read_to_string(path).ok()?;
        // libpq looks up each host in turn; we connect with one password, so the first host decides.
        let host = self.get("host").or(self.get("hostaddr")).and_then(|h| h.split(',').next()).unwrap_or("localhost");
        let host = if host.starts_with('/') { "localhost" } else { host };
        let port = self.get("port").and_then(|p| p.split(',').next()).filter(|p| !p.is_empty()).unwrap_or("5432");
        let db = self.get("dbname").unwrap_or("");
        let user = self.get("user").unwrap_or("");
        content.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
            let fields = split_pgpass_line(line);
            if fields.len() != 5 {
                return None;
            }
            let matches = |pattern: &str, value: &str| pattern == "*" || pattern == value;
            (matches(&fields[0], host)
                && matches(&fields[1], port)
                && matches(&fields[2], db)
                && matches(&fields[3], user))
            .then(|| fields[4].clone())
        })
    }
}

fn split_pgpass_line(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    fields.last_mut().expect("fields is never empty").push(next);
                }
            }
            ':' => fields.push(String::new()),
            c => fields.last_mut().expect("fields is never empty").push(c),
        }
    }
    fields
}

fn default_host() -> String {
    for dir in ["/var/run/postgresql", "/tmp"] {
        if Path::new(dir).is_dir() {
            return dir.into();
        }
    }
    "localhost".into()
}

fn current_user() -> String {
    nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "postgres".into())
}

const URL_PART: &AsciiSet = &CONTROLS.add(b' ').add(b'/').add(b'@').add(b':').add(b'?').add(b'#').add(b'%').add(b'&');

impl fmt::Display for ConnInfo {
    /// A URL with the password replaced by `***` — the only way a DSN is ever shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "postgresql://")?;
        if let Some(user) = self.get("user") {
            write!(f, "{}", utf8_percent_encode(user, URL_PART))?;
            if self.params.contains_key("password") {
                write!(f, ":***")?;
            }
            write!(f, "@")?;
        }
        let hosts: Vec<&str> =
            self.get("host").or(self.get("hostaddr")).map(|h| h.split(',').collect()).unwrap_or_default();
        let ports: Vec<&str> = self.get("port").map(|p| p.split(',').collect()).unwrap_or_default();
        for (i, host) in hosts.iter().enumerate() {
            if i > 0 {
                write!(f, ",")?;
            }
            write!(f, "{}", utf8_percent_encode(host, URL_PART))?;
            if let Some(port) = ports.get(i).or(ports.first()) {
                write!(f, ":{port}")?;
            }
        }
        write!(f, "/")?;
        if let Some(db) = self.get("dbname") {
            write!(f, "{}", utf8_percent_encode(db, URL_PART))?;
        }
        let mut sep = '?';
        for (k, v) in &self.params {
            if matches!(
                k.as_str(),
                "user"
                    | "password"
                    | "host"
                    | "hostaddr"
                    | "port"
                    | "dbname"
                    | "application_name"
                    | "fallback_application_name"
                    | "passfile"
            ) {
                continue;
            }
            write!(f, "{sep}{k}={}", utf8_percent_encode(v, URL_PART))?;
            sep = '&';
        }
        Ok(())
    }
}

fn decode(part: &str, what: &str) -> Result<String, DsnError> {
    percent_decode_str(part)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| DsnError(format!("the {what} is not valid UTF-8 after percent-decoding")))
}

fn parse_url(dsn: &str) -> Result<BTreeMap<String, String>, DsnError> {
    let rest = dsn.split_once("://").map(|(_, r)| r).unwrap_or(dsn);
    let mut params = BTreeMap::new();
    // As libpq: user credentials end at the first `@` before any `/` (so `?` may appear in a
    // password, `/` and `@` must be percent-encoded).
    let rest = match rest.find(['@', '/']) {
        Some(at) if rest.as_bytes()[at] == b'@' => {
            let userinfo = &rest[..at];
            match userinfo.split_once(':') {
                Some((user, password)) => {
                    if !user.is_empty() {
                        params.insert("user".into(), decode(user, "user name")?);
                    }
                    params.insert("password".into(), decode(password, "password")?);
                }
                None if !userinfo.is_empty() => {
                    params.insert("user".into(), decode(userinfo, "user name")?);
                }
                None => {}
            }
            &rest[at + 1..]
        }
        _ => rest,
    };
    let host_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let hosts = &rest[..host_end];
    let rest = &rest[host_end..];
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    if !hosts.is_empty() {
        let mut host_list = Vec::new();
        let mut port_list = Vec::new();
        for spec in hosts.split(',') {
            let (host, port) = split_host_port(spec)?;
            host_list.push(decode(host, "host")?);
            port_list.push(port.to_string());
        }
        if host_list.iter().any(|h| !h.is_empty()) {
            params.insert("host".into(), host_list.join(","));
        }
        if port_list.iter().any(|p| !p.is_empty()) {
            if port_list.iter().any(|p| !p.is_empty() && p.parse::<u16>().is_err()) {
                return Err(DsnError(
                    "invalid port in URL (a `/` or `@` in a password must be percent-encoded: %2F, %40)".into(),
                ));
            }
            params.insert("port".into(), port_list.join(","));
        }
    }
    if let Some(db) = path.strip_prefix('/').filter(|p| !p.is_empty()) {
        params.insert("dbname".into(), decode(db, "database name")?);
    }
    for pair in query.into_iter().flat_map(|q| q.split('&')).filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').ok_or_else(|| DsnError("a URL parameter has no `=value`".into()))?;
        let key = decode(k, "parameter name")?;
        let key = if key == "ssl" && v == "true" { "sslmode".to_string() } else { key };
        let value = if key == "sslmode" && v == "true" { "require".to_string() } else { decode(v, "parameter")? };
        params.insert(key, value);
    }
    Ok(params)
}

fn split_host_port(spec: &str) -> Result<(&str, &str), DsnError> {
    if let Some(rest) = spec.strip_prefix('[') {
        let end = rest.find(']').ok_or_else(|| DsnError("unterminated `[` in IPv6 host".into()))?;
        let host = &rest[..end];
        let after = &rest[end + 1..];
        let port = after.strip_prefix(':').unwrap_or("");
        return Ok((host, port));
    }
    Ok(match spec.rsplit_once(':') {
        Some((h, p)) => (h, p),
        None => (spec, ""),
    })
}

fn parse_key_values(dsn: &str) -> Result<BTreeMap<String, String>, DsnError> {
    let mut params = BTreeMap::new();
    let mut chars = dsn.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(DsnError(
                "expected key=value pairs or a postgresql:// URL (values with spaces must be quoted: password='a b')"
                    .into(),
            ));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '\'' => {
                        closed = true;
                        break;
                    }
                    c => value.push(c),
                }
            }
            if !closed {
                return Err(DsnError(format!("the quoted value of `{key}` has no closing quote")));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                chars.next();
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        params.insert(key, value);
    }
    Ok(params)
}

fn quote_value(v: &str) -> String {
    if !v.is_empty() && !v.chars().any(|c| c.is_whitespace() || c == '\'' || c == '\\') {
        return v.to_string();
    }
    format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
}

pub use crate::redact::{mask, redact};

#[cfg(test)]
mod tests {
    use super::*;

    fn params(dsn: &str) -> Vec<(String, String)> {
        ConnInfo::parse(dsn).unwrap().params.into_iter().collect()
    }

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn parses_urls_and_key_values() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("postgresql://", &[]),
            ("postgres://localhost", &[("host", "localhost")]),
            (
                "postgresql://alice:s3cr%40t@db.example.com:6432/shop?sslmode=verify-full&application_name=x",
                &[
                    ("application_name", "x"),
                    ("dbname", "shop"),
                    ("host", "db.example.com"),
                    ("password", "s3cr@t"),
                    ("port", "6432"),
                    ("sslmode", "verify-full"),
                    ("user", "alice"),
                ],
            ),
            ("postgresql://%2Fvar%2Frun%2Fpostgresql/app", &[("dbname", "app"), ("host", "/var/run/postgresql")]),
            ("postgresql://[::1]:5433/x", &[("dbname", "x"), ("host", "::1"), ("port", "5433")]),
            ("postgresql://u:pa?ss@h/db", &[("dbname", "db"), ("host", "h"), ("password", "pa?ss"), ("user", "u")]),
            ("postgresql://h?sslmode=disable", &[("host", "h"), ("sslmode", "disable")]),
            ("postgresql://a:1,b:2/x", &[("dbname", "x"), ("host", "a,b"), ("port", "1,2")]),
            ("postgresql:///app?host=/tmp", &[("dbname", "app"), ("host", "/tmp")]),
            ("host=localhost port=5432 dbname=app", &[("dbname", "app"), ("host", "localhost"), ("port", "5432")]),
            (
                "host = /tmp  user='o\\'brien' password='a b' dbname=x",
                &[("dbname", "x"), ("host", "/tmp"), ("password", "a b"), ("user", "o'brien")],
            ),
        ];
        for (dsn, want) in cases {
            assert_eq!(params(dsn), kv(want), "{dsn}");
        }
    }

    #[test]
    fn rejects_bad_input_without_echoing_passwords() {
        let cases = [
            ("postgresql://u:hunter2@h:99999/db", "invalid port"),
            ("postgresql://alice:hunter/2@db/app", "percent-encoded"),
            ("host=x bogus=1", "unknown connection option"),
            ("host=x sslmod=require", "did you mean `sslmode`?"),
            ("password=a hunter2=c", "values with spaces must be quoted"),
            ("password=my hunter2 dbname=x", "values with spaces must be quoted"),
            ("host=x sslmode=maybe", "invalid sslmode"),
            ("host", "expected key=value"),
            ("password='hunter2", "no closing quote"),
            ("host=h sslrootcert=system sslmode=require", "weak sslmode"),
        ];
        for (dsn, want) in cases {
            let err = ConnInfo::parse(dsn).unwrap_err().to_string();
            assert!(err.contains(want), "{dsn}: {err}");
            assert!(!err.contains("hunter2"), "{dsn}: {err}");
        }
    }

    #[test]
    fn displays_redacted() {
        let cases = [
            ("postgresql://alice:pw@h:5432/db", "postgresql://alice:***@h:5432/db"),
            ("host=/tmp port=5433 user=bob dbname=x sslmode=require", "postgresql://bob@%2Ftmp:5433/x?sslmode=require"),
        ];
        for (dsn, want) in cases {
            assert_eq!(ConnInfo::parse(dsn).unwrap().to_string(), want);
        }
    }

    #[test]
    fn redacts_free_text() {
        let cases = [
            ("failed: postgresql://u:pw@h/db refused", "failed: postgresql://u:***@h/db refused"),
            ("host=h password=pw user=u", "host=h password=*** user=u"),
            ("password=", "password="),
            ("password = 'a b\\' c' user=u", "password = *** user=u"),
            ("nothing here", "nothing here"),
            ("mail bob@example.com today", "mail bob@example.com today"),
            ("url postgresql://u@h/db", "url postgresql://u@h/db"),
            // Strings that do not parse as URLs, and passwords with quotes, `/`, `@`, `:`.
            ("postgresql://u:pa/ss@h/db", "postgresql://u:***@h/db"),
            ("u:secret@h/db", "u:***@h/db"),
            ("DATABASE_URL=u:secret@h/db", "DATABASE_URL=u:***@h/db"),
            ("`postgresql://u:pa'ss@h/db` is bad", "`postgresql://u:***@h/db` is bad"),
            ("\"postgresql://u:pa\"ss@h/db\"", "\"postgresql://u:***@h/db\""),
            ("postgresql://u:p@ss:w@h:5432/db", "postgresql://u:***@h:5432/db"),
            ("'u:it''s@h'", "'u:***@h'"),
            // A password holding `://`; two connection strings in one word.
            ("postgresql://u:a://b@h/db", "postgresql://u:***@h/db"),
            ("postgresql://a:p1@h/x,postgresql://b:p2@h/y", "postgresql://a:***@h/y"),
            ("user:pw@host,postgresql://x@y", "user:***@y"),
            ("postgresql://h/db?x=a@b", "postgresql://h/db?x=a@b"),
        ];
        for (text, want) in cases {
            assert_eq!(redact(text), want, "{text}");
        }
    }

    #[test]
    fn recognises_the_same_database_spelt_differently() {
        let same = |a: &str, b: &str| ConnInfo::parse(a).unwrap().same_database(&ConnInfo::parse(b).unwrap());
        let prod = "host=db.prod.example.com,replica.example.com port=5432,6432 hostaddr=10.0.0.5 dbname=app";
        for other in [
            "postgresql://DB.prod.example.com/app",
            "postgresql://u:x@db.prod.example.com:05432/app",
            "hostaddr=10.0.0.5 dbname=app",
            "postgresql://replica.example.com:6432/app",
        ] {
            assert!(same(prod, other), "{other}");
        }
        for other in [
            "postgresql://db.prod.example.com/other",
            "postgresql://staging.example.com/app",
            "postgresql://replica.example.com:5432/app",
        ] {
            assert!(!same(prod, other), "{other}");
        }
    }

    #[test]
    fn masks_keeping_offsets() {
        let text = "url=\"postgresql://u:pässword@h/db\" password='x y' ok";
        let masked = mask(text);
        assert_eq!(masked.len(), text.len());
        assert_eq!(masked, "url=\"postgresql://u:*********@h/db\" password=***** ok");
    }

    #[test]
    fn pgpass_lines_split_on_unescaped_colons() {
        assert_eq!(split_pgpass_line("h:5432:*:u:p\\:w"), vec!["h", "5432", "*", "u", "p:w"]);
    }
}
