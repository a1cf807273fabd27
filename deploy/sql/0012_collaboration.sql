-- Collaboration across departments (docs/lifecycle.md, SPEC §5): cross-department
-- requests decided by a supervisor, and consultation and complaint slips sent to a
-- department with a due time. Written only by sb-ingest, in the transaction of the
-- ticket action that holds the ticket's ticket_workflow row lock, after Kafka
-- acknowledged the action's events (sb.activity.v1); read back by
-- GET /v1/tickets/{id}/collaboration, which shows an open slip past its due time as
-- overdue.
-- Applied by `sbctl migrate` in one transaction with its schema_migrations row.

CREATE TABLE ticket_requests (
    id               text PRIMARY KEY,
    ticket_id        text NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('assist', 'handover')),
    department       text NOT NULL,
    reason           text NOT NULL,
    needed           text NOT NULL,
    customer_message text,
    requested_by     text NOT NULL,
    requested_at     timestamptz NOT NULL DEFAULT now(),
    state            text NOT NULL DEFAULT 'pending'
                         CHECK (state IN ('pending', 'approved', 'rejected')),
    decided_by       text,
    decided_at       timestamptz,
    decision_reason  text,
    CHECK ((state = 'pending') = (decided_at IS NULL)),
    CHECK (kind = 'assist' OR customer_message IS NOT NULL)
);
CREATE INDEX ticket_requests_ticket ON ticket_requests (ticket_id, requested_at);
COMMENT ON TABLE ticket_requests IS
    'Cross-department requests (assist: the department in copy; handover: the ticket to its queue), each decided once by a supervisor';

CREATE TABLE ticket_slips (
    id          text PRIMARY KEY,
    ticket_id   text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('consultation', 'complaint')),
    department  text NOT NULL,
    question    text NOT NULL,
    sent_by     text NOT NULL,
    sent_at     timestamptz NOT NULL DEFAULT now(),
    due_at      timestamptz NOT NULL,
    state       text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'answered', 'replied')),
    answer      text,
    answered_by text,
    answered_at timestamptz,
    reply       text,
    replied_by  text,
    replied_at  timestamptz,
    CHECK ((state = 'open') = (answered_at IS NULL)),
    CHECK ((state = 'replied') = (replied_at IS NOT NULL))
);
CREATE INDEX ticket_slips_ticket ON ticket_slips (ticket_id, sent_at);
CREATE INDEX ticket_slips_open_due ON ticket_slips (due_at) WHERE state = 'open';
COMMENT ON TABLE ticket_slips IS
    'Consultation and complaint slips: sent to a department with a due time, answered by it, the answer replied to the customer';
