-- A production-like shop for the anonymize tests and benchmark: `__ROWS__` customers, twice as
-- many orders, with every shape of PII the strategies handle. Deterministic (no random()).
-- Foreign keys: orders → customers (by id and by the unique email), customers → customers
-- (self-reference), customers → orders (a deferrable cycle). Unicode names, NULLs, jsonb with
-- e-mails and addresses, text[] arrays, bytea, dates, inet, Luhn-valid card numbers, a table
-- without a primary key, user triggers.

CREATE FUNCTION luhn_complete(digits text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT digits || ((10 - (sum(CASE WHEN (length(digits) - i) % 2 = 0
                                    THEN CASE WHEN d * 2 > 9 THEN d * 2 - 9 ELSE d * 2 END
                                    ELSE d END) % 10)) % 10)::text
  FROM (SELECT i, substr(digits, i, 1)::int AS d FROM generate_series(1, length(digits)) i) x
$$;

CREATE TABLE customers (
    id bigint PRIMARY KEY,
    email varchar(120) NOT NULL UNIQUE,
    first_name text NOT NULL,
    last_name text NOT NULL,
    full_name varchar(60),
    phone text,
    birth_date date,
    last_ip inet,
    profile jsonb,
    nicknames text[],
    avatar bytea,
    national_id text,
    notes text,
    referred_by bigint REFERENCES customers (id),
    favourite_order bigint,
    updated_by_trigger int NOT NULL DEFAULT 0
);
COMMENT ON COLUMN customers.notes IS 'free text written by support staff';

CREATE TABLE orders (
    id bigint PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers (id),
    customer_email varchar(120) NOT NULL REFERENCES customers (email),
    card_number text,
    shipping jsonb,
    placed_at timestamptz NOT NULL,
    total numeric(12, 2) NOT NULL
);
ALTER TABLE customers ADD CONSTRAINT customers_favourite_order_fkey
    FOREIGN KEY (favourite_order) REFERENCES orders (id) DEFERRABLE INITIALLY DEFERRED;
CREATE INDEX orders_customer_email ON orders (customer_email);

-- No primary key: masked in one transaction through a cursor.
CREATE TABLE newsletter_signups (
    email text NOT NULL,
    signed_up date NOT NULL
);

-- A user trigger: it must not fire when the data is rewritten.
CREATE FUNCTION bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.updated_by_trigger := OLD.updated_by_trigger + 1; RETURN NEW; END $$;
CREATE TRIGGER customers_bump BEFORE UPDATE ON customers FOR EACH ROW EXECUTE FUNCTION bump();

BEGIN;
INSERT INTO customers (id, email, first_name, last_name, full_name, phone, birth_date, last_ip, profile, nicknames,
                       avatar, national_id, notes, referred_by)
SELECT i,
       'user' || i || '.' || substr(md5(i::text), 1, 6) || '@' || (ARRAY['gmail.com', 'corp.example', 'mail.fr'])[1 + i % 3],
       f, l, f || ' ' || l,
       CASE WHEN i % 7 = 0 THEN NULL ELSE '+33 6 ' || lpad((i % 100)::text, 2, '0') || ' ' || lpad((i * 7 % 100)::text, 2, '0')
            || ' ' || lpad((i * 13 % 100)::text, 2, '0') || ' ' || lpad((i * 17 % 100)::text, 2, '0') END,
       CASE WHEN i % 11 = 0 THEN NULL ELSE date '1950-01-01' + (i * 37 % 20000) END,
       ('10.' || (i / 65536 % 256) || '.' || (i / 256 % 256) || '.' || (i % 256))::inet,
       CASE WHEN i % 5 = 0 THEN NULL ELSE jsonb_build_object(
           'email', 'alt' || i || '@home.example',
           'address', jsonb_build_object('street', (i % 300) || ' Rue de ' || l, 'city', 'Lyon'),
           'newsletter', i % 2 = 0) END,
       ARRAY[lower(f) || i, 'the ' || lower(l) || i],
       decode(lpad(to_hex(i), 8, '0'), 'hex'),
       lpad((i * 7919 % 1000000000)::text, 9, '0'),
       CASE WHEN i % 3 = 0 THEN NULL ELSE 'called about order ' || i END,
       CASE WHEN i > 10 THEN i / 2 END
FROM generate_series(1, __ROWS__) i,
     LATERAL (SELECT (ARRAY['Zoë', 'Łukasz', 'José', 'Mary', 'Jürgen', 'Søren', '陽翔', 'Amélie', 'Nikolai', 'Ana'])[1 + i % 10]
                     || CASE WHEN i % 4 = 0 THEN '' ELSE chr(97 + i % 26) END AS f,
                     (ARRAY['Müller', 'O''Brien', 'Nguyễn', 'García', 'Smith', '佐藤', 'Kowalski', 'Dubois'])[1 + i % 8]
                     || (i % 97) AS l) names;

INSERT INTO orders (id, customer_id, customer_email, card_number, shipping, placed_at, total)
SELECT o, c.id, c.email,
       CASE WHEN o % 9 = 0 THEN NULL ELSE luhn_complete('4' || lpad((o * 104729 % 100000000000000)::text, 14, '0')) END,
       jsonb_build_object('to', c.full_name, 'contact', jsonb_build_object('email', c.email), 'lines', jsonb_build_array('box', 'tape')),
       timestamptz '2024-01-01 10:00:00+00' + (o * 3571 % 31536000) * interval '1 second',
       (o * 17 % 100000) / 100.0
FROM generate_series(1, 2 * __ROWS__) o JOIN customers c ON c.id = 1 + (o - 1) / 2;

UPDATE customers SET favourite_order = id * 2 WHERE id % 4 = 1;
INSERT INTO newsletter_signups SELECT email, date '2020-01-01' + (id % 1000)::int FROM customers WHERE id % 2 = 0;
COMMIT;
ANALYZE;
