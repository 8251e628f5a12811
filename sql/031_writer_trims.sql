-- The ledger row without an index no query reads (issue 16: writers against their floor,
-- docs/benchmarks.md). Trace finds events by correlation or event id, failures come from
-- the partial index on them, and tenants are deactivated, never deleted (so no foreign-key
-- check scans events by tenant); yet every envelope paid an entry in this one (~90 bytes of
-- WAL and a B-tree insert per ledger row).
DROP INDEX events_tenant_type_idx;
