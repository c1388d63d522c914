-- Version 4: a status job walks a batch of messages (those accepted in one transaction)
-- through their steps, so its payload names `message_ids` instead of one `message_id`.
UPDATE jobs
SET payload = json_set(json_remove(payload, '$.message_id'), '$.message_ids',
                       json_array(json_extract(payload, '$.message_id')))
WHERE kind = 'status' AND json_type(payload, '$.message_id') = 'integer';
