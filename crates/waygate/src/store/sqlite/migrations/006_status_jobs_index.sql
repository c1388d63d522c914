-- Version 6: status jobs get their own index. With one index over every job, the writer's
-- search for due status steps stepped through every due send job (a table read each), so
-- a backlog of 100,000 sends made each pass of the job runner scan 100,000 rows.
DROP INDEX IF EXISTS jobs_due;
CREATE INDEX jobs_due ON jobs(dead, run_at) WHERE kind <> 'status';
CREATE INDEX jobs_status_due ON jobs(run_at) WHERE kind = 'status' AND dead = 0;
