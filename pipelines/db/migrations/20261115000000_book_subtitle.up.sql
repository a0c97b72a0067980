-- Books can have a subtitle. Adding a nullable column without a default is instant.
ALTER TABLE books ADD COLUMN subtitle text;
