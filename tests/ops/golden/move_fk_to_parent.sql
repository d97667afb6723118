LOCK TABLE migrations_mig, iterations_ite IN SHARE ROW EXCLUSIVE MODE;

DO $lossless$
DECLARE
  n bigint;
  samples text;
BEGIN
  SELECT count(*) INTO n FROM migrations_mig AS t WHERE NOT EXISTS (SELECT FROM iterations_ite AS c WHERE c.mig_id = t.mig_id) AND NOT (jsonb_typeof(t.mig_metadata) = 'object' AND t.mig_metadata ? 'legacy_plm_id') IS TRUE;
  IF n > 0 THEN
    SELECT string_agg(s.k, ', ') INTO samples FROM (SELECT t.mig_id::text AS k FROM migrations_mig AS t WHERE NOT EXISTS (SELECT FROM iterations_ite AS c WHERE c.mig_id = t.mig_id) AND NOT (jsonb_typeof(t.mig_metadata) = 'object' AND t.mig_metadata ? 'legacy_plm_id') IS TRUE ORDER BY 1 LIMIT 5) AS s;
    RAISE EXCEPTION USING ERRCODE = 'check_violation', MESSAGE = 'refused: migrations_mig.plm_id: ' || n || ' row(s) have no iterations_ite row and no ''legacy_plm_id'' in mig_metadata, and plm_id is NOT NULL' || ' (e.g. ' || samples || ')' || '; pass on_missing=''keep_null'' (column left nullable) or on_missing=''fill'' with fill_value=... to proceed';
  END IF;
END
$lossless$;

ALTER TABLE migrations_mig ADD COLUMN plm_id uuid;

UPDATE migrations_mig AS t SET plm_id = f.v FROM (SELECT DISTINCT ON (x.mig_id) x.mig_id AS g, x.plm_id AS v FROM iterations_ite AS x ORDER BY x.mig_id, x.created_at, x.ite_id, x.plm_id) AS f WHERE t.mig_id = f.g;

SELECT set_config('lossless.enable_nestloop', current_setting('enable_nestloop'), true), set_config('enable_nestloop', 'off', true);

DO $lossless$
BEGIN
  IF to_regclass('lossless_stash') IS NOT NULL THEN
    UPDATE migrations_mig AS t SET plm_id = COALESCE(t.plm_id, CASE WHEN jsonb_typeof((t.mig_metadata -> 'legacy_plm_id')) IN ('object', 'array') THEN (jsonb_populate_record(NULL::migrations_mig, jsonb_build_object('plm_id', (t.mig_metadata -> 'legacy_plm_id')))).plm_id ELSE (t.mig_metadata ->> 'legacy_plm_id')::uuid END), mig_metadata = NULL FROM lossless_stash AS s WHERE s.kind = 'jsonb_was_null' AND s.table_name = 'migrations_mig' AND s.column_name = 'mig_metadata' AND s.row_key = jsonb_build_array(t.mig_id) AND (jsonb_typeof(t.mig_metadata) = 'object' AND t.mig_metadata ? 'legacy_plm_id') IS TRUE AND t.mig_metadata = jsonb_build_object('legacy_plm_id', t.mig_metadata -> 'legacy_plm_id');
  END IF;
END
$lossless$;

SELECT set_config('enable_nestloop', current_setting('lossless.enable_nestloop'), true);

UPDATE migrations_mig AS t SET plm_id = COALESCE(t.plm_id, CASE WHEN jsonb_typeof((t.mig_metadata -> 'legacy_plm_id')) IN ('object', 'array') THEN (jsonb_populate_record(NULL::migrations_mig, jsonb_build_object('plm_id', (t.mig_metadata -> 'legacy_plm_id')))).plm_id ELSE (t.mig_metadata ->> 'legacy_plm_id')::uuid END), mig_metadata = t.mig_metadata - 'legacy_plm_id' WHERE (jsonb_typeof(t.mig_metadata) = 'object' AND t.mig_metadata ? 'legacy_plm_id') IS TRUE;

DO $lossless$
BEGIN
  IF to_regclass('lossless_stash') IS NOT NULL THEN
    DELETE FROM lossless_stash AS r WHERE r.kind = 'jsonb_key' AND r.table_name = 'migrations_mig' AND r.column_name = 'mig_metadata' AND r.payload ->> 'key' = 'legacy_plm_id';
  END IF;
END
$lossless$;

DO $lossless$
BEGIN
  IF to_regclass('lossless_stash') IS NOT NULL THEN
    DELETE FROM lossless_stash AS m WHERE m.kind = 'jsonb_was_null' AND m.table_name = 'migrations_mig' AND m.column_name = 'mig_metadata' AND NOT EXISTS (SELECT FROM lossless_stash AS r WHERE r.kind = 'jsonb_key' AND r.table_name = 'migrations_mig' AND r.column_name = 'mig_metadata');
  END IF;
END
$lossless$;

-- squawk-ignore adding-not-nullable-field -- lossless: see docs/live.md
ALTER TABLE migrations_mig ALTER COLUMN plm_id SET NOT NULL;

-- squawk-ignore constraint-missing-not-valid, adding-foreign-key-constraint -- lossless: see docs/live.md
ALTER TABLE migrations_mig ADD CONSTRAINT migrations_mig_plm_id_fkey FOREIGN KEY (plm_id) REFERENCES plans_master_plm;

-- squawk-ignore ban-drop-column -- lossless: see docs/live.md
ALTER TABLE iterations_ite DROP COLUMN plm_id;

DO $lossless$
BEGIN
  IF to_regclass('lossless_stash') IS NOT NULL THEN
    DELETE FROM lossless_stash AS s WHERE s.kind = 'column' AND s.table_name = 'migrations_mig' AND s.column_name = 'plm_id';
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

