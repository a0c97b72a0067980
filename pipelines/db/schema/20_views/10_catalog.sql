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
