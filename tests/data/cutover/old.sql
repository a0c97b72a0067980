CREATE TABLE users (
    id bigserial PRIMARY KEY,
    email text NOT NULL UNIQUE,
    first_name text NOT NULL,
    last_name text NOT NULL,
    nick text,
    bio text,
    balance integer NOT NULL DEFAULT 0,
    legacy boolean DEFAULT false
);
CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users,
    amount numeric(10,2) NOT NULL,
    placed_at timestamptz NOT NULL DEFAULT '2026-01-01'
);
CREATE INDEX orders_user ON orders (user_id);
INSERT INTO users (email, first_name, last_name, nick, bio)
    SELECT 'u' || g || '@example.com', 'First' || g, 'Last' || g, 'nick' || g, 'bio ' || g FROM generate_series(1, __ROWS__) g;
INSERT INTO orders (user_id, amount) SELECT 1 + (g % __ROWS__), (g % 1000) / 10.0 FROM generate_series(1, 2 * __ROWS__) g;
ANALYZE;
