-- Indexes of sb-reporter's read API (docs/api.md): the ticket search walks tickets newest
-- first by (created_at, id) — its keyset cursor — and the live queue view reads the
-- tickets nobody owns yet. Neither changes what the projection writes.
-- Applied by `sbctl migrate` in one transaction with its schema_migrations row.

CREATE INDEX IF NOT EXISTS tickets_created_id ON tickets (created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS tickets_queue_created ON tickets (queue, created_at DESC);
CREATE INDEX IF NOT EXISTS tickets_waiting ON tickets (created_at)
    WHERE status IN ('new', 'queued', 'offered') AND owner_agent_id IS NULL
      AND merged_into IS NULL;
CREATE INDEX IF NOT EXISTS tickets_resolved_at ON tickets (resolved_at)
    WHERE resolved_at IS NOT NULL;
