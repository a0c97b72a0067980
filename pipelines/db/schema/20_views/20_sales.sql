CREATE VIEW customer_sales AS
SELECT c.id AS customer_id,
       c.full_name,
       count(DISTINCT o.id) AS orders,
       coalesce(sum(oi.quantity * oi.unit_price_cents), 0) AS spent_cents
FROM customers c
LEFT JOIN orders o ON o.customer_id = c.id AND o.status <> 'cancelled'
LEFT JOIN order_items oi ON oi.order_id = o.id
GROUP BY c.id, c.full_name;
