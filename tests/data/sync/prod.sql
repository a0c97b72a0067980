-- A production-like database for the sync tests and benchmark: `__ROWS__` users, twice as many
-- orders, three items per order. Deterministic (no random()). It has the shapes a copy gets wrong:
-- identity and generated columns, a standalone sequence in a default, an enum, a unique e-mail,
-- a self-reference (users.referred_by), a deferrable foreign-key cycle (users.team_id → teams,
-- teams.owner_id → users), a composite key, jsonb with e-mails inside, text[], bytea, unicode,
-- NULLs, a partitioned table without a primary key, a view, a user trigger, a quoted schema.

CREATE TYPE order_status AS ENUM ('new', 'paid', 'shipped', 'cancelled');
CREATE SEQUENCE invoice_no START 1000;

CREATE TABLE users (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email varchar(120) NOT NULL UNIQUE,
    name text NOT NULL,
    name_upper text GENERATED ALWAYS AS (upper(name)) STORED,
    phone text,
    profile jsonb,
    tags text[],
    avatar bytea,
    referred_by bigint REFERENCES users (id),
    team_id int,
    created_at timestamptz NOT NULL,
    touched int NOT NULL DEFAULT 0
);

CREATE TABLE teams (
    id int PRIMARY KEY,
    title text NOT NULL,
    owner_id bigint NOT NULL REFERENCES users (id)
);

CREATE TABLE orders (
    id bigint PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users (id),
    invoice bigint NOT NULL DEFAULT nextval('invoice_no'),
    status order_status NOT NULL,
    total numeric(12, 2) NOT NULL,
    note text,
    placed_at timestamptz NOT NULL
);
CREATE INDEX orders_user ON orders (user_id);

CREATE TABLE order_items (
    order_id bigint NOT NULL REFERENCES orders (id),
    line int NOT NULL,
    product text NOT NULL,
    qty int NOT NULL CHECK (qty > 0),
    PRIMARY KEY (order_id, line)
);

CREATE TABLE events (
    at date NOT NULL,
    user_id bigint REFERENCES users (id),
    kind text NOT NULL,
    payload jsonb
) PARTITION BY RANGE (at);
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE events_other PARTITION OF events DEFAULT;
CREATE INDEX events_user ON events (user_id);

CREATE SCHEMA "Back Office";
CREATE TABLE "Back Office"."Notes" (
    "Id" serial PRIMARY KEY,
    "User" bigint REFERENCES users (id),
    "Text" text
);

CREATE VIEW big_orders AS SELECT id, user_id, total FROM orders WHERE total > 500;

-- A user trigger: a copy must not fire it.
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.touched := NEW.touched + 1; RETURN NEW; END $$;
CREATE TRIGGER users_touch BEFORE INSERT OR UPDATE ON users FOR EACH ROW EXECUTE FUNCTION touch();

BEGIN;
ALTER TABLE users DISABLE TRIGGER users_touch;
INSERT INTO users (email, name, phone, profile, tags, avatar, referred_by, created_at)
OVERRIDING SYSTEM VALUE
SELECT 'user' || i || '.' || substr(md5(i::text), 1, 6) || '@' || (ARRAY['gmail.com', 'corp.example', 'mail.fr'])[1 + i % 3],
       n,
       CASE WHEN i % 7 = 0 THEN NULL ELSE '+33 6 ' || lpad((i % 100)::text, 2, '0') || ' ' || lpad((i * 7 % 100)::text, 2, '0')
            || ' ' || lpad((i * 13 % 100)::text, 2, '0') || ' ' || lpad((i * 17 % 100)::text, 2, '0') END,
       CASE WHEN i % 5 = 0 THEN NULL ELSE jsonb_build_object(
           'contact', jsonb_build_object('email', 'user' || i || '.' || substr(md5(i::text), 1, 6) || '@home.example'),
           'city', (ARRAY['Lyon', 'Zürich', 'Kraków', '東京'])[1 + i % 4],
           'note', E'tab\there, newline\nthere, backslash \\ end') END,
       ARRAY['tag' || i % 10, 'n"q' || i % 3],
       CASE WHEN i % 4 = 0 THEN NULL ELSE decode(lpad(to_hex(i), 8, '0') || '00ff5c0a', 'hex') END,
       CASE WHEN i > 10 THEN i / 2 END,
       timestamptz '2024-01-01 00:00:00+00' + make_interval(secs => i * 61)
FROM generate_series(1, __ROWS__) i,
     LATERAL (SELECT (ARRAY['Zoë', 'Łukasz', 'José', 'Mary', 'Jürgen', 'Søren', '陽翔', 'Amélie', 'Nikolai', 'Ana'])[1 + i % 10]
                     || ' ' || (ARRAY['Dupont', 'Nowak', 'García', 'Smith', 'Müller', 'Øster', '佐藤', 'Lefèvre'])[1 + i % 8]
                     || CASE WHEN i % 9 = 0 THEN E' O''Brien\\' ELSE '' END AS n) names;
ALTER TABLE users ENABLE TRIGGER users_touch;
INSERT INTO teams SELECT t, 'team ' || t, t * 3 FROM generate_series(1, greatest(__ROWS__ / 100, 1)) t;
UPDATE users SET team_id = 1 + id % greatest(__ROWS__ / 100, 1) WHERE id % 3 <> 0;
INSERT INTO orders (id, user_id, status, total, note, placed_at)
SELECT o, 1 + o % __ROWS__, (ARRAY['new', 'paid', 'shipped', 'cancelled']::order_status[])[1 + o % 4],
       (o % 100000) / 100.0, CASE WHEN o % 3 = 0 THEN NULL ELSE 'ring twice, ' || o END,
       timestamptz '2025-01-01 00:00:00+00' + make_interval(secs => o * 13)
FROM generate_series(1, 2 * __ROWS__) o;
INSERT INTO order_items SELECT o, l, 'product ' || (o * l % 997), 1 + (o + l) % 5
FROM generate_series(1, 2 * __ROWS__) o, generate_series(1, 3) l WHERE o % 2 = 0 OR l = 1;
INSERT INTO events SELECT date '2025-06-01' + (e % 700), CASE WHEN e % 6 = 0 THEN NULL ELSE 1 + e % __ROWS__ END,
       (ARRAY['login', 'logout', 'view'])[1 + e % 3], jsonb_build_object('n', e)
FROM generate_series(1, __ROWS__) e;
INSERT INTO "Back Office"."Notes" ("User", "Text")
SELECT 1 + i % __ROWS__, 'note ' || i FROM generate_series(1, greatest(__ROWS__ / 10, 1)) i;
SELECT setval('invoice_no', 1000 + 3 * __ROWS__);
COMMIT;
ALTER TABLE users ADD CONSTRAINT users_team_fkey FOREIGN KEY (team_id) REFERENCES teams (id) DEFERRABLE INITIALLY DEFERRED;
ANALYZE;
