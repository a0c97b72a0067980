INSERT INTO publishers (name) VALUES ('O''Reilly Media'), ('No Starch Press'), ('Pragmatic Bookshelf');

INSERT INTO authors (full_name, born) VALUES
    ('Laine Campbell', NULL),
    ('Charity Majors', NULL),
    ('Alex Petrov', NULL),
    ('Martin Kleppmann', NULL);

INSERT INTO books (isbn, title, publisher_id, published_on, price_cents)
SELECT v.isbn, v.title, p.id, v.published_on::date, v.price_cents
FROM (VALUES
    ('9781491925942', 'Database Reliability Engineering', 'O''Reilly Media', '2017-10-01', 4999),
    ('9781492040347', 'Database Internals', 'O''Reilly Media', '2019-09-01', 5499),
    ('9781449373320', 'Designing Data-Intensive Applications', 'O''Reilly Media', '2017-03-01', 5999)
) AS v (isbn, title, publisher, published_on, price_cents)
JOIN publishers p ON p.name = v.publisher;

INSERT INTO book_authors (book_id, author_id, position)
SELECT b.id, a.id, v.position
FROM (VALUES
    ('9781491925942', 'Laine Campbell', 1),
    ('9781491925942', 'Charity Majors', 2),
    ('9781492040347', 'Alex Petrov', 1),
    ('9781449373320', 'Martin Kleppmann', 1)
) AS v (isbn, author, position)
JOIN books b ON b.isbn = v.isbn
JOIN authors a ON a.full_name = v.author;

INSERT INTO book_categories (book_id, category_id)
SELECT b.id, c.id FROM books b CROSS JOIN categories c WHERE c.slug = 'databases';

INSERT INTO inventory (book_id, in_stock) SELECT id, 25 FROM books;
