-- a fork names the run it forks; an artifact it took as it was names the run it came from
ALTER TABLE runs ADD COLUMN fork_of text;
ALTER TABLE artifacts ADD COLUMN reused_from text;
