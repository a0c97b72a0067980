//! The diff engine on a schema with every kind of object it models, against a real PostgreSQL:
//! introspection sees each kind, plans converge both ways, and plans order and flag what they must.

use confiture_engine::pg::{self, Session, quote_ident, testing};
use confiture_plugins::catalog::{self, Model};
use confiture_plugins::diff;

const RICH: &str = r#"
CREATE ROLE diff_reader;
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;
CREATE SCHEMA app;
COMMENT ON SCHEMA app IS 'the application';
CREATE TYPE app.mood AS ENUM ('sad', 'ok', 'happy');
CREATE TYPE app.pair AS (a integer, b text COLLATE "C");
CREATE DOMAIN app.email AS text NOT NULL DEFAULT 'x@y.z' CONSTRAINT email_at CHECK (VALUE LIKE '%@%');
CREATE SEQUENCE app.counter AS integer START WITH 10 INCREMENT BY 5 CACHE 2;
CREATE TABLE app.users (
    id bigint GENERATED ALWAYS AS IDENTITY (START WITH 100) PRIMARY KEY,
    email app.email,
    name text COLLATE "C" NOT NULL,
    mood app.mood DEFAULT 'ok',
    score integer DEFAULT nextval('app.counter'),
    name_len integer GENERATED ALWAYS AS (length(name)) STORED,
    CONSTRAINT users_name_len CHECK (length(name) < 100) NOT VALID,
    UNIQUE NULLS NOT DISTINCT (email)
);
ALTER SEQUENCE app.counter OWNED BY app.users.score;
COMMENT ON TABLE app.users IS 'people';
COMMENT ON COLUMN app.users.email IS 'where to write';
CREATE UNLOGGED TABLE app.sessions (id serial PRIMARY KEY, user_id bigint NOT NULL, during tstzrange,
    EXCLUDE USING gist (during WITH &&));
ALTER TABLE app.sessions ADD CONSTRAINT sessions_user FOREIGN KEY (user_id) REFERENCES app.users (id)
    ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED;
CREATE INDEX users_lower_name ON app.users (lower(name) text_pattern_ops) INCLUDE (mood) WHERE mood <> 'sad';
CREATE INDEX users_name_trgm ON app.users USING gin (name gin_trgm_ops);
CREATE TABLE app.events (id bigint NOT NULL, at date NOT NULL, body jsonb) PARTITION BY RANGE (at);
CREATE TABLE app.events_2026 PARTITION OF app.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE INDEX events_at ON app.events (at);
CREATE VIEW app.happy_users AS SELECT id, name FROM app.users WHERE mood = 'happy';
CREATE MATERIALIZED VIEW app.user_counts AS SELECT mood, count(*) AS n FROM app.users GROUP BY mood;
CREATE UNIQUE INDEX user_counts_mood ON app.user_counts (mood);
CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE PROCEDURE app.noop(n integer) LANGUAGE sql AS $$ SELECT n $$;
CREATE FUNCTION app.add(a integer, b integer) RETURNS integer LANGUAGE sql IMMUTABLE AS $$ SELECT a + b $$;
CREATE AGGREGATE app.total(integer) (SFUNC = app.add, STYPE = integer, INITCOND = '0');
CREATE TRIGGER users_touch BEFORE UPDATE ON app.users FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name)
    EXECUTE FUNCTION app.touch();
ALTER TABLE app.users ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.users FORCE ROW LEVEL SECURITY;
CREATE POLICY users_self ON app.users AS RESTRICTIVE FOR SELECT TO diff_reader USING (mood <> 'sad');
GRANT USAGE ON SCHEMA app TO diff_reader;
GRANT SELECT, UPDATE (name) ON app.users TO diff_reader;
GRANT SELECT ON app.happy_users TO diff_reader WITH GRANT OPTION;
REVOKE EXECUTE ON FUNCTION app.add(integer, integer) FROM PUBLIC;
ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT SELECT ON TABLES TO diff_reader;
"#;

