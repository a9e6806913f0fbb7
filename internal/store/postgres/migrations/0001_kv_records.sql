-- Generic storage: key/value by namespace, and append-only record streams.
-- Namespaces, keys and stream names are bytea, not text: store keys are
-- arbitrary byte strings (NUL and invalid UTF-8 included) ordered bytewise,
-- as in the SQLite backend.
CREATE TABLE kv (
	ns    BYTEA NOT NULL,
	key   BYTEA NOT NULL,
	value BYTEA NOT NULL,
	PRIMARY KEY (ns, key)
);

CREATE TABLE records (
	id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	stream  BYTEA       NOT NULL,
	data    BYTEA       NOT NULL,
	created TIMESTAMPTZ NOT NULL
);

CREATE INDEX records_stream_id ON records (stream, id);
