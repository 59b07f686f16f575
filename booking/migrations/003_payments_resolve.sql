-- Payments that always resolve (docs/faults.md).
-- hold_expires_at: the hold's own expiry before this payment extended it (a declined payment
--   gives the hold back that expiry). refund_due/refunded_at: a refund owed to the buyer is
--   written down in the same transaction that decides it, and done (idempotently) after commit;
--   the sweeper finishes any the process died before doing.
ALTER TABLE payments ADD COLUMN hold_expires_at timestamptz;
ALTER TABLE payments ADD COLUMN refund_due boolean NOT NULL DEFAULT false;
ALTER TABLE payments ADD COLUMN refunded_at timestamptz;
CREATE INDEX payments_pending ON payments (created_at) WHERE status = 'pending';
CREATE INDEX payments_refund_owed ON payments (id) WHERE refund_due AND refunded_at IS NULL;

-- The simulated payment provider's own ledger (a real provider keeps this on its side): one
-- charge per payment id, whatever how often a job retries; `attempts` counts the calls.
-- No foreign key: the provider is another system (PROVIDER_DATABASE_URL may point elsewhere).
CREATE TABLE provider_charges (
    payment_id    bigint PRIMARY KEY,
    amount_cents  integer NOT NULL CHECK (amount_cents >= 0),
    ok            boolean NOT NULL,
    reference     text NOT NULL,
    reason        text,
    attempts      integer NOT NULL DEFAULT 1,
    charged_at    timestamptz NOT NULL DEFAULT now(),
    refunded_at   timestamptz
);
