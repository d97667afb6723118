LOCK TABLE commitments, targets IN SHARE ROW EXCLUSIVE MODE;

DO $lossless$
DECLARE
  n bigint;
  samples text;
BEGIN
  SELECT count(*) INTO n FROM commitments AS t WHERE t.goal_id IS NOT NULL AND t.metadata IS NOT NULL AND jsonb_typeof(t.metadata) <> 'object';
  IF n > 0 THEN
    SELECT string_agg(s.k, ', ') INTO samples FROM (SELECT t.id::text AS k FROM commitments AS t WHERE t.goal_id IS NOT NULL AND t.metadata IS NOT NULL AND jsonb_typeof(t.metadata) <> 'object' ORDER BY 1 LIMIT 5) AS s;
    RAISE EXCEPTION USING ERRCODE = 'check_violation', MESSAGE = 'refused: commitments.metadata: ' || n || ' row(s) hold a JSONB that is not an object (array, scalar or JSON null) where goal_id must be stashed under ''legacy_goal_id''' || ' (e.g. ' || samples || ')' || '; fix those values (e.g. wrap them in an object) before the migration';
  END IF;
  SELECT count(*) INTO n FROM commitments AS t WHERE (jsonb_typeof(t.metadata) = 'object' AND t.metadata ? 'legacy_goal_id') IS TRUE;
  IF n > 0 THEN
    SELECT string_agg(s.k, ', ') INTO samples FROM (SELECT t.id::text AS k FROM commitments AS t WHERE (jsonb_typeof(t.metadata) = 'object' AND t.metadata ? 'legacy_goal_id') IS TRUE ORDER BY 1 LIMIT 5) AS s;
    RAISE EXCEPTION USING ERRCODE = 'check_violation', MESSAGE = 'refused: commitments.metadata: ' || n || ' row(s) already hold the key ''legacy_goal_id''' || ' (e.g. ' || samples || ')' || '; rename or remove that key first, or pass another key=';
  END IF;
END
$lossless$;

DO $lossless$
DECLARE
  n bigint;
  samples text;
BEGIN
  SELECT count(*) INTO n FROM targets AS t WHERE t.goal_id IS NOT NULL AND NOT EXISTS (SELECT FROM client_goals AS x WHERE x.id = t.goal_id);
  IF n > 0 THEN
    SELECT string_agg(s.k, ', ') INTO samples FROM (SELECT t.id::text AS k FROM targets AS t WHERE t.goal_id IS NOT NULL AND NOT EXISTS (SELECT FROM client_goals AS x WHERE x.id = t.goal_id) ORDER BY 1 LIMIT 5) AS s;
    RAISE EXCEPTION USING ERRCODE = 'check_violation', MESSAGE = 'refused: targets.goal_id: ' || n || ' row(s) point to no row of client_goals' || ' (e.g. ' || samples || ')' || '; fix or clear those values first';
  END IF;
END
$lossless$;

CREATE TABLE IF NOT EXISTS lossless_stash (kind text NOT NULL, table_name text NOT NULL, column_name text NOT NULL, row_key jsonb NOT NULL, payload jsonb);

DELETE FROM lossless_stash AS r WHERE r.kind = 'jsonb_key' AND r.table_name = 'commitments' AND r.column_name = 'metadata' AND r.payload ->> 'key' = 'legacy_goal_id';

DELETE FROM lossless_stash AS m WHERE m.kind = 'jsonb_was_null' AND m.table_name = 'commitments' AND m.column_name = 'metadata' AND NOT EXISTS (SELECT FROM lossless_stash AS r WHERE r.kind = 'jsonb_key' AND r.table_name = 'commitments' AND r.column_name = 'metadata');

SELECT set_config('lossless.enable_nestloop', current_setting('enable_nestloop'), true), set_config('enable_nestloop', 'off', true);

