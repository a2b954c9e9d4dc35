-- a person's decisions on gated stages: who decided what, and when
CREATE TABLE decisions (
    decision_id text        NOT NULL,
    run_id      text        NOT NULL REFERENCES runs ON DELETE CASCADE,
    stage       text        NOT NULL,
    decision    text        NOT NULL,
    decided_by  text        NOT NULL,
    comment     text,
    artifact    jsonb,
    decided_at  timestamptz NOT NULL,
    PRIMARY KEY (run_id, decision_id)
);
