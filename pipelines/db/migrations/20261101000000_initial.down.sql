DROP VIEW customer_sales;
DROP VIEW book_catalog;
DROP TABLE reviews, order_items, orders, inventory, book_categories, book_authors, books, categories, authors,
    publishers, addresses, customers;
DROP FUNCTION order_total_cents(bigint);
DROP FUNCTION take_from_inventory();
DROP FUNCTION set_updated_at();
DROP TYPE order_status;
DROP DOMAIN email;
