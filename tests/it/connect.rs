//! Connection strings, PG* variables, TLS (`sslmode`) and connection failures.

use std::path::Path;

use confiture_engine::pg::ephemeral::{Cluster, ClusterOptions};
use confiture_engine::pg::{self, ConnInfo};
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
use openssl::x509::{X509, X509NameBuilder};

use crate::support::{Project, block_on, fresh_name, scalar, server};

fn key() -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap()
}

fn cert(cn: &str, key: &PKey<Private>, issuer: Option<(&X509, &PKey<Private>)>, ca: bool) -> X509 {
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", cn).unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&BigNum::from_u32(rand_serial()).unwrap().to_asn1_integer().unwrap()).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(issuer.map_or(&name, |(c, _)| c.subject_name())).unwrap();
    b.set_pubkey(key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap()).unwrap();
    b.set_not_after(&Asn1Time::days_from_now(2).unwrap()).unwrap();
    if ca {
        b.append_extension(BasicConstraints::new().critical().ca().build().unwrap()).unwrap();
    } else {
        let san = SubjectAlternativeName::new()
            .dns("localhost")
            .build(&b.x509v3_context(issuer.map(|(c, _)| c.as_ref()), None))
            .unwrap();
        b.append_extension(san).unwrap();
    }
    b.sign(issuer.map_or(key, |(_, k)| k), MessageDigest::sha256()).unwrap();
    b.build()
}

fn rand_serial() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos()
}

fn write_private(path: &Path, bytes: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    // As root, the server runs as `postgres`, which must own its key.
    if nix::unistd::geteuid().is_root() {
        let user = nix::unistd::User::from_name("postgres").unwrap().expect("a postgres user");
        nix::unistd::chown(path, Some(user.uid), Some(user.gid)).unwrap();
    }
}

fn connects(info: &ConnInfo) -> Result<bool, String> {
    block_on(async {
        let session = pg::connect(info, "tls-test").await.map_err(|e| e.to_string())?;
        let row = session
            .client()
            .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
            .await
            .map_err(|e| e.to_string())?;
        Ok(row.get::<_, bool>(0))
    })
}

