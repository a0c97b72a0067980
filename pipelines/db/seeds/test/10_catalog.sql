INSERT INTO publishers (name) VALUES ('Test Press');
INSERT INTO authors (full_name) VALUES ('Ada Tester');
INSERT INTO books (isbn, title, publisher_id, price_cents)
    SELECT '9780000000001', 'Testing Databases', id, 1999 FROM publishers WHERE name = 'Test Press';
INSERT INTO book_authors (book_id, author_id)
    SELECT b.id, a.id FROM books b, authors a;
INSERT INTO inventory (book_id, in_stock) SELECT id, 10 FROM books;
INSERT INTO customers (email, full_name) VALUES ('ada@example.com', 'Ada Tester');