DELETE FROM lossless_stash AS m WHERE m.kind = 'jsonb_was_null' AND m.table_name = 'commitments' AND m.column_name = 'metadata' AND EXISTS (SELECT FROM lossless_stash AS r WHERE r.kind = 'jsonb_key' AND r.table_name = 'commitments' AND r.column_name = 'metadata') AND NOT EXISTS (SELECT FROM commitments AS t WHERE jsonb_build_array(t.id) = m.row_key AND jsonb_typeof(t.metadata) = 'object' AND t.metadata ?| ARRAY(SELECT r.payload ->> 'key' FROM lossless_stash AS r WHERE r.kind = 'jsonb_key' AND r.table_name = 'commitments' AND r.column_name = 'metadata'));

SELECT set_config('enable_nestloop', current_setting('lossless.enable_nestloop'), true);

INSERT INTO lossless_stash (kind, table_name, column_name, row_key) SELECT 'jsonb_was_null', 'commitments', 'metadata', jsonb_build_array(t.id) FROM commitments AS t WHERE t.goal_id IS NOT NULL AND t.metadata IS NULL;

INSERT INTO lossless_stash (kind, table_name, column_name, row_key, payload) VALUES ('jsonb_key', 'commitments', 'metadata', '[]'::jsonb, jsonb_build_object('key', 'legacy_goal_id', 'column', 'goal_id'));

ANALYZE lossless_stash;

UPDATE commitments AS t SET metadata = COALESCE(t.metadata, '{}'::jsonb) || jsonb_build_object('legacy_goal_id', to_jsonb(t.goal_id)) WHERE t.goal_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS lossless_stash (kind text NOT NULL, table_name text NOT NULL, column_name text NOT NULL, row_key jsonb NOT NULL, payload jsonb);

DELETE FROM lossless_stash AS s WHERE s.kind = 'column' AND s.table_name = 'commitments' AND s.column_name = 'goal_id';

INSERT INTO lossless_stash (kind, table_name, column_name, row_key, payload) SELECT 'column', 'commitments', 'goal_id', '[]'::jsonb, (SELECT jsonb_build_object('type', format_type(a.atttypid, a.atttypmod), 'nullable', NOT a.attnotnull, 'default', pg_get_expr(d.adbin, d.adrelid), 'foreign_keys', COALESCE((SELECT jsonb_agg(jsonb_build_object('name', c.conname, 'definition', pg_get_constraintdef(c.oid), 'referent_schema', rn.nspname, 'referent_table', r.relname, 'referent_columns', ARRAY(SELECT ra.attname FROM unnest(c.confkey) WITH ORDINALITY AS k(attnum, ord) JOIN pg_attribute ra ON ra.attrelid = c.confrelid AND ra.attnum = k.attnum ORDER BY k.ord)) ORDER BY c.conname) FROM pg_constraint c JOIN pg_class r ON r.oid = c.confrelid JOIN pg_namespace rn ON rn.oid = r.relnamespace WHERE c.conrelid = a.attrelid AND c.contype = 'f' AND c.conkey = ARRAY[a.attnum]), '[]'::jsonb)) FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum WHERE a.attrelid = to_regclass('commitments') AND a.attname = 'goal_id' AND a.attnum > 0 AND NOT a.attisdropped);

-- squawk-ignore ban-drop-column -- lossless: see docs/live.md
ALTER TABLE commitments DROP COLUMN goal_id;

CREATE TABLE target_goal_links AS SELECT gen_random_uuid() AS id, t.id AS target_id, t.goal_id AS goal_id, now()::timestamp AS created_at FROM targets AS t WITH NO DATA;

-- squawk-ignore adding-not-nullable-field -- lossless: see docs/live.md
ALTER TABLE target_goal_links ALTER COLUMN id SET DEFAULT gen_random_uuid(), ALTER COLUMN id SET NOT NULL, ALTER COLUMN target_id SET NOT NULL, ALTER COLUMN goal_id SET NOT NULL, ALTER COLUMN created_at SET NOT NULL, ALTER COLUMN created_at SET DEFAULT now();

CREATE TABLE IF NOT EXISTS lossless_stash (kind text NOT NULL, table_name text NOT NULL, column_name text NOT NULL, row_key jsonb NOT NULL, payload jsonb);

