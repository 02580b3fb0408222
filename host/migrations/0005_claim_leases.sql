-- A claim is a lease: its owner renews `claim_expires_at` while the sync runs,
-- and a claim whose owner is gone (its process lock is free) or whose lease
-- lapsed is taken over by the next sync of the link. Claims from before this
-- version have none and lapse as the old fixed lease did.
ALTER TABLE metric_links ADD COLUMN claim_expires_at INTEGER;
