-- Moves a projection's checkpoint from where a batch began to its last event and announces the
-- changed rows (read_changed, delivered on commit). Sent in the batch's transaction ahead of its
-- rows: it locks the checkpoint, and fails (55000) when the checkpoint is no longer where the
-- batch was read from, or no longer RUNNING (a rebuild, an operator), so the rows roll back too.
CREATE FUNCTION "read"."advance_checkpoint"(
  p_name TEXT, p_from_tx XID8, p_from_position BIGINT, p_to_tx XID8, p_to_position BIGINT, p_messages TEXT[]
) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  UPDATE "read"."projection_checkpoints"
     SET tx_id = p_to_tx, position = p_to_position, last_error = NULL, failed_position = NULL, updated_at = now()
   WHERE name = p_name AND tx_id = p_from_tx AND position = p_from_position AND status = 'RUNNING';
  IF NOT FOUND THEN
    RAISE EXCEPTION 'projection % is no longer RUNNING at %/%', p_name, p_from_tx, p_from_position
      USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  PERFORM pg_notify('read_changed', m) FROM unnest(p_messages) AS m;
END $$;
