-- The store schema version 4 (postgresql), as samband created it before the snapshots' refresh column (a snapshot to read again had the hash "refresh"): a starting point of tests/test_store_migrations.py.
CREATE TABLE samband_audit (
	id BIGSERIAL NOT NULL, 
	run_id BIGINT, 
	at VARCHAR(40) NOT NULL, 
	ref VARCHAR(400) NOT NULL, 
	dataflow VARCHAR(300), 
	op VARCHAR(20) NOT NULL, 
	before TEXT, 
	after TEXT, 
	PRIMARY KEY (id)
);

CREATE INDEX ix_samband_audit_ref ON samband_audit (ref);

CREATE TABLE samband_conflicts (
	id BIGSERIAL NOT NULL, 
	run_id BIGINT, 
	at VARCHAR(40) NOT NULL, 
	dataflow VARCHAR(300) NOT NULL, 
	source_ref VARCHAR(400) NOT NULL, 
	target_ref VARCHAR(400) NOT NULL, 
	property VARCHAR(300) NOT NULL, 
	base TEXT, 
	source_value TEXT, 
	target_value TEXT, 
	winner VARCHAR(20) NOT NULL, 
	reason TEXT NOT NULL, 
	PRIMARY KEY (id)
);

CREATE TABLE samband_cursors (
	system VARCHAR(100) NOT NULL, 
	etype VARCHAR(100) NOT NULL, 
	cursor TEXT, 
	fields VARCHAR(64), 
	updated_at VARCHAR(40) NOT NULL, 
	PRIMARY KEY (system, etype)
);

CREATE TABLE samband_dataflows (
	key VARCHAR(300) NOT NULL, 
	source VARCHAR(300) NOT NULL, 
	target VARCHAR(300) NOT NULL, 
	mapping VARCHAR(40), 
	updated_at VARCHAR(40) NOT NULL, 
	PRIMARY KEY (key)
);

CREATE TABLE samband_dead_letters (
	id BIGSERIAL NOT NULL, 
	ref VARCHAR(400) NOT NULL, 
	dataflow VARCHAR(300) NOT NULL, 
	kind VARCHAR(20) NOT NULL, 
	reason TEXT NOT NULL, 
	details TEXT, 
	attempts INTEGER NOT NULL, 
	first_at VARCHAR(40) NOT NULL, 
	last_at VARCHAR(40) NOT NULL, 
	run_id BIGINT, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_samband_dead_letters_ref UNIQUE (ref, dataflow)
);

CREATE TABLE samband_dirty (
	system VARCHAR(100) NOT NULL, 
	etype VARCHAR(100) NOT NULL, 
	rid VARCHAR(200) NOT NULL, 
	seq BIGINT NOT NULL, 
	PRIMARY KEY (system, etype, rid)
);

CREATE TABLE samband_intents (
	key VARCHAR(40) NOT NULL, 
	dataflow VARCHAR(300) NOT NULL, 
	target_system VARCHAR(100) NOT NULL, 
	target_etype VARCHAR(100) NOT NULL, 
	items TEXT NOT NULL, 
	run_id BIGINT, 
	created_at VARCHAR(40) NOT NULL, 
	PRIMARY KEY (key)
);

CREATE TABLE samband_leases (
	name VARCHAR(200) NOT NULL, 
	owner VARCHAR(200) NOT NULL, 
	expires_at VARCHAR(40) NOT NULL, 
	PRIMARY KEY (name)
);

CREATE TABLE samband_links (
	id BIGSERIAL NOT NULL, 
	dataflow VARCHAR(300) NOT NULL, 
	source_ref VARCHAR(400) NOT NULL, 
	target_ref VARCHAR(400) NOT NULL, 
	base TEXT NOT NULL, 
	how VARCHAR(20) NOT NULL, 
	created_run BIGINT, 
	created_at VARCHAR(40) NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_samband_links_source UNIQUE (source_ref, dataflow), 
	CONSTRAINT uq_samband_links_target UNIQUE (target_ref, dataflow)
);

CREATE TABLE samband_match_indexes (
	name VARCHAR(320) NOT NULL, 
	dataflow VARCHAR(300) NOT NULL, 
	built_at VARCHAR(40) NOT NULL, 
	PRIMARY KEY (name)
);

CREATE TABLE samband_match_keys (
	name VARCHAR(320) NOT NULL, 
	rid VARCHAR(200) NOT NULL, 
	key VARCHAR(500) NOT NULL, 
	PRIMARY KEY (name, rid)
);

CREATE INDEX ix_samband_match_keys_lookup ON samband_match_keys (name, key);

CREATE TABLE samband_runs (
	id BIGSERIAL NOT NULL, 
	started_at VARCHAR(40) NOT NULL, 
	finished_at VARCHAR(40), 
	status VARCHAR(20) NOT NULL, 
	dry_run BOOLEAN NOT NULL, 
	owner VARCHAR(200), 
	stats TEXT, 
	PRIMARY KEY (id)
);

CREATE TABLE samband_schema_version (
	version SERIAL NOT NULL, 
	applied_at VARCHAR(40) NOT NULL, 
	PRIMARY KEY (version)
);

CREATE TABLE samband_snapshots (
	system VARCHAR(100) NOT NULL, 
	etype VARCHAR(100) NOT NULL, 
	rid VARCHAR(200) NOT NULL, 
	hash VARCHAR(40) NOT NULL, 
	data TEXT NOT NULL, 
	modified VARCHAR(40), 
	deleted BOOLEAN NOT NULL, 
	seen_run BIGINT, 
	PRIMARY KEY (system, etype, rid)
);

CREATE TABLE samband_waiting (
	dataflow VARCHAR(300) NOT NULL, 
	ref VARCHAR(400) NOT NULL, 
	parent VARCHAR(400) NOT NULL, 
	runs INTEGER NOT NULL, 
	last_run BIGINT, 
	PRIMARY KEY (dataflow, ref)
);

