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
      IF to_regclass('lossless_stash') IS NOT NULL THEN
        PERFORM set_config('lock_timeout', greatest(1, ceil(1000 * extract(epoch FROM deadline - clock_timestamp())))::bigint || 'ms', true);
        LOCK TABLE lossless_stash IN ACCESS EXCLUSIVE MODE;
      END IF;
      PERFORM set_config('lock_timeout', greatest(1, ceil(1000 * extract(epoch FROM deadline - clock_timestamp())))::bigint || 'ms', true);
      LOCK TABLE target_goal_links IN ACCESS EXCLUSIVE MODE;
      PERFORM set_config('lock_timeout', greatest(1, ceil(1000 * extract(epoch FROM deadline - clock_timestamp())))::bigint || 'ms', true);
      LOCK TABLE targets IN ACCESS EXCLUSIVE MODE;
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
  SELECT max(q.role) || ' (policies: ' || max(q.policies) || ')' INTO found FROM (SELECT current_user::text AS role, coalesce((SELECT string_agg(quote_ident(p.polname), ', ' ORDER BY p.polname) FROM pg_policy p WHERE p.polrelid = to_regclass('targets')), '(no policy: every row is hidden)') AS policies WHERE row_security_active(to_regclass('targets'))) AS q;
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'check_violation', MESSAGE = 'refused: collapse_junction_to_fk: row-level security on targets applies to role ' || found || ': the operation would see only some rows; run the migration as the table owner without FORCE ROW LEVEL SECURITY, as a role with BYPASSRLS, or as a superuser';
  END IF;
END
$lossless$;

DO $lossless$
DECLARE
  found text;
BEGIN
  SELECT max(q.role) || ' (policies: ' || max(q.policies) || ')' INTO found FROM (SELECT current_user::text AS role, coalesce((SELECT string_agg(quote_ident(p.polname), ', ' ORDER BY p.polname) FROM pg_policy p WHERE p.polrelid = to_regclass('target_goal_links')), '(no policy: every row is hidden)') AS policies WHERE row_security_active(to_regclass('target_goal_links'))) AS q;
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'check_violation', MESSAGE = 'refused: collapse_junction_to_fk: row-level security on target_goal_links applies to role ' || found || ': the operation would see only some rows; run the migration as the table owner without FORCE ROW LEVEL SECURITY, as a role with BYPASSRLS, or as a superuser';
  END IF;
END
$lossless$;

DO $lossless$
DECLARE
  found text;
BEGIN
  SELECT string_agg(q.kind || ' ' || q.what, ', ') INTO found FROM (SELECT 'inheritance child' AS kind, i.inhrelid::regclass::text AS what FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent WHERE i.inhparent = to_regclass('targets') AND p.relkind = 'r' UNION ALL SELECT 'column inherited from', string_agg(i.inhparent::regclass::text, ', ') FROM pg_attribute a JOIN pg_inherits i ON i.inhrelid = a.attrelid WHERE a.attrelid = to_regclass('targets') AND a.attname = NULL AND a.attinhcount > 0 HAVING count(*) > 0 ORDER BY 1, 2) AS q;
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'check_violation', MESSAGE = 'refused: collapse_junction_to_fk: targets is in a table-inheritance hierarchy (' || found || '): its statements would reach the children''s rows too, which the parent''s primary key does not tell apart from its own; detach the children (ALTER TABLE child NO INHERIT parent), run the operation on each table on its own (each needs its own primary key), then attach them again (ALTER TABLE child INHERIT parent)';
  END IF;
END
$lossless$;

DO $lossless$
DECLARE
  found text;
BEGIN
  SELECT string_agg(q.kind || ' ' || q.what, ', ') INTO found FROM (SELECT 'inheritance child' AS kind, i.inhrelid::regclass::text AS what FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent WHERE i.inhparent = to_regclass('target_goal_links') AND p.relkind = 'r' UNION ALL SELECT 'column inherited from', string_agg(i.inhparent::regclass::text, ', ') FROM pg_attribute a JOIN pg_inherits i ON i.inhrelid = a.attrelid WHERE a.attrelid = to_regclass('target_goal_links') AND a.attname = NULL AND a.attinhcount > 0 HAVING count(*) > 0 ORDER BY 1, 2) AS q;
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'check_violation', MESSAGE = 'refused: collapse_junction_to_fk: target_goal_links is in a table-inheritance hierarchy (' || found || '): its statements would reach the children''s rows too, which the parent''s primary key does not tell apart from its own; detach the children (ALTER TABLE child NO INHERIT parent), run the operation on each table on its own (each needs its own primary key), then attach them again (ALTER TABLE child INHERIT parent)';
  END IF;
END
$lossless$;

DO $lossless$
DECLARE
  found text;
