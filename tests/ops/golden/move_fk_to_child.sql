LOCK TABLE migrations_mig, iterations_ite IN SHARE ROW EXCLUSIVE MODE;

DO $lossless$
DECLARE
  n bigint;
  samples text;
BEGIN
  SELECT count(*) INTO n FROM migrations_mig AS t WHERE t.plm_id IS NOT NULL AND NOT EXISTS (SELECT FROM iterations_ite AS c WHERE c.mig_id = t.mig_id) AND t.mig_metadata IS NOT NULL AND jsonb_typeof(t.mig_metadata) <> 'object';
  IF n > 0 THEN
    SELECT string_agg(s.k, ', ') INTO samples FROM (SELECT t.mig_id::text AS k FROM migrations_mig AS t WHERE t.plm_id IS NOT NULL AND NOT EXISTS (SELECT FROM iterations_ite AS c WHERE c.mig_id = t.mig_id) AND t.mig_metadata IS NOT NULL AND jsonb_typeof(t.mig_metadata) <> 'object' ORDER BY 1 LIMIT 5) AS s;
    RAISE EXCEPTION USING ERRCODE = 'check_violation', MESSAGE = 'refused: migrations_mig.mig_metadata: ' || n || ' row(s) hold a JSONB that is not an object (array, scalar or JSON null) where plm_id must be stashed under ''legacy_plm_id''' || ' (e.g. ' || samples || ')' || '; fix those values (e.g. wrap them in an object) before the migration';
  END IF;
  SELECT count(*) INTO n FROM migrations_mig AS t WHERE (jsonb_typeof(t.mig_metadata) = 'object' AND t.mig_metadata ? 'legacy_plm_id') IS TRUE;
  IF n > 0 THEN
    SELECT string_agg(s.k, ', ') INTO samples FROM (SELECT t.mig_id::text AS k FROM migrations_mig AS t WHERE (jsonb_typeof(t.mig_metadata) = 'object' AND t.mig_metadata ? 'legacy_plm_id') IS TRUE ORDER BY 1 LIMIT 5) AS s;
    RAISE EXCEPTION USING ERRCODE = 'check_violation', MESSAGE = 'refused: migrations_mig.mig_metadata: ' || n || ' row(s) already hold the key ''legacy_plm_id''' || ' (e.g. ' || samples || ')' || '; rename or remove that key first, or pass another key=';
  END IF;
  SELECT count(*) INTO n FROM migrations_mig AS t WHERE t.plm_id IS NULL AND EXISTS (SELECT FROM iterations_ite AS c WHERE c.mig_id = t.mig_id);
  IF n > 0 THEN
    SELECT string_agg(s.k, ', ') INTO samples FROM (SELECT t.mig_id::text AS k FROM migrations_mig AS t WHERE t.plm_id IS NULL AND EXISTS (SELECT FROM iterations_ite AS c WHERE c.mig_id = t.mig_id) ORDER BY 1 LIMIT 5) AS s;
    RAISE EXCEPTION USING ERRCODE = 'check_violation', MESSAGE = 'refused: migrations_mig.plm_id: ' || n || ' row(s) have no plm_id but have iterations_ite rows, whose plm_id will be NOT NULL' || ' (e.g. ' || samples || ')' || '; give those rows a value or pass nullable=True';
  END IF;
END
$lossless$;

ALTER TABLE iterations_ite ADD COLUMN plm_id uuid;

UPDATE iterations_ite AS c SET plm_id = p.plm_id FROM migrations_mig AS p WHERE c.mig_id = p.mig_id AND p.plm_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS lossless_stash (kind text NOT NULL, table_name text NOT NULL, column_name text NOT NULL, row_key jsonb NOT NULL, payload jsonb);

DELETE FROM lossless_stash AS r WHERE r.kind = 'jsonb_key' AND r.table_name = 'migrations_mig' AND r.column_name = 'mig_metadata' AND r.payload ->> 'key' = 'legacy_plm_id';

DELETE FROM lossless_stash AS m WHERE m.kind = 'jsonb_was_null' AND m.table_name = 'migrations_mig' AND m.column_name = 'mig_metadata' AND NOT EXISTS (SELECT FROM lossless_stash AS r WHERE r.kind = 'jsonb_key' AND r.table_name = 'migrations_mig' AND r.column_name = 'mig_metadata');

SELECT set_config('lossless.enable_nestloop', current_setting('enable_nestloop'), true), set_config('enable_nestloop', 'off', true);

