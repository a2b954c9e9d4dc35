-- Run history: every event, and the tables projected from them.
CREATE TABLE events (
    run_id      text        NOT NULL,
    seq         integer     NOT NULL,
    type        text        NOT NULL,
    ts          timestamptz NOT NULL,
    payload     jsonb       NOT NULL,
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE runs (
    run_id      text PRIMARY KEY,
    goal        text        NOT NULL,
    status      text        NOT NULL,
    stages      jsonb       NOT NULL,
    output      text,
    reason      text,
    tokens      bigint      NOT NULL DEFAULT 0,
    cost_usd    double precision NOT NULL DEFAULT 0,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz
);

CREATE TABLE stages (
    run_id      text        NOT NULL REFERENCES runs ON DELETE CASCADE,
    stage       text        NOT NULL,
    status      text        NOT NULL,
    debate_id   text,
    reason      text,
    tokens      bigint,
    cost_usd    double precision,
    confidence  double precision,
    duration_s  double precision,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    PRIMARY KEY (run_id, stage)
);

CREATE TABLE debates (
    debate_id   text PRIMARY KEY,
    run_id      text        NOT NULL REFERENCES runs ON DELETE CASCADE,
    stage       text        NOT NULL,
    started_at  timestamptz NOT NULL
);

CREATE TABLE turns (
    run_id      text        NOT NULL,
    seq         integer     NOT NULL,
    debate_id   text        NOT NULL,
    round       integer     NOT NULL,
    role        text        NOT NULL,
    ci          text        NOT NULL,
    vote        text,
    confidence  double precision,
    abstained   boolean     NOT NULL,
    error       text,
    latency_s   double precision,
    payload     jsonb       NOT NULL,
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE usage (
    run_id      text        NOT NULL,
    seq         integer     NOT NULL,
    stage       text        NOT NULL,
    ci          text        NOT NULL,
    model       text,
    input_tokens integer    NOT NULL,
    output_tokens integer   NOT NULL,
    cache_creation_input_tokens integer NOT NULL,
    cache_read_input_tokens integer NOT NULL,
    cost_usd    double precision NOT NULL,
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE artifacts (
    run_id      text        NOT NULL REFERENCES runs ON DELETE CASCADE,
    stage       text        NOT NULL,
    name        text        NOT NULL,
    files       jsonb       NOT NULL,
    content     jsonb       NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (run_id, stage)
);

CREATE INDEX runs_started ON runs (started_at);
CREATE INDEX turns_debate ON turns (debate_id);
