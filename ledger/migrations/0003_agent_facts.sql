-- What the store's owner (an agent) learned that must survive its restart:
-- opaque facts (mesh-agent's `Fact`, canonical CBOR) in the order learned.
-- A fact with a key replaces the earlier one of the same kind and key
-- (a reporter's latest report, a revocation, a link issued or held, the
-- org of an agent met, a ban); evidence has an empty key and is only
-- added, the newest 100,000 per owner kept.
CREATE TABLE agent_facts (
    owner TEXT   NOT NULL,
    seq   BIGINT NOT NULL,
    kind  TEXT   NOT NULL,
    fkey  BYTEA  NOT NULL,
    body  BYTEA  NOT NULL,
    PRIMARY KEY (owner, seq)
);
CREATE INDEX agent_facts_by_key ON agent_facts (owner, kind, fkey);
