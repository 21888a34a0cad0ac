--
-- import: IMPORT FOREIGN SCHEMA makini makes the six tables of
-- README.md; schema erp stays for the suites that follow
--
CREATE SCHEMA erp;
IMPORT FOREIGN SCHEMA makini FROM SERVER plant_a INTO erp;

-- the tables: server, resource and expand
SELECT c.relname, s.srvname, ft.ftoptions
  FROM pg_foreign_table ft
  JOIN pg_class c ON c.oid = ft.ftrelid
  JOIN pg_foreign_server s ON s.oid = ft.ftserver
 WHERE c.relnamespace = 'erp'::regnamespace
 ORDER BY c.relname;

-- the columns, in order, with their types and field options (a column
-- without one reads the camelCase of its name)
SELECT table_name, ordinal_position::int AS pos, column_name, data_type,
       a.attfdwoptions
  FROM information_schema.columns col
  JOIN pg_attribute a
    ON a.attrelid = format('%I.%I', col.table_schema, col.table_name)::regclass
   AND a.attname = col.column_name
 WHERE col.table_schema = 'erp'
 ORDER BY table_name, ordinal_position;

-- LIMIT TO and EXCEPT (names are matched exactly; unknown ones are ignored)
CREATE SCHEMA erp_some;
IMPORT FOREIGN SCHEMA makini LIMIT TO (vendors, currencies, no_such_table)
  FROM SERVER plant_a INTO erp_some;
IMPORT FOREIGN SCHEMA makini LIMIT TO ("Vendors") FROM SERVER plant_a INTO erp_some;
SELECT relname FROM pg_class
 WHERE relnamespace = 'erp_some'::regnamespace ORDER BY relname;
CREATE SCHEMA erp_rest;
IMPORT FOREIGN SCHEMA makini EXCEPT (purchase_orders, purchase_order_lines)
  FROM SERVER plant_a INTO erp_rest;
SELECT relname FROM pg_class
 WHERE relnamespace = 'erp_rest'::regnamespace ORDER BY relname;
-- a table that is already there is not replaced
IMPORT FOREIGN SCHEMA makini LIMIT TO (vendors) FROM SERVER plant_a INTO erp_some;

-- the only remote schema is makini; IMPORT takes no options
IMPORT FOREIGN SCHEMA public FROM SERVER plant_a INTO erp_some;
IMPORT FOREIGN SCHEMA "Makini" FROM SERVER plant_a INTO erp_some;
IMPORT FOREIGN SCHEMA makini FROM SERVER plant_a INTO erp_some
  OPTIONS (import_default 'true');

-- makini_create_union_views: one schema per server, one view per table
-- over all servers; running it again changes nothing
CREATE SERVER imp_other FOREIGN DATA WRAPPER makini_fdw
  OPTIONS (url 'http://127.0.0.1:18765');
SELECT makini_create_union_views('erp_all', ARRAY['plant_a', 'imp_other']);
SELECT makini_create_union_views('erp_all', ARRAY['plant_a', 'imp_other']);
SELECT n.nspname, c.relname, c.relkind
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname LIKE 'erp\_all%'
 ORDER BY n.nspname, c.relname;
SELECT pg_get_viewdef('erp_all.vendors'::regclass, true);
SELECT makini_create_union_views('erp_all', ARRAY['plant_a', 'plant_a']);
SELECT makini_create_union_views('erp_all', ARRAY[]::name[]);
SELECT makini_create_union_views('erp_all', ARRAY['no_such_server']);

SET client_min_messages TO warning;
DROP SCHEMA erp_some, erp_rest, erp_all, erp_all_plant_a, erp_all_imp_other CASCADE;
RESET client_min_messages;
DROP SERVER imp_other;
