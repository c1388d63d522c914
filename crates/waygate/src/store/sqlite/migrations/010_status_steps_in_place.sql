-- Version 10: a status step changes rows in place instead of rewriting them.
-- `status_history` holds the steps as JSON objects joined by commas, without the array's
-- brackets (readers add them), so a step is appended by concatenation: trimming the closing
-- bracket and matching the allowed predecessors with `instr` were a twentieth of the
-- writer's instructions. A status job keeps its payload (all its steps) and counts the steps
-- applied in `step`: rewriting the payload with one step fewer re-encoded every message id
-- of the batch at each step.
UPDATE message_status SET status_history = substr(status_history, 2, length(status_history) - 2);
ALTER TABLE jobs ADD COLUMN step INTEGER NOT NULL DEFAULT 0;
