INSERT INTO customers (email, full_name) VALUES
    ('grace@example.com', 'Grace Hopper'),
    ('edgar@example.com', 'Edgar Codd');

INSERT INTO addresses (customer_id, line1, city, postal_code, country, is_default)
SELECT id, '1 Relational Way', 'San Jose', '95141', 'US', true FROM customers;

INSERT INTO orders (customer_id, address_id, status)
SELECT c.id, a.id, 'paid' FROM customers c JOIN addresses a ON a.customer_id = c.id
WHERE c.email = 'edgar@example.com';

INSERT INTO order_items (order_id, book_id, quantity, unit_price_cents)
SELECT o.id, b.id, 1, b.price_cents FROM orders o CROSS JOIN books b WHERE b.isbn = '9781449373320';

INSERT INTO reviews (book_id, customer_id, rating, body)
SELECT b.id, c.id, 5, 'The relational model, explained by the people who build on it.'
FROM books b, customers c WHERE b.isbn = '9781449373320' AND c.email = 'edgar@example.com';
