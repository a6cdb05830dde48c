-- What this store's owner, as a witness, last cosigned for each log it
-- follows (C2SP tlog-witness state), so a restart does not forget it and
-- accept a fork from size 0. Sizes only grow.
CREATE TABLE witness_state (
    origin TEXT   PRIMARY KEY,
    size   BIGINT NOT NULL,
    root   BYTEA  NOT NULL
);
