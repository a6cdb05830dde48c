-- Portable between SQLite and PostgreSQL: BIGINT, INTEGER, TEXT and BYTEA
-- (SQLite stores BYTEA values as the blobs they are).

-- One row per log: its origin (checkpoint key name), the log's public key
-- and the number of records durably appended.
CREATE TABLE ledger_logs (
    origin     TEXT    PRIMARY KEY,
    public_key BYTEA   NOT NULL,
    size       BIGINT  NOT NULL
);

-- Leaves: the exact co-signed record bytes.
CREATE TABLE ledger_records (
    origin TEXT   NOT NULL,
    idx    BIGINT NOT NULL,
    leaf   BYTEA  NOT NULL,
    PRIMARY KEY (origin, idx)
);

-- Complete-subtree hashes (level 0 = leaf hashes), for proofs without
-- reading the records.
CREATE TABLE ledger_nodes (
    origin TEXT    NOT NULL,
    level  INTEGER NOT NULL,
    idx    BIGINT  NOT NULL,
    hash   BYTEA   NOT NULL,
    PRIMARY KEY (origin, level, idx)
);

-- Signed checkpoint notes, with any cosignature lines appended.
CREATE TABLE ledger_checkpoints (
    origin TEXT   NOT NULL,
    size   BIGINT NOT NULL,
    note   BYTEA  NOT NULL,
    PRIMARY KEY (origin, size)
);
