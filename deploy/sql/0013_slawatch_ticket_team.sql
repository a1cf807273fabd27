-- sb-slawatch (docs/slawatch.md, "Teams"): the team of a ticket, as routing made it
-- known (the queue of ticket.queued or ticket.overflowed, the agent of ticket.assigned
-- through the roster, the team or agent of ticket.transferred). Clocks started at
-- triage know no team; once the team is known they are re-targeted with its policy
-- rows and calendar, and this column lets a restart or a take-over restore it.
-- Written in the same transaction as the snapshot rows and the offsets.
-- Applied by `sbctl migrate` in one transaction with its schema_migrations row.

ALTER TABLE sla_ticket_facts ADD COLUMN team_id text;
COMMENT ON COLUMN sla_ticket_facts.team_id IS
    'Team of the ticket as routing made it known (NULL: not yet known); its policy rows and calendar apply';