BEGIN
  SELECT string_agg(q.what, ', ') INTO found FROM (SELECT a.attname::text AS what FROM pg_attribute a WHERE a.attrelid = to_regclass('target_goal_links') AND a.attnum > 0 AND NOT a.attisdropped AND a.attname::text NOT IN ('id', 'target_id', 'goal_id', 'created_at') ORDER BY a.attnum) AS q;
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'check_violation', MESSAGE = 'refused: collapse_junction_to_fk: target_goal_links has payload column(s) ' || found || ' that the collapse would drop with it; copy them elsewhere first, or declare their loss with drop_payload=(...) naming each of them';
  END IF;
END
$lossless$;

DO $lossless$
DECLARE
  n bigint;
  samples text;
BEGIN
  SELECT count(*) INTO n FROM target_goal_links AS t WHERE EXISTS (SELECT FROM target_goal_links AS d WHERE d.target_id = t.target_id AND d.goal_id = t.goal_id AND d.ctid <> t.ctid);
  IF n > 0 THEN
    SELECT string_agg(s.k, ', ') INTO samples FROM (SELECT ROW(t.target_id, t.goal_id)::text AS k FROM target_goal_links AS t WHERE EXISTS (SELECT FROM target_goal_links AS d WHERE d.target_id = t.target_id AND d.goal_id = t.goal_id AND d.ctid <> t.ctid) ORDER BY 1 LIMIT 5) AS s;
    RAISE EXCEPTION USING ERRCODE = 'check_violation', MESSAGE = 'refused: target_goal_links: ' || n || ' row(s) repeat a (target_id, goal_id) pair, which the promote back cannot re-insert (it adds UNIQUE (target_id, goal_id))' || ' (e.g. ' || samples || ')' || '; remove the repeated links first, or collapse without keep_extra_links (the links beyond the first are then the declared loss)';
  END IF;
END
$lossless$;

DO $lossless$
DECLARE t record; kept jsonb := coalesce(nullif(current_setting('lossless.quiet_triggers', true), ''), '{}')::jsonb; mine jsonb := '{}'; BEGIN FOR t IN SELECT tgname, tgenabled::text AS mode FROM pg_trigger WHERE tgrelid = to_regclass('targets') AND NOT tgisinternal AND tgenabled <> 'D' ORDER BY tgname LOOP mine := mine || jsonb_build_object(t.tgname, t.mode); EXECUTE format('ALTER TABLE %s DISABLE TRIGGER %I', to_regclass('targets'), t.tgname); END LOOP; PERFORM set_config('lossless.quiet_triggers', (kept || jsonb_build_object('targets', mine))::text, true); END
$lossless$;

DO $lossless$
DECLARE t record; kept jsonb := coalesce(nullif(current_setting('lossless.quiet_triggers', true), ''), '{}')::jsonb; mine jsonb := '{}'; BEGIN FOR t IN SELECT tgname, tgenabled::text AS mode FROM pg_trigger WHERE tgrelid = to_regclass('target_goal_links') AND NOT tgisinternal AND tgenabled <> 'D' ORDER BY tgname LOOP mine := mine || jsonb_build_object(t.tgname, t.mode); EXECUTE format('ALTER TABLE %s DISABLE TRIGGER %I', to_regclass('target_goal_links'), t.tgname); END LOOP; PERFORM set_config('lossless.quiet_triggers', (kept || jsonb_build_object('target_goal_links', mine))::text, true); END
$lossless$;

CREATE TABLE IF NOT EXISTS lossless_stash (kind text NOT NULL, table_name text NOT NULL, column_name text NOT NULL, row_key jsonb NOT NULL, payload jsonb);

DELETE FROM lossless_stash AS s WHERE s.kind = 'link' AND s.table_name = 'targets' AND s.column_name = 'goal_id';

INSERT INTO lossless_stash (kind, table_name, column_name, row_key, payload) SELECT 'link', 'targets', 'goal_id', jsonb_build_array(k.target_id), jsonb_build_object('row', to_jsonb(k) - 'lossless_n' - 'lossless_first', 'first', to_jsonb(k.lossless_first)) FROM (SELECT j.*, count(*) OVER (PARTITION BY j.target_id) AS lossless_n, first_value(j.goal_id) OVER (PARTITION BY j.target_id ORDER BY j.created_at, j.id, j.goal_id) AS lossless_first FROM target_goal_links AS j) AS k WHERE k.lossless_n > 1;

ANALYZE lossless_stash;

ALTER TABLE targets ADD COLUMN goal_id uuid;

UPDATE targets AS t SET goal_id = f.v FROM (SELECT DISTINCT ON (x.target_id) x.target_id AS g, x.goal_id AS v FROM target_goal_links AS x ORDER BY x.target_id, x.created_at, x.id, x.goal_id) AS f WHERE t.id = f.g;

DO $lossless$
DECLARE
  r jsonb;
