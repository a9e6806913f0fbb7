-- Generic storage: key/value by namespace, and append-only record streams.
CREATE TABLE kv (
	ns    TEXT NOT NULL,
	key   TEXT NOT NULL,
	value BLOB NOT NULL,
	PRIMARY KEY (ns, key)
) WITHOUT ROWID;

CREATE TABLE records (
	id      INTEGER PRIMARY KEY AUTOINCREMENT,
	stream  TEXT    NOT NULL,
	data    BLOB    NOT NULL,
	created INTEGER NOT NULL -- Unix microseconds, UTC
);

CREATE INDEX records_stream_id ON records (stream, id);