INSERT INTO target_goal_links SELECT r.* FROM lossless_stash AS s JOIN targets AS t ON s.kind = 'link' AND s.table_name = 'targets' AND s.column_name = 'goal_id' AND s.row_key = jsonb_build_array(t.id) AND s.payload -> 'first' = to_jsonb(t.goal_id) CROSS JOIN LATERAL jsonb_populate_record(NULL::target_goal_links, s.payload -> 'row') AS r WHERE EXISTS (SELECT FROM client_goals AS x WHERE x.id = r.goal_id);

INSERT INTO target_goal_links (target_id, goal_id) SELECT t.id, t.goal_id FROM targets AS t WHERE t.goal_id IS NOT NULL AND NOT EXISTS (SELECT FROM lossless_stash AS s WHERE s.kind = 'link' AND s.table_name = 'targets' AND s.column_name = 'goal_id' AND s.row_key = jsonb_build_array(t.id) AND s.payload -> 'first' = to_jsonb(t.goal_id));

DELETE FROM lossless_stash AS s WHERE s.kind = 'link' AND s.table_name = 'targets' AND s.column_name = 'goal_id';

ALTER TABLE target_goal_links ADD CONSTRAINT target_goal_links_pkey PRIMARY KEY (id);

ALTER TABLE target_goal_links ADD CONSTRAINT uq_target_goal_links_target_id_goal_id UNIQUE (target_id, goal_id);

CREATE INDEX ix_target_goal_links_target_id ON target_goal_links (target_id);

CREATE INDEX ix_target_goal_links_goal_id ON target_goal_links (goal_id);

-- squawk-ignore constraint-missing-not-valid, adding-foreign-key-constraint -- lossless: see docs/live.md
ALTER TABLE target_goal_links ADD CONSTRAINT target_goal_links_target_id_fkey FOREIGN KEY (target_id) REFERENCES targets(id) ON DELETE CASCADE;

-- squawk-ignore constraint-missing-not-valid, adding-foreign-key-constraint -- lossless: see docs/live.md
ALTER TABLE target_goal_links ADD CONSTRAINT target_goal_links_goal_id_fkey FOREIGN KEY (goal_id) REFERENCES client_goals(id) ON DELETE CASCADE;

CREATE TABLE IF NOT EXISTS lossless_stash (kind text NOT NULL, table_name text NOT NULL, column_name text NOT NULL, row_key jsonb NOT NULL, payload jsonb);

DELETE FROM lossless_stash AS s WHERE s.kind = 'column' AND s.table_name = 'targets' AND s.column_name = 'goal_id';

INSERT INTO lossless_stash (kind, table_name, column_name, row_key, payload) SELECT 'column', 'targets', 'goal_id', '[]'::jsonb, (SELECT jsonb_build_object('type', format_type(a.atttypid, a.atttypmod), 'nullable', NOT a.attnotnull, 'default', pg_get_expr(d.adbin, d.adrelid), 'foreign_keys', COALESCE((SELECT jsonb_agg(jsonb_build_object('name', c.conname, 'definition', pg_get_constraintdef(c.oid), 'referent_schema', rn.nspname, 'referent_table', r.relname, 'referent_columns', ARRAY(SELECT ra.attname FROM unnest(c.confkey) WITH ORDINALITY AS k(attnum, ord) JOIN pg_attribute ra ON ra.attrelid = c.confrelid AND ra.attnum = k.attnum ORDER BY k.ord)) ORDER BY c.conname) FROM pg_constraint c JOIN pg_class r ON r.oid = c.confrelid JOIN pg_namespace rn ON rn.oid = r.relnamespace WHERE c.conrelid = a.attrelid AND c.contype = 'f' AND c.conkey = ARRAY[a.attnum]), '[]'::jsonb)) FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum WHERE a.attrelid = to_regclass('targets') AND a.attname = 'goal_id' AND a.attnum > 0 AND NOT a.attisdropped);

-- squawk-ignore ban-drop-column -- lossless: see docs/live.md
ALTER TABLE targets DROP COLUMN goal_id;

