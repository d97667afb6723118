DO $lossless$
DECLARE
  -- lossless lock prelude: every table lock first, in one order, each attempt within half of deadlock_timeout
  kept text := current_setting('lock_timeout');
  budget interval := CASE WHEN kept::interval > interval '0'
    THEN least(kept::interval, current_setting('deadlock_timeout')::interval / 2)
    ELSE current_setting('deadlock_timeout')::interval / 2 END;
  deadline timestamptz;
  attempt int := 0;
BEGIN
  LOOP
    attempt := attempt + 1;
    deadline := clock_timestamp() + budget / 2 ^ greatest(0, 4 - attempt);
    BEGIN
      PERFORM set_config('lock_timeout', greatest(1, ceil(1000 * extract(epoch FROM deadline - clock_timestamp())))::bigint || 'ms', true);
      LOCK TABLE client_goals IN SHARE ROW EXCLUSIVE MODE;
      PERFORM set_config('lock_timeout', greatest(1, ceil(1000 * extract(epoch FROM deadline - clock_timestamp())))::bigint || 'ms', true);
      LOCK TABLE commitments IN ACCESS EXCLUSIVE MODE;
      IF to_regclass('lossless_stash') IS NOT NULL THEN
        PERFORM set_config('lock_timeout', greatest(1, ceil(1000 * extract(epoch FROM deadline - clock_timestamp())))::bigint || 'ms', true);
        LOCK TABLE lossless_stash IN ACCESS EXCLUSIVE MODE;
      END IF;
      EXIT;
    EXCEPTION WHEN lock_not_available THEN
      IF attempt >= 8 THEN
        RAISE;
      END IF;
      PERFORM pg_sleep(0.005 * attempt * (0.5 + random()));
    END;
  END LOOP;
  PERFORM set_config('lock_timeout', kept, true);
END
$lossless$;

DO $lossless$
DECLARE
  found text;
BEGIN
  SELECT max(q.role) || ' (policies: ' || max(q.policies) || ')' INTO found FROM (SELECT current_user::text AS role, coalesce((SELECT string_agg(quote_ident(p.polname), ', ' ORDER BY p.polname) FROM pg_policy p WHERE p.polrelid = to_regclass('commitments')), '(no policy: every row is hidden)') AS policies WHERE row_security_active(to_regclass('commitments'))) AS q;
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'check_violation', MESSAGE = 'refused: restore_column_from_jsonb: row-level security on commitments applies to role ' || found || ': the operation would see only some rows; run the migration as the table owner without FORCE ROW LEVEL SECURITY, as a role with BYPASSRLS, or as a superuser';
  END IF;
END
$lossless$;

DO $lossless$
DECLARE
  found text;
BEGIN
  SELECT string_agg(q.kind || ' ' || q.what, ', ') INTO found FROM (SELECT 'inheritance child' AS kind, i.inhrelid::regclass::text AS what FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent WHERE i.inhparent = to_regclass('commitments') AND p.relkind = 'r' UNION ALL SELECT 'column inherited from', string_agg(i.inhparent::regclass::text, ', ') FROM pg_attribute a JOIN pg_inherits i ON i.inhrelid = a.attrelid WHERE a.attrelid = to_regclass('commitments') AND a.attname = NULL AND a.attinhcount > 0 HAVING count(*) > 0 ORDER BY 1, 2) AS q;
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'check_violation', MESSAGE = 'refused: restore_column_from_jsonb: commitments is in a table-inheritance hierarchy (' || found || '): its statements would reach the children''s rows too, which the parent''s primary key does not tell apart from its own; detach the children (ALTER TABLE child NO INHERIT parent), run the operation on each table on its own (each needs its own primary key), then attach them again (ALTER TABLE child INHERIT parent)';
  END IF;
END
$lossless$;

DO $lossless$
DECLARE t record; kept jsonb := coalesce(nullif(current_setting('lossless.quiet_triggers', true), ''), '{}')::jsonb; mine jsonb := '{}'; BEGIN FOR t IN SELECT tgname, tgenabled::text AS mode FROM pg_trigger WHERE tgrelid = to_regclass('commitments') AND NOT tgisinternal AND tgenabled <> 'D' ORDER BY tgname LOOP mine := mine || jsonb_build_object(t.tgname, t.mode); EXECUTE format('ALTER TABLE %s DISABLE TRIGGER %I', to_regclass('commitments'), t.tgname); END LOOP; PERFORM set_config('lossless.quiet_triggers', (kept || jsonb_build_object('commitments', mine))::text, true); END
$lossless$;