#[test]
fn sslmode_require_works_and_verify_full_checks_the_ca_and_host() {
    let dir = tempfile::Builder::new().prefix("confiture-tls-").tempdir_in("/tmp").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (ca_key, other_key, server_key) = (key(), key(), key());
    let ca = cert("confiture test CA", &ca_key, None, true);
    let other_ca = cert("some other CA", &other_key, None, true);
    let server_cert = cert("localhost", &server_key, Some((&ca, &ca_key)), false);
    let (crt, pem_key) = (dir.path().join("server.crt"), dir.path().join("server.key"));
    std::fs::write(&crt, server_cert.to_pem().unwrap()).unwrap();
    write_private(&pem_key, &server_key.private_key_to_pem_pkcs8().unwrap());
    let (right, wrong) = (dir.path().join("ca.crt"), dir.path().join("other-ca.crt"));
    std::fs::write(&right, ca.to_pem().unwrap()).unwrap();
    std::fs::write(&wrong, other_ca.to_pem().unwrap()).unwrap();

    let cluster = Cluster::start(&ClusterOptions {
        settings: vec![
            ("ssl".into(), "on".into()),
            ("ssl_cert_file".into(), crt.display().to_string()),
            ("ssl_key_file".into(), pem_key.display().to_string()),
        ],
        hba_lines: Vec::new(),
    })
    .expect("a TLS-enabled cluster starts");
    let base = cluster.tcp_conninfo("postgres");
    let with = |pairs: &[(&str, &str)]| {
        let mut info = base.clone();
        for (k, v) in pairs {
            info.set(k, *v);
        }
        info
    };
    let right = right.display().to_string();
    let wrong = wrong.display().to_string();

    assert_eq!(connects(&with(&[("sslmode", "disable")])), Ok(false));
    assert_eq!(connects(&with(&[("sslmode", "require")])), Ok(true), "require encrypts without checking");
    assert_eq!(connects(&with(&[("sslmode", "prefer")])), Ok(true));
    assert_eq!(
        connects(&with(&[("sslmode", "verify-full"), ("host", "localhost"), ("sslrootcert", &right)])),
        Ok(true),
        "verify-full with the right CA and host name"
    );
    assert_eq!(
        connects(&with(&[("sslmode", "verify-ca"), ("host", "127.0.0.1"), ("sslrootcert", &right)])),
        Ok(true),
        "verify-ca does not check the host name"
    );
    let wrong_ca = connects(&with(&[("sslmode", "verify-full"), ("host", "localhost"), ("sslrootcert", &wrong)]));
    assert!(wrong_ca.as_ref().is_err_and(|e| e.contains("cannot connect")), "a wrong CA is rejected: {wrong_ca:?}");
    let wrong_host = connects(&with(&[("sslmode", "verify-full"), ("host", "127.0.0.1"), ("sslrootcert", &right)]));
    assert!(wrong_host.is_err(), "verify-full checks the host name: {wrong_host:?}");
    let no_root =
        block_on(pg::connect(&with(&[("sslmode", "verify-full"), ("host", "localhost")]).without("sslrootcert"), "t"));
    if std::env::var_os("HOME").is_none_or(|h| !Path::new(&h).join(".postgresql/root.crt").exists()) {
        assert!(no_root.is_err_and(|e| e.to_string().contains("needs a root certificate")));
    }

    // Through the binary: exit 3, and the password is never shown.
    let p = Project::new();
    p.write("db/schema/a.sql", "CREATE TABLE a (id int);\n");
    let info = with(&[("sslmode", "verify-full"), ("host", "localhost"), ("sslrootcert", &wrong), ("dbname", "x")]);
    let out = p.run(&["build", "--database-url", &info.to_secret_string()]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(!out.all().contains(base.get("password").unwrap()), "the password leaked:\n{}", out.all());
    assert!(out.stderr.contains("postgres:***@localhost"), "{}", out.stderr);
}

#[test]
fn connection_failures_exit_3_with_the_password_redacted() {
    let p = Project::new();
    p.write("db/schema/a.sql", "CREATE TABLE a (id int);\n");
    for dsn in
        ["postgresql://alice:hunter2@127.0.0.1:1/db", "host=127.0.0.1 port=1 user=alice password=hunter2 dbname=db"]
    {
        let out = p.run(&["build", "--database-url", dsn, "--format", "json"]);
        assert_eq!(out.code, 3, "{out:?}");
        assert!(!out.all().contains("hunter2"), "{}", out.all());
        let v = out.json();
        let message = v["stages"][0]["error"]["message"].as_str().unwrap();
        assert!(message.contains("cannot connect to postgresql://alice:***@127.0.0.1:1/db"), "{message}");
    }
    let bad = p.run(&["build", "--database-url", "postgresql://alice:hunter2@host:notaport/db"]);
    assert_eq!(bad.code, 5, "{bad:?}");
    assert!(!bad.all().contains("hunter2"));
}

#[test]
fn pg_environment_variables_fill_in_the_rest() {
    let info = server();
    let db = fresh_name("pgenv");
    let p = Project::new();
    p.write("db/schema/a.sql", "CREATE TABLE a (id int);\n");
    let mut cmd = p.cmd(&["build", "--database-url", &format!("dbname={db}")]);
    cmd.env("PGHOST", info.get("host").unwrap())
        .env("PGPORT", info.get("port").unwrap())
        .env("PGUSER", info.get("user").unwrap())
        .env("PGSSLMODE", "disable");
    let out = crate::support::run(&mut cmd);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(scalar(&info.with_dbname(&db).to_secret_string(), "SELECT count(*) FROM a").as_deref(), Some("0"));

    // DATABASE_URL is the fallback target when nothing else names one.
    let db2 = fresh_name("database_url");
    let mut cmd = p.cmd(&["build"]);
    cmd.env("DATABASE_URL", info.with_dbname(&db2).to_secret_string());
    let out = crate::support::run(&mut cmd);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(crate::support::database_exists(&db2));
}
