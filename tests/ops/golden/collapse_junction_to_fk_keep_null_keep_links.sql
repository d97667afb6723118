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
    RAISE EXCEPTION USING ERRCODE = 'check_violation', MESSAGE = 'refused: collapse_junction_to_fk: target_goal_links has payload column(s) ' || found || ' that the collapse would drop with it; copy them elsewhere first, collapse with keep_extra_links=True (the junction is then recorded whole, payload included, for the promote back), or declare their loss with drop_payload=(...) naming each of them';
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

DELETE FROM lossless_stash AS s WHERE s.kind = 'junction' AND s.table_name = 'targets' AND s.column_name = 'goal_id';

DO $lossless$
DECLARE
  lossless_rel regclass := to_regclass('target_goal_links');
  lossless_path text := current_setting('search_path');
  lossless_column boolean := EXISTS (SELECT FROM lossless_stash AS s WHERE s.kind = 'column' AND s.table_name = 'targets' AND s.column_name = 'goal_id');
  lossless_payload jsonb;
  lossless_seq regclass;
BEGIN
  IF true OR NOT lossless_column THEN
    PERFORM set_config('search_path', '', true);
    lossless_payload := 
(SELECT jsonb_build_object(
    'create', (
SELECT 'CREATE ' || CASE c.relpersistence WHEN 'u' THEN 'UNLOGGED ' ELSE '' END || 'TABLE '
    || t || ' (' || string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid,
    a.atttypmod) || CASE WHEN a.attcollation <> ty.typcollation THEN ' COLLATE '
    || (SELECT quote_ident(cn.nspname) || '.' || quote_ident(co.collname) FROM pg_collation co
        JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = a.attcollation)
    ELSE '' END
    || CASE WHEN a.attgenerated <> '' THEN ' GENERATED ALWAYS AS ('
         || pg_get_expr(d.adbin, d.adrelid) || ')'
         || CASE a.attgenerated WHEN 's' THEN ' STORED' ELSE ' VIRTUAL' END
       WHEN d.adbin IS NOT NULL THEN ' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid)
       ELSE '' END
    || CASE WHEN a.attidentity <> '' THEN ' GENERATED '
         || CASE a.attidentity WHEN 'a' THEN 'ALWAYS' ELSE 'BY DEFAULT' END
         || ' AS IDENTITY (SEQUENCE NAME ' || quote_ident(sn.nspname) || '.'
         || quote_ident(sc.relname) || ' START WITH ' || q.seqstart || ' INCREMENT BY '
         || q.seqincrement || ' MINVALUE ' || q.seqmin || ' MAXVALUE ' || q.seqmax || ' CACHE '
         || q.seqcache || CASE WHEN q.seqcycle THEN ' CYCLE' ELSE ' NO CYCLE' END || ')'
       ELSE '' END
    || CASE WHEN a.attnotnull THEN coalesce(' CONSTRAINT ' || quote_ident((
         SELECT n.conname FROM pg_constraint n WHERE n.conrelid = c.oid AND n.contype = 'n'
            AND n.conkey = ARRAY[a.attnum])), '') || ' NOT NULL' ELSE '' END,
    ', ' ORDER BY a.attnum) || ')'
    || coalesce(' WITH (' || array_to_string(c.reloptions, ', ') || ')', '')
FROM pg_attribute a JOIN pg_type ty ON ty.oid = a.atttypid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
LEFT JOIN pg_depend sd ON a.attidentity <> '' AND sd.classid = 'pg_class'::regclass
  AND sd.refclassid = 'pg_class'::regclass AND sd.refobjid = a.attrelid
  AND sd.refobjsubid = a.attnum AND sd.deptype = 'i'
LEFT JOIN pg_class sc ON sc.oid = sd.objid
LEFT JOIN pg_namespace sn ON sn.oid = sc.relnamespace
LEFT JOIN pg_sequence q ON q.seqrelid = sc.oid
WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
),
    'before_load', (
SELECT coalesce(jsonb_agg('SELECT setval(' || quote_literal(quote_ident(sn.nspname) || '.'
       || quote_ident(sc.relname)) || ', ' || pg_sequence_last_value(sc.oid) || ')'), '[]')
FROM pg_depend d JOIN pg_class sc ON sc.oid = d.objid AND sc.relkind = 'S'
JOIN pg_namespace sn ON sn.oid = sc.relnamespace
WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
  AND d.refobjid = c.oid AND d.refobjsubid > 0 AND d.deptype = 'i'
  AND CASE WHEN sc.relkind = 'S' THEN pg_sequence_last_value(sc.oid) IS NOT NULL END
),
    'statements', coalesce((
        WITH stx AS (SELECT s.* FROM pg_statistic_ext s WHERE s.stxrelid = c.oid)
        SELECT jsonb_agg(stmt ORDER BY step, stmt)
        FROM (
SELECT 1, 'ALTER TABLE ' || t || ' OWNER TO ' || quote_ident(pg_get_userbyid(c.relowner))
WHERE c.relowner <> (SELECT oid FROM pg_roles WHERE rolname = current_user)
UNION ALL
SELECT 10 + CASE con.contype WHEN 'p' THEN 0 WHEN 'u' THEN 1 WHEN 'x' THEN 2 WHEN 'c' THEN 3
                 ELSE 4 END,
       'ALTER TABLE ' || t || ' ADD CONSTRAINT ' || quote_ident(con.conname) || ' '
       || pg_get_constraintdef(con.oid)
FROM pg_constraint con WHERE con.conrelid = c.oid AND con.contype IN ('p', 'u', 'x', 'c', 'f')
UNION ALL
SELECT 15, 'COMMENT ON CONSTRAINT ' || quote_ident(con.conname) || ' ON ' || t || ' IS '
       || quote_literal(dsc.description)
FROM pg_constraint con
JOIN pg_description dsc ON dsc.objoid = con.oid AND dsc.classoid = 'pg_constraint'::regclass
WHERE con.conrelid = c.oid
UNION ALL
SELECT 20, pg_get_indexdef(i.indexrelid) FROM pg_index i
WHERE i.indrelid = c.oid AND NOT EXISTS (SELECT FROM pg_constraint k
      WHERE k.conindid = i.indexrelid AND k.conrelid = c.oid AND k.contype IN ('p', 'u', 'x'))
UNION ALL
SELECT 21, 'ALTER TABLE ' || t || ' CLUSTER ON ' || quote_ident(ic.relname)
FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
WHERE i.indrelid = c.oid AND i.indisclustered
UNION ALL
SELECT 21, 'ALTER TABLE ' || t || ' REPLICA IDENTITY ' || CASE c.relreplident
       WHEN 'n' THEN 'NOTHING' WHEN 'f' THEN 'FULL' ELSE 'USING INDEX ' || quote_ident((
       SELECT ic.relname FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
       WHERE i.indrelid = c.oid AND i.indisreplident)) END
WHERE c.relreplident <> 'd'
UNION ALL
SELECT 22, 'ALTER INDEX ' || quote_ident(n.nspname) || '.' || quote_ident(ic.relname)
       || ' ALTER COLUMN ' || ia.attnum || ' SET STATISTICS ' || ia.attstattarget
FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = ic.relnamespace
JOIN pg_attribute ia ON ia.attrelid = ic.oid AND ia.attstattarget >= 0
WHERE i.indrelid = c.oid
UNION ALL
SELECT 22, 'COMMENT ON INDEX ' || quote_ident(n.nspname) || '.' || quote_ident(ic.relname)
       || ' IS ' || quote_literal(dsc.description)
FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = ic.relnamespace
JOIN pg_description dsc ON dsc.objoid = ic.oid AND dsc.classoid = 'pg_class'::regclass
WHERE i.indrelid = c.oid
UNION ALL
SELECT 50, 'COMMENT ON TABLE ' || t || ' IS ' || quote_literal(dsc.description)
FROM pg_description dsc
WHERE dsc.objoid = c.oid AND dsc.classoid = 'pg_class'::regclass AND dsc.objsubid = 0
UNION ALL
SELECT 51, 'REVOKE ALL ON ' || t || ' FROM ' || quote_ident(pg_get_userbyid(c.relowner))
WHERE c.relacl IS NOT NULL
UNION ALL
SELECT 52, 'GRANT ' || g.privilege_type || ' ON ' || t || ' TO '
       || CASE g.grantee WHEN 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(g.grantee)) END
       || CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END
FROM aclexplode(c.relacl) AS g
UNION ALL
SELECT 53, 'ALTER TABLE ' || t || ' ENABLE ROW LEVEL SECURITY' WHERE c.relrowsecurity
UNION ALL
SELECT 53, 'ALTER TABLE ' || t || ' FORCE ROW LEVEL SECURITY' WHERE c.relforcerowsecurity
UNION ALL
SELECT 54, 'CREATE POLICY ' || quote_ident(p.policyname) || ' ON ' || t || ' AS '
       || p.permissive || ' FOR ' || p.cmd || ' TO ' || (SELECT string_agg(CASE r
          WHEN 'public' THEN 'PUBLIC' ELSE quote_ident(r) END, ', ') FROM unnest(p.roles) AS r)
       || coalesce(' USING (' || p.qual || ')', '')
       || coalesce(' WITH CHECK (' || p.with_check || ')', '')
FROM pg_policies p JOIN pg_namespace pn ON pn.nspname = p.schemaname
WHERE pn.oid = c.relnamespace AND p.tablename = c.relname
UNION ALL
SELECT 60, pg_get_triggerdef(tg.oid) FROM pg_trigger tg
WHERE tg.tgrelid = c.oid AND NOT tg.tgisinternal
UNION ALL
SELECT 61, 'ALTER TABLE ' || t || CASE m.mode WHEN 'D' THEN ' DISABLE'
       WHEN 'R' THEN ' ENABLE REPLICA' ELSE ' ENABLE ALWAYS' END || ' TRIGGER '
       || quote_ident(tg.tgname)
FROM pg_trigger tg CROSS JOIN LATERAL (
    SELECT coalesce(coalesce(nullif(current_setting('lossless.quiet_triggers', true), '')::jsonb -> 'target_goal_links', '{}') ->> tg.tgname, tg.tgenabled::text) AS mode) AS m
WHERE tg.tgrelid = c.oid AND NOT tg.tgisinternal AND m.mode <> 'O'
UNION ALL
SELECT 61, 'COMMENT ON TRIGGER ' || quote_ident(tg.tgname) || ' ON ' || t || ' IS '
       || quote_literal(dsc.description)
FROM pg_trigger tg
JOIN pg_description dsc ON dsc.objoid = tg.oid AND dsc.classoid = 'pg_trigger'::regclass
WHERE tg.tgrelid = c.oid AND NOT tg.tgisinternal
 UNION ALL 
SELECT 30, 'CREATE STATISTICS ' || quote_ident(n.nspname) || '.' || quote_ident(s.stxname)
       || CASE WHEN s.stxkind = ARRAY['e']::"char"[] THEN '' ELSE ' (' || array_to_string(ARRAY(
              SELECT CASE k WHEN 'd' THEN 'ndistinct' WHEN 'f' THEN 'dependencies'
                            ELSE 'mcv' END
              FROM unnest(s.stxkind) AS k WHERE k <> 'e' ORDER BY k), ', ') || ')' END
       || ' ON ' || pg_get_statisticsobjdef_columns(s.oid) || ' FROM ' || t
FROM stx s JOIN pg_namespace n ON n.oid = s.stxnamespace
UNION ALL
SELECT 31, 'ALTER STATISTICS ' || quote_ident(n.nspname) || '.' || quote_ident(s.stxname)
       || ' SET STATISTICS ' || s.stxstattarget
FROM stx s JOIN pg_namespace n ON n.oid = s.stxnamespace WHERE s.stxstattarget >= 0
UNION ALL
SELECT 31, 'COMMENT ON STATISTICS ' || quote_ident(n.nspname) || '.'
       || quote_ident(s.stxname) || ' IS ' || quote_literal(dsc.description)
FROM stx s JOIN pg_namespace n ON n.oid = s.stxnamespace
JOIN pg_description dsc ON dsc.objoid = s.oid
 AND dsc.classoid = 'pg_statistic_ext'::regclass
 UNION ALL 
SELECT x.step, x.stmt FROM pg_attribute a
CROSS JOIN LATERAL (SELECT quote_ident(a.attname) AS col) AS names
CROSS JOIN LATERAL (
SELECT 40, 'ALTER TABLE ' || t || ' ALTER COLUMN ' || col || ' SET STATISTICS '
       || a.attstattarget
WHERE a.attstattarget >= 0
UNION ALL
SELECT 41, 'ALTER TABLE ' || t || ' ALTER COLUMN ' || col || ' SET STORAGE '
       || CASE a.attstorage WHEN 'p' THEN 'PLAIN' WHEN 'e' THEN 'EXTERNAL'
               WHEN 'm' THEN 'MAIN' ELSE 'EXTENDED' END
FROM pg_type ty WHERE ty.oid = a.atttypid AND a.attstorage <> ty.typstorage
UNION ALL
SELECT 42, 'ALTER TABLE ' || t || ' ALTER COLUMN ' || col || ' SET COMPRESSION '
       || CASE a.attcompression WHEN 'p' THEN 'pglz' ELSE 'lz4' END
WHERE a.attcompression <> ''
UNION ALL
SELECT 43, 'ALTER TABLE ' || t || ' ALTER COLUMN ' || col || ' SET (' || o || ')'
FROM unnest(a.attoptions) AS o WHERE o NOT LIKE 'pg\_attver=%'
UNION ALL
SELECT 44, 'COMMENT ON COLUMN ' || t || '.' || col || ' IS ' || quote_literal(dsc.description)
FROM pg_description dsc
WHERE dsc.objoid = a.attrelid AND dsc.classoid = 'pg_class'::regclass
  AND dsc.objsubid = a.attnum
UNION ALL
SELECT 45, 'GRANT ' || g.privilege_type || ' (' || col || ') ON ' || t || ' TO '
       || CASE g.grantee WHEN 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END
       || CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END
FROM aclexplode(a.attacl) AS g LEFT JOIN pg_roles r ON r.oid = g.grantee
UNION ALL
SELECT 46, 'ALTER SEQUENCE ' || quote_ident(sn.nspname) || '.' || quote_ident(sc.relname)
       || ' OWNED BY ' || t || '.' || col
FROM pg_depend d JOIN pg_class sc ON sc.oid = d.objid AND sc.relkind = 'S'
JOIN pg_namespace sn ON sn.oid = sc.relnamespace
WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
  AND d.refobjid = a.attrelid AND d.refobjsubid = a.attnum AND d.deptype = 'a'
UNION ALL
SELECT 47 + g.n, CASE g.n
    WHEN 0 THEN 'ALTER TABLE ' || t || ' ALTER COLUMN ' || col || ' ADD GENERATED '
        || CASE a.attidentity WHEN 'a' THEN 'ALWAYS' ELSE 'BY DEFAULT' END
        || ' AS IDENTITY (SEQUENCE NAME ' || quote_ident(sn.nspname) || '.'
        || quote_ident(sc.relname) || ' START WITH ' || q.seqstart || ' INCREMENT BY '
        || q.seqincrement || ' MINVALUE ' || q.seqmin || ' MAXVALUE ' || q.seqmax
        || ' CACHE ' || q.seqcache || CASE WHEN q.seqcycle THEN ' CYCLE' ELSE ' NO CYCLE' END
        || ')'
    ELSE 'SELECT setval(' || quote_literal(quote_ident(sn.nspname) || '.'
        || quote_ident(sc.relname)) || ', ' || pg_sequence_last_value(sc.oid) || ')' END
FROM pg_depend d JOIN pg_class sc ON sc.oid = d.objid AND sc.relkind = 'S'
JOIN pg_namespace sn ON sn.oid = sc.relnamespace
JOIN pg_sequence q ON q.seqrelid = sc.oid
CROSS JOIN (VALUES (0), (1)) AS g(n)
WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
  AND d.refobjid = a.attrelid AND d.refobjsubid = a.attnum AND d.deptype = 'i'
  AND (g.n = 0 OR pg_sequence_last_value(sc.oid) IS NOT NULL)
) AS x(step, stmt)
WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND x.step < 47
) AS found(step, stmt)
    ), '[]'),
    