DO $lossless$
DECLARE
  n bigint;
  samples text;
BEGIN
  SELECT count(*) INTO n FROM commitments AS t WHERE (jsonb_typeof(t.metadata) = 'object' AND t.metadata ? 'legacy_goal_id') IS TRUE AND (t.metadata ->> 'legacy_goal_id')::uuid IS NOT NULL AND NOT EXISTS (SELECT FROM client_goals AS x WHERE x.id = (t.metadata ->> 'legacy_goal_id')::uuid);
  IF n > 0 THEN
    SELECT string_agg(s.k, ', ') INTO samples FROM (SELECT t.id::text AS k FROM commitments AS t WHERE (jsonb_typeof(t.metadata) = 'object' AND t.metadata ? 'legacy_goal_id') IS TRUE AND (t.metadata ->> 'legacy_goal_id')::uuid IS NOT NULL AND NOT EXISTS (SELECT FROM client_goals AS x WHERE x.id = (t.metadata ->> 'legacy_goal_id')::uuid) ORDER BY 1 LIMIT 5) AS s;
    RAISE EXCEPTION USING ERRCODE = 'check_violation', MESSAGE = 'refused: commitments.metadata: ' || n || ' row(s) hold under ''legacy_goal_id'' a goal_id that client_goals.id no longer has' || ' (e.g. ' || samples || ')' || '; restore the referenced rows or remove those keys first';
  END IF;
END
$lossless$;

ALTER TABLE commitments ADD COLUMN goal_id uuid;

SELECT set_config('lossless.enable_nestloop', current_setting('enable_nestloop'), true), set_config('enable_nestloop', 'off', true);

DO $lossless$
BEGIN
  IF to_regclass('lossless_stash') IS NOT NULL THEN
    UPDATE commitments AS t SET goal_id = CASE WHEN jsonb_typeof((t.metadata -> 'legacy_goal_id')) IN ('object', 'array') THEN (jsonb_populate_record(NULL::commitments, jsonb_build_object('goal_id', (t.metadata -> 'legacy_goal_id')))).goal_id ELSE (t.metadata ->> 'legacy_goal_id')::uuid END, metadata = NULL FROM lossless_stash AS s WHERE s.kind = 'jsonb_was_null' AND s.table_name = 'commitments' AND s.column_name = 'metadata' AND s.row_key = jsonb_build_array(t.id) AND (jsonb_typeof(t.metadata) = 'object' AND t.metadata ? 'legacy_goal_id') IS TRUE AND t.metadata = jsonb_build_object('legacy_goal_id', t.metadata -> 'legacy_goal_id');
  END IF;
END
$lossless$;

SELECT set_config('enable_nestloop', current_setting('lossless.enable_nestloop'), true);

UPDATE commitments AS t SET goal_id = CASE WHEN jsonb_typeof((t.metadata -> 'legacy_goal_id')) IN ('object', 'array') THEN (jsonb_populate_record(NULL::commitments, jsonb_build_object('goal_id', (t.metadata -> 'legacy_goal_id')))).goal_id ELSE (t.metadata ->> 'legacy_goal_id')::uuid END, metadata = t.metadata - 'legacy_goal_id' WHERE (jsonb_typeof(t.metadata) = 'object' AND t.metadata ? 'legacy_goal_id') IS TRUE;

DO $lossless$
BEGIN
  IF to_regclass('lossless_stash') IS NOT NULL THEN
    DELETE FROM lossless_stash AS r WHERE r.kind = 'jsonb_key' AND r.table_name = 'commitments' AND r.column_name = 'metadata' AND r.payload ->> 'key' = 'legacy_goal_id';
  END IF;
END
$lossless$;

