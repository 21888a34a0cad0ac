--
-- model: the API model the wrapper is built on (makini_model(), fdw/model.c)
-- is the one IMPORT FOREIGN SCHEMA makes its tables of, and the simulator's
-- copy of it (sql-tests/simdata.py) is the same.  Every row listed below is
-- a difference: none are expected.
--
-- one row per field of an entity and per column of a table, with its place
CREATE FUNCTION model_rows(m jsonb)
RETURNS TABLE (part text, place text, item jsonb) LANGUAGE sql AS $$
  SELECT 'entity', e.ordinality || '.' || f.ordinality, (e.value - 'fields') || f.value
    FROM jsonb_array_elements(m->'entities') WITH ORDINALITY e,
         jsonb_array_elements(e.value->'fields') WITH ORDINALITY f
  UNION ALL
  SELECT 'table', t.ordinality || '.' || c.ordinality, (t.value - 'columns') || c.value
    FROM jsonb_array_elements(m->'tables') WITH ORDINALITY t,
         jsonb_array_elements(t.value->'columns') WITH ORDINALITY c
$$;
CREATE TEMP TABLE model_fdw AS SELECT * FROM model_rows(makini_model());
CREATE TEMP TABLE model_sim AS SELECT * FROM model_rows(sim('model')::jsonb);

-- both sides describe entities and tables
SELECT part, count(*) > 0 AS described FROM model_fdw GROUP BY part ORDER BY part;

-- the wrapper's model against the simulator's
(SELECT 'wrapper only' AS side, * FROM model_fdw EXCEPT SELECT 'wrapper only', * FROM model_sim)
UNION ALL
(SELECT 'simulator only', * FROM model_sim EXCEPT SELECT 'simulator only', * FROM model_fdw)
ORDER BY part, place, side;

-- the tables import.sql made in schema erp are the model's: the same
-- tables, resources and expand fields, columns in order with their types
-- and fields (a column without a field option reads its camelCase name)
CREATE TEMP TABLE model_imported AS
SELECT c.relname::text AS tab, a.attnum AS pos, a.attname::text AS name,
       a.atttypid::regtype AS type,
       coalesce((SELECT substr(o, 7) FROM unnest(a.attfdwoptions) o WHERE o LIKE 'field=%'),
                (SELECT string_agg(CASE WHEN i = 1 THEN p ELSE initcap(p) END, '' ORDER BY i)
                   FROM unnest(string_to_array(a.attname, '_')) WITH ORDINALITY AS w(p, i)))
         AS field,
       (SELECT substr(o, 10) FROM unnest(ft.ftoptions) o WHERE o LIKE 'resource=%') AS resource,
       (SELECT substr(o, 8) FROM unnest(ft.ftoptions) o WHERE o LIKE 'expand=%') AS expand
  FROM pg_foreign_table ft
  JOIN pg_class c ON c.oid = ft.ftrelid
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE c.relnamespace = 'erp'::regnamespace;
CREATE TEMP TABLE model_tables AS
SELECT item->>'table' AS tab, split_part(place, '.', 2)::int AS pos,
       item->>'name' AS name, (item->>'type')::regtype AS type, item->>'field' AS field,
       item->>'resource' AS resource, item->>'expand' AS expand
  FROM model_fdw WHERE part = 'table';
SELECT (SELECT count(*) FROM model_imported) > 0 AS imported;
(SELECT 'imported only' AS side, * FROM model_imported EXCEPT SELECT 'imported only', * FROM model_tables)
UNION ALL
(SELECT 'model only', * FROM model_tables EXCEPT SELECT 'model only', * FROM model_imported)
ORDER BY tab, pos, side;

DROP FUNCTION model_rows(jsonb);
