-- The catalog's own small tables.

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
