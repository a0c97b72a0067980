INSERT INTO categories (slug, name) VALUES
    ('fiction', 'Fiction'),
    ('non-fiction', 'Non-fiction'),
    ('databases', 'Databases');

UPDATE categories SET parent_id = (SELECT id FROM categories WHERE slug = 'non-fiction')
WHERE slug = 'databases';
