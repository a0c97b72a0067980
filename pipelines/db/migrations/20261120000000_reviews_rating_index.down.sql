-- confiture:no-transaction
DROP INDEX CONCURRENTLY IF EXISTS reviews_rating_idx;