async fn database(label: &str, sql: &str) -> (String, Session) {
    let server = testing::server();
    let admin = pg::connect(&server, "diff-tests").await.unwrap();
    let name = format!("diff_{}_{label}", std::process::id());
    admin.client().batch_execute(&format!("DROP DATABASE IF EXISTS {}", quote_ident(&name))).await.unwrap();
    admin.client().batch_execute(&format!("CREATE DATABASE {}", quote_ident(&name))).await.unwrap();
    let s = pg::connect(&server.with_dbname(&name), "diff-tests").await.unwrap();
    // Roles are cluster-wide; another test may have made it.
    let sql = sql.replace(
        "CREATE ROLE diff_reader;",
        "DO $$ BEGIN CREATE ROLE diff_reader; EXCEPTION WHEN duplicate_object THEN NULL; END $$;",
    );
    s.client().batch_execute(&sql).await.unwrap();
    (name, s)
}

/// Apply the plan from `from` to `to` on `session` and require it to converge.
async fn converge(session: &Session, from: &Model, to: &Model) -> String {
    let plan = diff::plan(from, to).unwrap();
    let sql = plan.to_sql();
    session.client().batch_execute(&sql).await.unwrap_or_else(|e| panic!("{}\n{sql}", pg::describe(&e)));
    let after = catalog::introspect(session).await.unwrap();
    let again = diff::plan(&after, to).unwrap();
    assert!(again.is_empty(), "second diff not empty:\n{}\nafter:\n{sql}", again.to_sql());
    assert!(after == *to);
    sql
}

#[tokio::test]
async fn every_kind_of_object_is_read_and_rebuilt_both_ways() {
    let (_, rich) = database("rich", RICH).await;
    let (_, empty) = database("empty", "").await;
    let m_rich = catalog::introspect(&rich).await.unwrap();
    let m_empty = catalog::introspect(&empty).await.unwrap();
    let kinds: std::collections::BTreeSet<&str> = m_rich.objects.values().map(|o| o.kind()).collect();
    for kind in [
        "schema",
        "extension",
        "enum",
        "composite type",
        "domain",
        "sequence",
        "sequence owner",
        "table",
        "column",
        "column default",
        "constraint",
        "index",
        "view",
        "materialized view",
        "function",
        "procedure",
        "aggregate",
        "trigger",
        "policy",
        "comment",
        "grant",
        "default privileges",
    ] {
        assert!(kinds.contains(kind), "no {kind} in the model: {kinds:?}");
    }
    // Objects of the extension are not the schema's.
    assert!(!m_rich.objects.keys().any(|k| k.0.contains("similarity")), "extension members leaked into the model");
    // Partitions' copies of the parent's index are derived, not modelled.
    assert!(!m_rich.objects.keys().any(|k| k.0.starts_with("index app.events_2026")));

    let up = converge(&empty, &m_empty, &m_rich).await;
    if std::env::var_os("CONFITURE_SHOW_PLAN").is_some() {
        eprintln!("{up}");
    }
    assert!(up.contains("CREATE TABLE app.events_2026 PARTITION OF app.events FOR VALUES FROM"), "{up}");
    // The partitioned index is built on every partition, not left invalid `ON ONLY` the parent.
    assert!(up.contains("CREATE INDEX events_at ON app.events "), "{up}");
    let valid: bool = empty
        .client()
        .query_one("SELECT indisvalid FROM pg_index WHERE indexrelid = 'app.events_at'::regclass", &[])
        .await
        .unwrap()
        .get(0);
    assert!(valid, "the partitioned index is valid");
    // A foreign key is added after the key it references.
    let pk = up.find("ADD CONSTRAINT users_pkey").unwrap();
    let fk = up.find("ADD CONSTRAINT sessions_user").unwrap();
    assert!(pk < fk, "{up}");
    converge(&empty, &m_rich, &m_empty).await;
}

