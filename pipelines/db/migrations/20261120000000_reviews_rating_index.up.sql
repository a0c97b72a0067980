-- confiture:no-transaction
-- Built concurrently, so reviews stay writable while it builds.
CREATE INDEX CONCURRENTLY IF NOT EXISTS reviews_rating_idx ON reviews (rating);