'columns', (SELECT jsonb_agg(a.attname ORDER BY a.attnum) FROM pg_attribute a
            WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
'constraints', coalesce((SELECT jsonb_agg(jsonb_build_object(
    'name', con.conname, 'type', con.contype,
    'columns', (SELECT jsonb_agg(ka.attname ORDER BY k.ord)
                FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
                JOIN pg_attribute ka ON ka.attrelid = c.oid AND ka.attnum = k.attnum),
    'referent_schema', rn.nspname, 'referent_table', r.relname,
    'referent_columns', (SELECT jsonb_agg(ra.attname ORDER BY k.ord)
                FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, ord)
                JOIN pg_attribute ra ON ra.attrelid = con.confrelid AND ra.attnum = k.attnum),
    'ondelete', nullif(con.confdeltype, ' ')) ORDER BY con.conname)
    FROM pg_constraint con LEFT JOIN pg_class r ON r.oid = con.confrelid
    LEFT JOIN pg_namespace rn ON rn.oid = r.relnamespace
    WHERE con.conrelid = c.oid AND con.contype <> 'n'), '[]'),
'indexes', coalesce((SELECT jsonb_agg(ic.relname ORDER BY ic.relname) FROM pg_index i
    JOIN pg_class ic ON ic.oid = i.indexrelid WHERE i.indrelid = c.oid), '[]')
)
 FROM pg_class c CROSS JOIN LATERAL (
     SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS t
     FROM pg_namespace n WHERE n.oid = c.relnamespace) AS names
 WHERE c.oid = lossless_rel)
 || jsonb_build_object('column_recorded', lossless_column);
    PERFORM set_config('search_path', lossless_path, true);
    INSERT INTO lossless_stash (kind, table_name, column_name, row_key, payload) VALUES ('junction', 'targets', 'goal_id', '[]'::jsonb, lossless_payload);
    INSERT INTO lossless_stash (kind, table_name, column_name, row_key, payload) SELECT 'link', 'targets', 'goal_id', jsonb_build_array(k.target_id), jsonb_build_object('first', to_jsonb(k.lossless_first), 'text', k.lossless_row::text) FROM (SELECT j AS lossless_row, j.target_id, row_number() OVER (PARTITION BY j.target_id ORDER BY j.created_at, j.id, j.goal_id) AS lossless_rank, count(*) OVER (PARTITION BY j.target_id) AS lossless_n, first_value(j.goal_id) OVER (PARTITION BY j.target_id ORDER BY j.created_at, j.id, j.goal_id) AS lossless_first FROM target_goal_links AS j) AS k WHERE k.lossless_rank = 1 OR k.lossless_n > 1;
    FOR lossless_seq IN SELECT d.objid::regclass FROM pg_depend d JOIN pg_class sc ON sc.oid = d.objid AND sc.relkind = 'S' WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = to_regclass('target_goal_links') AND d.deptype = 'a' LOOP EXECUTE format('ALTER SEQUENCE %s OWNED BY NONE', lossless_seq); END LOOP;
  END IF;
END
$lossless$;

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