DELETE FROM lossless_stash AS m WHERE m.kind = 'jsonb_was_null' AND m.table_name = 'migrations_mig' AND m.column_name = 'mig_metadata' AND EXISTS (SELECT FROM lossless_stash AS r WHERE r.kind = 'jsonb_key' AND r.table_name = 'migrations_mig' AND r.column_name = 'mig_metadata') AND NOT EXISTS (SELECT FROM migrations_mig AS t WHERE jsonb_build_array(t.mig_id) = m.row_key AND jsonb_typeof(t.mig_metadata) = 'object' AND t.mig_metadata ?| ARRAY(SELECT r.payload ->> 'key' FROM lossless_stash AS r WHERE r.kind = 'jsonb_key' AND r.table_name = 'migrations_mig' AND r.column_name = 'mig_metadata'));

SELECT set_config('enable_nestloop', current_setting('lossless.enable_nestloop'), true);

INSERT INTO lossless_stash (kind, table_name, column_name, row_key) SELECT 'jsonb_was_null', 'migrations_mig', 'mig_metadata', jsonb_build_array(t.mig_id) FROM migrations_mig AS t WHERE t.plm_id IS NOT NULL AND t.mig_metadata IS NULL AND NOT EXISTS (SELECT FROM iterations_ite AS c WHERE c.mig_id = t.mig_id);

INSERT INTO lossless_stash (kind, table_name, column_name, row_key, payload) VALUES ('jsonb_key', 'migrations_mig', 'mig_metadata', '[]'::jsonb, jsonb_build_object('key', 'legacy_plm_id', 'column', 'plm_id'));

ANALYZE lossless_stash;

UPDATE migrations_mig AS t SET mig_metadata = COALESCE(t.mig_metadata, '{}'::jsonb) || jsonb_build_object('legacy_plm_id', to_jsonb(t.plm_id)) WHERE t.plm_id IS NOT NULL AND NOT EXISTS (SELECT FROM iterations_ite AS c WHERE c.mig_id = t.mig_id);

-- squawk-ignore adding-not-nullable-field -- lossless: see docs/live.md
ALTER TABLE iterations_ite ALTER COLUMN plm_id SET NOT NULL;

-- squawk-ignore constraint-missing-not-valid, adding-foreign-key-constraint -- lossless: see docs/live.md
ALTER TABLE iterations_ite ADD CONSTRAINT iterations_ite_plm_id_fkey FOREIGN KEY (plm_id) REFERENCES plans_master_plm;

CREATE TABLE IF NOT EXISTS lossless_stash (kind text NOT NULL, table_name text NOT NULL, column_name text NOT NULL, row_key jsonb NOT NULL, payload jsonb);

DELETE FROM lossless_stash AS s WHERE s.kind = 'column' AND s.table_name = 'migrations_mig' AND s.column_name = 'plm_id';

INSERT INTO lossless_stash (kind, table_name, column_name, row_key, payload) SELECT 'column', 'migrations_mig', 'plm_id', '[]'::jsonb, (SELECT jsonb_build_object('type', format_type(a.atttypid, a.atttypmod), 'nullable', NOT a.attnotnull, 'default', pg_get_expr(d.adbin, d.adrelid), 'foreign_keys', COALESCE((SELECT jsonb_agg(jsonb_build_object('name', c.conname, 'definition', pg_get_constraintdef(c.oid), 'referent_schema', rn.nspname, 'referent_table', r.relname, 'referent_columns', ARRAY(SELECT ra.attname FROM unnest(c.confkey) WITH ORDINALITY AS k(attnum, ord) JOIN pg_attribute ra ON ra.attrelid = c.confrelid AND ra.attnum = k.attnum ORDER BY k.ord)) ORDER BY c.conname) FROM pg_constraint c JOIN pg_class r ON r.oid = c.confrelid JOIN pg_namespace rn ON rn.oid = r.relnamespace WHERE c.conrelid = a.attrelid AND c.contype = 'f' AND c.conkey = ARRAY[a.attnum]), '[]'::jsonb)) FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum WHERE a.attrelid = to_regclass('migrations_mig') AND a.attname = 'plm_id' AND a.attnum > 0 AND NOT a.attisdropped);

-- squawk-ignore ban-drop-column -- lossless: see docs/live.md
ALTER TABLE migrations_mig DROP COLUMN plm_id;

