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
CREATE INDEX reviews_rating_idx ON reviews (rating);

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
