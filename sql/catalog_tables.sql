-- The catalog's own small tables (what each column holds: sql/comments.sql).

-- oxa_meta: the workspace root the views point at, and a hash of the view script.
CREATE TABLE IF NOT EXISTS oxa_meta (key VARCHAR PRIMARY KEY, value VARCHAR);

-- runs: one row per finished stage run (the run folder is runs/<stage>/<run_id>/).
CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR PRIMARY KEY,
    stage VARCHAR,
    config_fingerprint VARCHAR,
    started_at TIMESTAMP,
    finished_at TIMESTAMP,
    status VARCHAR,
    stats VARCHAR  -- stats.json as text
);

-- subsets: one row per published subset version (its folder is subsets/<name>/<version>/,
-- holding data.parquet and the card; `oxa subsets list` reads the folders themselves).
CREATE TABLE IF NOT EXISTS subsets (
    name VARCHAR,
    version VARCHAR,
    created_at TIMESTAMP,
    strategy VARCHAR,
    n_rows BIGINT,
    run_id VARCHAR,
    description VARCHAR,
    PRIMARY KEY (name, version)
);