DO $lossless$
BEGIN
  IF to_regclass('lossless_stash') IS NOT NULL THEN
    DELETE FROM lossless_stash AS m WHERE m.kind = 'jsonb_was_null' AND m.table_name = 'commitments' AND m.column_name = 'metadata' AND NOT EXISTS (SELECT FROM lossless_stash AS r WHERE r.kind = 'jsonb_key' AND r.table_name = 'commitments' AND r.column_name = 'metadata');
  END IF;
END
$lossless$;

DO $lossless$
DECLARE
  r jsonb;
BEGIN
  IF to_regclass('lossless_stash') IS NOT NULL THEN
    SELECT s.payload INTO r FROM lossless_stash AS s WHERE s.kind = 'column' AND s.table_name = 'commitments' AND s.column_name = 'goal_id' LIMIT 1;
    IF r ->> 'default' IS NOT NULL THEN
      EXECUTE 'ALTER TABLE commitments ALTER COLUMN goal_id ' || 'SET DEFAULT ' || (r ->> 'default');
    END IF;
    IF r -> 'attached' ->> 'collation' IS NOT NULL THEN
      EXECUTE 'ALTER TABLE commitments ALTER COLUMN goal_id ' || 'TYPE uuid' || ' COLLATE ' || (r -> 'attached' ->> 'collation');
    END IF;
  END IF;
END
$lossless$;

-- squawk-ignore constraint-missing-not-valid, adding-foreign-key-constraint -- lossless: see docs/live.md
ALTER TABLE commitments ADD CONSTRAINT commitments_goal_fk FOREIGN KEY (goal_id) REFERENCES client_goals(id) MATCH FULL ON DELETE SET NULL ON UPDATE CASCADE DEFERRABLE INITIALLY DEFERRED;

DO $lossless$
DECLARE
  s text;
  lossless_named text;
  lossless_current text;
BEGIN
  IF to_regclass('lossless_stash') IS NOT NULL THEN
    FOR s IN SELECT jsonb_array_elements_text(s.payload -> 'attached' -> 'statements') FROM lossless_stash AS s WHERE s.kind = 'column' AND s.table_name = 'commitments' AND s.column_name = 'goal_id' LOOP
      EXECUTE s;
    END LOOP;
    SELECT r.payload -> 'not_null' ->> 'name' INTO lossless_named FROM lossless_stash AS r WHERE r.kind = 'column' AND r.table_name = 'commitments' AND r.column_name = 'goal_id' LIMIT 1;
    SELECT n.conname INTO lossless_current FROM pg_constraint n JOIN pg_attribute a ON a.attrelid = n.conrelid AND n.conkey = ARRAY[a.attnum] WHERE n.conrelid = to_regclass('commitments') AND n.contype = 'n' AND a.attname = 'goal_id';
    IF lossless_current <> lossless_named THEN
      EXECUTE format('ALTER TABLE %s RENAME CONSTRAINT %I TO %I', to_regclass('commitments'), lossless_current, lossless_named);
    END IF;
  END IF;
END
$lossless$;

DO $lossless$
BEGIN
  IF to_regclass('lossless_stash') IS NOT NULL THEN
    DELETE FROM lossless_stash AS s WHERE s.kind = 'column' AND s.table_name = 'commitments' AND s.column_name = 'goal_id';
  END IF;
END
$lossless$;

DO $lossless$
BEGIN
  IF to_regclass('lossless_stash') IS NOT NULL THEN
    IF NOT EXISTS (SELECT FROM lossless_stash) THEN
      DROP TABLE lossless_stash;
    END IF;
  END IF;
END
$lossless$;

DO $lossless$
DECLARE t record; kept jsonb := coalesce(nullif(current_setting('lossless.quiet_triggers', true), ''), '{}')::jsonb; BEGIN IF to_regclass('commitments') IS NOT NULL THEN FOR t IN SELECT key AS name, value AS mode FROM jsonb_each_text(coalesce(kept -> 'commitments', '{}')) LOOP EXECUTE format('ALTER TABLE %s ENABLE %s TRIGGER %I', to_regclass('commitments'), CASE t.mode WHEN 'R' THEN 'REPLICA' WHEN 'A' THEN 'ALWAYS' ELSE '' END, t.name); END LOOP; END IF; PERFORM set_config('lossless.quiet_triggers', (kept - 'commitments')::text, true); END
$lossless$;