BEGIN
  IF to_regclass('lossless_stash') IS NOT NULL THEN
    SELECT s.payload INTO r FROM lossless_stash AS s WHERE s.kind = 'column' AND s.table_name = 'targets' AND s.column_name = 'goal_id' LIMIT 1;
    IF r ->> 'default' IS NOT NULL THEN
      EXECUTE 'ALTER TABLE targets ALTER COLUMN goal_id ' || 'SET DEFAULT ' || (r ->> 'default');
    END IF;
    IF r -> 'attached' ->> 'collation' IS NOT NULL THEN
      EXECUTE 'ALTER TABLE targets ALTER COLUMN goal_id ' || 'TYPE uuid' || ' COLLATE ' || (r -> 'attached' ->> 'collation');
    END IF;
  END IF;
END
$lossless$;

DO $lossless$
BEGIN
  IF NOT EXISTS (SELECT FROM targets WHERE goal_id IS NULL) THEN
    ALTER TABLE targets ALTER COLUMN goal_id SET NOT NULL;
  ELSE
    RAISE NOTICE USING MESSAGE = 'lossless: targets.goal_id left nullable: rows have no value';
  END IF;
END
$lossless$;

DO $lossless$
DECLARE
  fk jsonb;
BEGIN
  IF to_regclass('lossless_stash') IS NOT NULL THEN
    FOR fk IN SELECT jsonb_array_elements(s.payload -> 'foreign_keys') FROM lossless_stash AS s WHERE s.kind = 'column' AND s.table_name = 'targets' AND s.column_name = 'goal_id' LOOP
      EXECUTE 'ALTER TABLE ' || 'targets' || ' ADD CONSTRAINT ' || quote_ident(fk ->> 'name') || ' ' || (fk ->> 'definition');
    END LOOP;
  END IF;
END
$lossless$;

DO $lossless$
DECLARE
  s text;
  lossless_named text;
  lossless_current text;
BEGIN
  IF to_regclass('lossless_stash') IS NOT NULL THEN
    FOR s IN SELECT jsonb_array_elements_text(s.payload -> 'attached' -> 'statements') FROM lossless_stash AS s WHERE s.kind = 'column' AND s.table_name = 'targets' AND s.column_name = 'goal_id' LOOP
      EXECUTE s;
    END LOOP;
    SELECT r.payload -> 'not_null' ->> 'name' INTO lossless_named FROM lossless_stash AS r WHERE r.kind = 'column' AND r.table_name = 'targets' AND r.column_name = 'goal_id' LIMIT 1;
    SELECT n.conname INTO lossless_current FROM pg_constraint n JOIN pg_attribute a ON a.attrelid = n.conrelid AND n.conkey = ARRAY[a.attnum] WHERE n.conrelid = to_regclass('targets') AND n.contype = 'n' AND a.attname = 'goal_id';
    IF lossless_current <> lossless_named THEN
      EXECUTE format('ALTER TABLE %s RENAME CONSTRAINT %I TO %I', to_regclass('targets'), lossless_current, lossless_named);
    END IF;
  END IF;
END
$lossless$;

-- squawk-ignore ban-drop-table -- lossless: see docs/live.md
DROP TABLE target_goal_links;

DO $lossless$
BEGIN
  IF to_regclass('lossless_stash') IS NOT NULL THEN
    DELETE FROM lossless_stash AS s WHERE s.kind = 'column' AND s.table_name = 'targets' AND s.column_name = 'goal_id';
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
DECLARE t record; kept jsonb := coalesce(nullif(current_setting('lossless.quiet_triggers', true), ''), '{}')::jsonb; BEGIN IF to_regclass('targets') IS NOT NULL THEN FOR t IN SELECT key AS name, value AS mode FROM jsonb_each_text(coalesce(kept -> 'targets', '{}')) LOOP EXECUTE format('ALTER TABLE %s ENABLE %s TRIGGER %I', to_regclass('targets'), CASE t.mode WHEN 'R' THEN 'REPLICA' WHEN 'A' THEN 'ALWAYS' ELSE '' END, t.name); END LOOP; END IF; PERFORM set_config('lossless.quiet_triggers', (kept - 'targets')::text, true); END
$lossless$;

DO $lossless$
DECLARE t record; kept jsonb := coalesce(nullif(current_setting('lossless.quiet_triggers', true), ''), '{}')::jsonb; BEGIN IF to_regclass('target_goal_links') IS NOT NULL THEN FOR t IN SELECT key AS name, value AS mode FROM jsonb_each_text(coalesce(kept -> 'target_goal_links', '{}')) LOOP EXECUTE format('ALTER TABLE %s ENABLE %s TRIGGER %I', to_regclass('target_goal_links'), CASE t.mode WHEN 'R' THEN 'REPLICA' WHEN 'A' THEN 'ALWAYS' ELSE '' END, t.name); END LOOP; END IF; PERFORM set_config('lossless.quiet_triggers', (kept - 'target_goal_links')::text, true); END
$lossless$;

