-- The bookshop as first released. Later changes are later migrations; db/schema/ is the
-- current state, which the release pipeline checks these migrations reach.

-- from db/schema/00_common/00_types.sql
-- Types and helpers shared by the tables.

CREATE DOMAIN email AS text
    CHECK (VALUE ~ '^[^@\s]+@[^@\s]+\.[^@\s]+$');

CREATE TYPE order_status AS ENUM ('pending', 'paid', 'shipped', 'delivered', 'cancelled');

CREATE FUNCTION set_updated_at() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

COMMENT ON FUNCTION set_updated_at() IS 'trigger: keeps updated_at current on UPDATE';

-- from db/schema/10_tables/10_customers.sql
CREATE TABLE customers (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email       email NOT NULL UNIQUE,
    full_name   text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE customers IS 'people who buy books';

CREATE TRIGGER customers_updated_at BEFORE UPDATE ON customers
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE addresses (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id  bigint NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    line1        text NOT NULL,
    city         text NOT NULL,
    postal_code  text NOT NULL,
    country      text NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
    is_default   boolean NOT NULL DEFAULT false
);

CREATE INDEX addresses_customer_id_idx ON addresses (customer_id);
CREATE UNIQUE INDEX addresses_one_default ON addresses (customer_id) WHERE is_default;

-- from db/schema/10_tables/20_catalog.sql
CREATE TABLE publishers (
    id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name  text NOT NULL UNIQUE
);

CREATE TABLE authors (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    full_name  text NOT NULL,
    born       date
);

CREATE TABLE categories (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug       text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9-]+$'),
    name       text NOT NULL,
    parent_id  bigint REFERENCES categories (id)
);

CREATE INDEX categories_parent_id_idx ON categories (parent_id);

CREATE TABLE books (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    isbn          text NOT NULL UNIQUE CHECK (length(isbn) IN (10, 13)),
    title         text NOT NULL,
    publisher_id  bigint REFERENCES publishers (id),
    published_on  date,
    price_cents   integer NOT NULL CHECK (price_cents >= 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX books_publisher_id_idx ON books (publisher_id);
CREATE INDEX books_title_idx ON books (lower(title));

CREATE TRIGGER books_updated_at BEFORE UPDATE ON books
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE book_authors (
    book_id    bigint NOT NULL REFERENCES books (id) ON DELETE CASCADE,
    author_id  bigint NOT NULL REFERENCES authors (id),
    position   smallint NOT NULL DEFAULT 1,
    PRIMARY KEY (book_id, author_id)
);

CREATE INDEX book_authors_author_id_idx ON book_authors (author_id);

CREATE TABLE book_categories (
    book_id      bigint NOT NULL REFERENCES books (id) ON DELETE CASCADE,
    category_id  bigint NOT NULL REFERENCES categories (id),
    PRIMARY KEY (book_id, category_id)
);

CREATE INDEX book_categories_category_id_idx ON book_categories (category_id);

CREATE TABLE inventory (
    book_id   bigint PRIMARY KEY REFERENCES books (id) ON DELETE CASCADE,
    in_stock  integer NOT NULL DEFAULT 0 CHECK (in_stock >= 0)
);

-- from db/schema/10_tables/30_orders.sql
CREATE TABLE orders (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id  bigint NOT NULL REFERENCES customers (id),
    address_id   bigint REFERENCES addresses (id),
    status       order_status NOT NULL DEFAULT 'pending',
    placed_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX orders_customer_id_idx ON orders (customer_id);
CREATE INDEX orders_address_id_idx ON orders (address_id);

CREATE TABLE order_items (
    order_id          bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    book_id           bigint NOT NULL REFERENCES books (id),
    quantity          integer NOT NULL CHECK (quantity > 0),
    unit_price_cents  integer NOT NULL CHECK (unit_price_cents >= 0),
    PRIMARY KEY (order_id, book_id)
);

CREATE INDEX order_items_book_id_idx ON order_items (book_id);

CREATE TABLE reviews (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    book_id      bigint NOT NULL REFERENCES books (id) ON DELETE CASCADE,
    customer_id  bigint NOT NULL REFERENCES customers (id),
    rating       smallint NOT NULL CHECK (rating BETWEEN 1 AND 5),
    body         text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (book_id, customer_id)
);

CREATE INDEX reviews_customer_id_idx ON reviews (customer_id);

-- Keep stock honest: an order item takes books out of inventory.
CREATE FUNCTION take_from_inventory() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    UPDATE inventory SET in_stock = in_stock - NEW.quantity WHERE book_id = NEW.book_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'book % has no inventory row', NEW.book_id;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER order_items_take_from_inventory AFTER INSERT ON order_items
    FOR EACH ROW EXECUTE FUNCTION take_from_inventory();

CREATE FUNCTION order_total_cents(p_order_id bigint) RETURNS bigint
    LANGUAGE sql STABLE AS $$
    SELECT coalesce(sum(quantity * unit_price_cents), 0)::bigint
    FROM order_items WHERE order_id = p_order_id
$$;

-- from db/schema/20_views/10_catalog.sql
CREATE VIEW book_catalog AS
SELECT b.id,
       b.isbn,
       b.title,
       p.name AS publisher,
       string_agg(a.full_name, ', ' ORDER BY ba.position) AS authors,
       b.price_cents,
       coalesce(i.in_stock, 0) AS in_stock,
       round(avg(r.rating), 1) AS rating
FROM books b
LEFT JOIN publishers p ON p.id = b.publisher_id
LEFT JOIN book_authors ba ON ba.book_id = b.id
LEFT JOIN authors a ON a.id = ba.author_id
LEFT JOIN inventory i ON i.book_id = b.id
LEFT JOIN reviews r ON r.book_id = b.id
GROUP BY b.id, p.name, i.in_stock;

COMMENT ON VIEW book_catalog IS 'what the shop front lists';

-- from db/schema/20_views/20_sales.sql
CREATE VIEW customer_sales AS
SELECT c.id AS customer_id,
       c.full_name,
       count(DISTINCT o.id) AS orders,
       coalesce(sum(oi.quantity * oi.unit_price_cents), 0) AS spent_cents
FROM customers c
LEFT JOIN orders o ON o.customer_id = c.id AND o.status <> 'cancelled'
LEFT JOIN order_items oi ON oi.order_id = o.id
GROUP BY c.id, c.full_name;

