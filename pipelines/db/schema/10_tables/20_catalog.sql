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
    subtitle      text,
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