#[tokio::test]
async fn a_view_over_a_retyped_column_is_dropped_and_recreated_around_the_change() {
    let schema = |t: &str| {
        format!(
            "CREATE TABLE t (id integer PRIMARY KEY, v {t});\nCREATE VIEW tv AS SELECT id, v FROM t;\n\
             CREATE VIEW tvv AS SELECT v FROM tv;\nCOMMENT ON VIEW tv IS 'kept';\nINSERT INTO t VALUES (1, '42');"
        )
    };
    let (_, a) = database("retype_a", &schema("text")).await;
    let (_, b) = database("retype_b", &schema("integer")).await;
    let (ma, mb) = (catalog::introspect(&a).await.unwrap(), catalog::introspect(&b).await.unwrap());
    let plan = diff::plan(&ma, &mb).unwrap();
    let sql = plan.to_sql();
    let pos = |s: &str| sql.find(s).unwrap_or_else(|| panic!("no `{s}` in:\n{sql}"));
    assert!(pos("DROP VIEW public.tvv") < pos("DROP VIEW public.tv;"), "{sql}");
    assert!(pos("DROP VIEW public.tv;") < pos("ALTER COLUMN v TYPE integer USING v::integer"), "{sql}");
    assert!(pos("ALTER COLUMN v TYPE integer") < pos("CREATE VIEW public.tv "), "{sql}");
    assert!(pos("CREATE VIEW public.tv ") < pos("CREATE VIEW public.tvv"), "{sql}");
    assert!(pos("CREATE VIEW public.tv ") < pos("COMMENT ON VIEW public.tv IS 'kept'"), "{sql}");
    let step = plan.steps.iter().find(|s| s.object.0 == "column public.t.v").unwrap();
    assert!(step.hazards.iter().any(|h| h.code == "rewrites-table"), "{:?}", step.hazards);
    converge(&a, &ma, &mb).await;
    // The row survived the type change.
    let v: i32 = a.client().query_one("SELECT v FROM t", &[]).await.unwrap().get(0);
    assert_eq!(v, 42);
}

#[tokio::test]
async fn drops_and_data_loss_are_flagged_and_names_are_freed_before_reuse() {
    let (_, a) = database(
        "slots_a",
        "CREATE TABLE t (id bigint, email text, CONSTRAINT t_email UNIQUE (email));\nCREATE TABLE gone (id int);",
    )
    .await;
    let (_, b) = database(
        "slots_b",
        "CREATE TABLE t (id bigint, email text);\nCREATE UNIQUE INDEX t_email ON t (lower(email));",
    )
    .await;
    let (ma, mb) = (catalog::introspect(&a).await.unwrap(), catalog::introspect(&b).await.unwrap());
    let plan = diff::plan(&ma, &mb).unwrap();
    let sql = plan.to_sql();
    assert!(sql.find("DROP CONSTRAINT t_email").unwrap() < sql.find("CREATE UNIQUE INDEX t_email").unwrap(), "{sql}");
    let drop = plan.steps.iter().find(|s| s.object.0 == "table public.gone").unwrap();
    assert!(drop.hazards.iter().any(|h| h.code == "deletes-data"), "{:?}", drop.hazards);
    converge(&a, &ma, &mb).await;
}

#[tokio::test]
async fn enum_values_are_added_in_place_and_a_new_not_null_column_is_flagged() {
    let (_, a) = database(
        "enum_a",
        "CREATE TYPE m AS ENUM ('a', 'c');\nCREATE TABLE t (id int, x m);\nINSERT INTO t VALUES (1, 'c');",
    )
    .await;
    let (_, b) = database(
        "enum_b",
        "CREATE TYPE m AS ENUM ('a', 'b', 'c', 'd');\nCREATE TABLE t (id int, x m, y int NOT NULL);",
    )
    .await;
    let (ma, mb) = (catalog::introspect(&a).await.unwrap(), catalog::introspect(&b).await.unwrap());
    let plan = diff::plan(&ma, &mb).unwrap();
    let sql = plan.to_sql();
    assert!(sql.contains("ALTER TYPE public.m ADD VALUE 'b' BEFORE 'c'"), "{sql}");
    assert!(sql.contains("ALTER TYPE public.m ADD VALUE 'd' AFTER 'c'"), "{sql}");
    assert!(!sql.contains("DROP TYPE"), "{sql}");
    let add = plan.steps.iter().find(|s| s.object.0 == "column public.t.y").unwrap();
    assert!(add.hazards.iter().any(|h| h.code == "fails-on-data"), "{:?}", add.hazards);
}
