-- The shop's payments table: the sample database source (registry row "payments",
-- sql://shop_db/public.payments). docker-compose.yaml's shop-db service runs this file once, when
-- its volume is new (/docker-entrypoint-initdb.d); tests/integration/test_sample_database.py
-- loads it into the suite's PostgreSQL and runs the dataset over two days.
-- Plain SQL only (no psql commands): both load it as it is.
-- Each row is a payment as it stands now: updated_at is when it last changed, so a payment made
-- on one day and refunded on a later one is read in the later day's interval, and the merge keeps
-- that version. Keys are text with leading zeros; amounts keep their two decimals.
CREATE TABLE public.payments (
    payment_id  text PRIMARY KEY,
    order_id    integer NOT NULL,
    method      text NOT NULL,
    status      text NOT NULL,
    amount      numeric(10, 2) NOT NULL,
    paid_on     date NOT NULL,
    updated_at  timestamptz NOT NULL
);

INSERT INTO public.payments (payment_id, order_id, method, status, amount, paid_on, updated_at) VALUES
    ('P-0001', 1001, 'card',     'captured', 20.50, '2024-01-01', '2024-01-01 08:05:00+00'),
    ('P-0002', 1002, 'card',     'refunded', 15.00, '2024-01-01', '2024-01-03 10:35:00+00'),
    ('P-0003', 1003, 'paypal',   'captured',  7.25, '2024-01-01', '2024-01-01 10:02:00+00'),
    ('P-0004', 1005, 'card',     'captured', 11.00, '2024-01-02', '2024-01-02 07:01:00+00'),
    ('P-0005', 1006, 'transfer', 'captured', 30.00, '2024-01-02', '2024-01-02 23:59:59+00'),
    ('P-0006', 1004, 'card',     'captured', 42.00, '2024-01-03', '2024-01-03 11:04:00+00'),
    ('P-0007', 1008, 'paypal',   'captured', 60.00, '2024-01-03', '2024-01-04 07:00:00+00'),
    ('P-0008', 1009, 'card',     'pending',  12.00, '2024-01-04', '2024-01-04 06:10:00+00');
