LOCK TABLE targets, target_goal_links IN SHARE ROW EXCLUSIVE MODE;

DO $lossless$
DECLARE
  n bigint;
  samples text;
BEGIN
  SELECT count(*) INTO n FROM targets AS t WHERE NOT EXISTS (SELECT FROM target_goal_links AS j WHERE j.target_id = t.id);
  IF n > 0 THEN
    SELECT string_agg(s.k, ', ') INTO samples FROM (SELECT t.id::text AS k FROM targets AS t WHERE NOT EXISTS (SELECT FROM target_goal_links AS j WHERE j.target_id = t.id) ORDER BY 1 LIMIT 5) AS s;
    RAISE EXCEPTION USING ERRCODE = 'check_violation', MESSAGE = 'refused: targets.goal_id: ' || n || ' row(s) have no link in target_goal_links and goal_id is NOT NULL' || ' (e.g. ' || samples || ')' || '; pass on_missing=''keep_null'' (column left nullable) or on_missing=''fill'' with fill_value=... to proceed';
  END IF;
END
$lossless$;

ALTER TABLE targets ADD COLUMN goal_id uuid;

UPDATE targets AS t SET goal_id = f.v FROM (SELECT DISTINCT ON (x.target_id) x.target_id AS g, x.goal_id AS v FROM target_goal_links AS x ORDER BY x.target_id, x.created_at, x.id, x.goal_id) AS f WHERE t.id = f.g;

-- squawk-ignore adding-not-nullable-field -- lossless: see docs/live.md
ALTER TABLE targets ALTER COLUMN goal_id SET NOT NULL;

-- squawk-ignore constraint-missing-not-valid, adding-foreign-key-constraint -- lossless: see docs/live.md
ALTER TABLE targets ADD CONSTRAINT targets_goal_id_fkey FOREIGN KEY (goal_id) REFERENCES client_goals(id);

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

