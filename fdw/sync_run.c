/*-------------------------------------------------------------------------
 *
 * sync_run.c
 *		  makini_sync(source, target, full): keeps a local table a mirror of
 *		  a makini_fdw foreign table, fetching only the records changed since
 *		  the last call (README, "A local mirror").
 *
 * One call, all in the caller's transaction: check the source and the
 * target before any request is sent (the target's columns and types, a
 * unique index on key, the caller's privileges), take a transaction-level
 * advisory lock per target so two calls never interleave, read the last
 * call's state, then run one scan of the source (sync.c has it send the
 * filter and hand over its counts and the latest updatedAt read) that
 * fills a new or empty target directly, or feeds one statement that upserts
 * and deletes; last, the state row.
 *
 * Written in C rather than PL/pgSQL because a scheduled call (pg_cron) runs
 * in a new backend each time: there PL/pgSQL's compilation and the planning
 * of a dozen catalog queries cost more than an incremental call's own work.
 * Here the catalogs are read through the caches, and only the scan and the
 * statements that change the target go through SPI.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "access/genam.h"
#include "access/relation.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "makini_fdw.h"
#include "compat.h"

PG_FUNCTION_INFO_V1(makini_sync);

/*
 * Records changed up to this long before the latest updatedAt seen are
 * fetched again: ERP clocks differ, and a record may reach the API with an
 * updatedAt earlier than one already seen (set when its change began, not
 * when it was committed or synced into Makini).
 */
#define SYNC_OVERLAP_USECS	(10 * SECS_PER_MINUTE * USECS_PER_SEC)

/* The source foreign table, as the statements need it. */
typedef struct SyncSource
{
	Oid			relid;
	const char *name;			/* as regclass prints it, for messages */
	const char *sql;			/* schema-qualified and quoted */
	TupleDesc	desc;			/* its columns */
	bool		is_expand;		/* one row per element of a parent's array */
	const char *ver_col;		/* maps the row's own updatedAt, or NULL */
	const char *parent_col;		/* maps parent.key (expand tables), or NULL */
	const char *cols;			/* its columns, quoted, in order */
	StringInfoData set_list;	/* col = EXCLUDED.col, ... (all but key) */
	StringInfoData not_null;	/* ALTER COLUMN col SET NOT NULL, ... */
} SyncSource;

/* What one call did: the returned row and the state's. */
typedef struct SyncResult
{
	const char *mode;			/* "full" or "incremental" */
	int64		fetched;
	int64		upserted;
	int64		deleted;
	int64		requests;
	int64		pages;
	bool		has_watermark;
	TimestampTz watermark;
} SyncResult;

/* A relation's name as regclass prints it (qualified when not visible). */
static const char *
regclass_text(Oid relid)
{
	return DatumGetCString(DirectFunctionCall1(regclassout, ObjectIdGetDatum(relid)));
}

/* A relation's schema-qualified, quoted name, for a statement's text. */
static const char *
qualified_name(Oid relid)
{
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  get_rel_name(relid));
}

/*
 * Waits for, then holds to the end of the transaction, the lock of one
 * makini_sync target (by name before it exists, then by oid): the same
 * advisory lock whichever session asks.  Then reads the catalog changes
 * committed meanwhile, as taking a table's lock does: a call that waited
 * for the one creating the target must find the table.
 */
static void
lock_target(const char *what)
{
	Datum		key = DirectFunctionCall2Coll(hashtextextended, DEFAULT_COLLATION_OID,
											  CStringGetTextDatum(psprintf("makini_sync %s", what)),
											  Int64GetDatum(0));

	DirectFunctionCall1(pg_advisory_xact_lock_int8, key);
	AcceptInvalidationMessages();
}

/* The source's columns, quoted, in order, each after prefix ("t." ...). */
static const char *
column_list(const SyncSource *src, const char *prefix)
{
	StringInfoData list;

	initStringInfo(&list);
	for (int i = 0; i < src->desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(src->desc, i);

		if (!att->attisdropped)
			appendStringInfo(&list, "%s%s%s", list.len > 0 ? ", " : "", prefix,
							 quote_identifier(NameStr(att->attname)));
	}
	return list.data;
}

/*
 * Reads the source: a makini_fdw foreign table with a column "key"; the
 * columns mapping its own updatedAt (a timestamptz) and its parent's key,
 * and the column lists of the statements.
 */
static void
describe_source(Oid relid, SyncSource *src)
{
	Relation	rel;

	src->relid = relid;
	src->name = regclass_text(relid);
	if (get_rel_relkind(relid) != RELKIND_FOREIGN_TABLE ||
		!makini_is_wrapper(GetForeignServer(GetForeignTable(relid)->serverid)->fdwid))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("source %s is not a makini_fdw foreign table", src->name),
				 errhint("makini_sync reads foreign tables of a makini_fdw server, e.g. those IMPORT FOREIGN SCHEMA makini makes.")));
	src->sql = qualified_name(relid);
	src->is_expand = makini_get_table_options(relid)->expand != NULL;
	rel = relation_open(relid, AccessShareLock);
	src->desc = CreateTupleDescCopy(RelationGetDescr(rel));
	relation_close(rel, NoLock);

	src->ver_col = src->parent_col = NULL;
	initStringInfo(&src->set_list);
	initStringInfo(&src->not_null);
	for (int i = 0; i < src->desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(src->desc, i);
		const char *name = NameStr(att->attname);
		const char *quoted = quote_identifier(name);
		char	   *field;

		if (att->attisdropped)
			continue;
		field = makini_get_column_field(relid, att->attnum, name);
		/* of several, the first name in sort order (as min() would) */
		if (strcmp(field, "updatedAt") == 0 && att->atttypid == TIMESTAMPTZOID &&
			(src->ver_col == NULL || strcmp(name, src->ver_col) < 0))
			src->ver_col = name;
		if (strcmp(field, "parent.key") == 0 &&
			(src->parent_col == NULL || strcmp(name, src->parent_col) < 0))
			src->parent_col = name;
		if (strcmp(name, "key") != 0)
			appendStringInfo(&src->set_list, "%s%s = EXCLUDED.%s",
							 src->set_list.len > 0 ? ", " : "", quoted, quoted);
		if (att->attnotnull)
			appendStringInfo(&src->not_null, "ALTER COLUMN %s SET NOT NULL, ", quoted);
	}
	src->cols = column_list(src, "");
	if (get_attnum(relid, "key") == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("source %s has no column \"key\"", src->name),
				 errhint("makini_sync matches rows by the record's key.")));
}

/* Has the table a unique index on its column "key" alone (an arbiter)? */
static bool
has_unique_key_index(Relation rel)
{
	AttrNumber	key = get_attnum(RelationGetRelid(rel), "key");
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;

	foreach(lc, indexes)
	{
		HeapTuple	tuple = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(lfirst_oid(lc)));
		Form_pg_index index;
		bool		found;

		if (!HeapTupleIsValid(tuple))
			continue;
		index = (Form_pg_index) GETSTRUCT(tuple);
		found = index->indisunique && index->indnkeyatts == 1 &&
			index->indkey.values[0] == key && key != InvalidAttrNumber &&
			heap_attisnull(tuple, Anum_pg_index_indpred, NULL) &&
			heap_attisnull(tuple, Anum_pg_index_indexprs, NULL);
		ReleaseSysCache(tuple);
		if (found)
			return true;
	}
	return false;
}

/*
 * Checks an existing target before any request is sent: a table, the
 * caller's privileges, the source's columns with their types, a unique
 * index on key.
 */
static void
check_target(Oid tgt, const SyncSource *src)
{
	const AclMode needed = ACL_SELECT | ACL_INSERT | ACL_UPDATE | ACL_DELETE;
	const char *name = regclass_text(tgt);
	char		relkind = get_rel_relkind(tgt);
	Relation	rel;

	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("target %s is not a table", name),
				 errhint("Give the name of a table, or a new name: makini_sync creates the table.")));
	if (pg_class_aclmask(tgt, GetUserId(), needed, ACLMASK_ALL) != needed)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for table %s", name),
				 errhint("makini_sync needs SELECT, INSERT, UPDATE and DELETE on the target.")));

	for (int i = 0; i < src->desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(src->desc, i);
		const char *col = NameStr(att->attname);
		AttrNumber	attnum;
		Oid			type;
		int32		typmod;
		Oid			collation;
		const char *want;

		if (att->attisdropped)
			continue;
		want = format_type_with_typemod(att->atttypid, att->atttypmod);
		attnum = get_attnum(tgt, col);
		if (attnum == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("target %s has no column \"%s\"", name, col),
					 errdetail("The source %s has column \"%s\" of type %s.", src->name, col, want),
					 errhint("Add the column to the target, or give a new target name: makini_sync creates it.")));
		get_atttypetypmodcoll(tgt, attnum, &type, &typmod, &collation);
		if (type != att->atttypid || typmod != att->atttypmod)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" of target %s has type %s, not %s",
							col, name, format_type_with_typemod(type, typmod), want),
					 errdetail("The source %s has column \"%s\" of type %s.", src->name, col, want),
					 errhint("Change the column's type to %s, or give a new target name: makini_sync creates it.", want)));
	}

	rel = relation_open(tgt, AccessShareLock);
	if (!has_unique_key_index(rel))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_COLUMN_REFERENCE),
				 errmsg("target %s has no unique index on column \"key\"", name),
				 errhint("Add a PRIMARY KEY (key) to the target.")));
	relation_close(rel, NoLock);
}

/*
 * The extension's schema: the state table lives there, with makini_sync
 * (the extension is relocatable; its objects move together).
 */
static Oid
extension_schema(FunctionCallInfo fcinfo)
{
	return get_func_namespace(fcinfo->flinfo->fn_oid);
}

/*
 * Reads the last call's state of the target from makini_sync_state (in the
 * extension's schema, nsp): its source and watermark; false when there is
 * none, or it has no watermark.  Read through the table's primary key
 * under a snapshot taken now, after the wait for the target's lock, so a
 * call that waited goes on from the state the other one left.  (The row
 * policy would show the caller this row: it may SELECT the target.)
 */
static bool
read_state(Oid nsp, Oid tgt, Oid *source, TimestampTz *watermark)
{
	Oid			relid = get_relname_relid("makini_sync_state", nsp);
	Relation	rel = table_open(relid, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	bool		isnull = true;

	PushActiveSnapshot(GetTransactionSnapshot());
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(tgt));
	scan = systable_beginscan(rel, makini_primary_key_index(rel), true,
							  GetActiveSnapshot(), 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
	{
		Datum		value = heap_getattr(tuple, get_attnum(relid, "source"),
										 RelationGetDescr(rel), &isnull);

		*source = isnull ? InvalidOid : DatumGetObjectId(value);
		value = heap_getattr(tuple, get_attnum(relid, "watermark"),
							 RelationGetDescr(rel), &isnull);
		*watermark = isnull ? 0 : DatumGetTimestampTz(value);
	}
	systable_endscan(scan);
	PopActiveSnapshot();
	table_close(rel, NoLock);
	return !isnull;
}

/*
 * makini.sync_notice_interval (default 10 s) in milliseconds, as
 * makini_fdw.progress_interval takes it.
 */
static char *
notice_interval_ms(void)
{
	const char *setting = GetConfigOption("makini.sync_notice_interval", true, false);
	Datum		interval;
	double		ms;

	if (setting == NULL || setting[0] == '\0')
		setting = "10 s";
	interval = DirectFunctionCall3(interval_in, CStringGetDatum(setting),
								   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
	ms = DatumGetFloat8(DirectFunctionCall2(interval_part, CStringGetTextDatum("epoch"),
											interval)) * 1000.0;
	ms = Max(Min(ms, (double) PG_INT32_MAX), 0.0);
	return psprintf(INT64_FORMAT, (int64) floor(ms + 0.5));
}

/* Sets a setting until the matching AtEOXact_GUC (as a function's SET). */
static void
set_for_sync(const char *name, const char *value)
{
	(void) set_config_option(name, value, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

/* Runs one statement through SPI: the rows it processed. */
static int64
run_statement(const char *sql)
{
	int			rc = SPI_execute(sql, false, 0);

	if (rc < 0)
		elog(ERROR, "makini_sync: SPI_execute failed: %s", SPI_result_code_string(rc));
	return (int64) SPI_processed;
}

/* A bigint of the one row the last statement returned (column from 1). */
static int64
result_value(int column)
{
	bool		isnull;
	Datum		value;

	if (SPI_tuptable == NULL || SPI_processed != 1)
		elog(ERROR, "makini_sync: a statement returned no row");
	value = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, column, &isnull);
	return isnull ? 0 : DatumGetInt64(value);
}

/* ORDER BY's tail that puts a key's latest version first (if it has one). */
static const char *
version_order(const SyncSource *src)
{
	return src->ver_col ? psprintf(", %s DESC NULLS LAST", quote_identifier(src->ver_col)) : "";
}

/*
 * The statement of an incremental call of a table whose rows are records
 * (not expand): the changed records (a key sent twice counts in its latest
 * version) upserted by key; nothing to delete (a deleted record comes back
 * with its deletedAt).  A row equal to the target's, byte for byte
 * (record_image_eq: 1.0 and 1.00 differ), is not rewritten (ON CONFLICT
 * still locks it).  One plain INSERT: in a new backend it costs 5 ms less
 * to plan and run than the general statement below.
 */
static char *
upsert_changed_statement(const SyncSource *src, const char *tgt, const char *scan)
{
	return psprintf("INSERT INTO %s AS t (%s) SELECT DISTINCT ON (key) %s FROM (%s) s ORDER BY key%s "
					"ON CONFLICT (key) DO UPDATE SET %s "
					"WHERE NOT pg_catalog.record_image_eq(ROW(%s), ROW(%s))",
					tgt, src->cols, src->cols, scan, version_order(src),
					src->set_list.len > 0 ? src->set_list.data : "key = EXCLUDED.key",
					column_list(src, "t."), column_list(src, "EXCLUDED."));
}

/*
 * The one statement of a full call into an existing, non-empty target, or
 * of an incremental call of an expand table: the scan's rows (s; a key sent
 * twice counts in its latest version: c) replace the target's rows of their
 * keys, and rows are deleted: those the source no longer returns (full), or
 * the lines gone from a changed parent (incremental).  An incremental call
 * reads the target's rows concerned once (m: by the changed parents' keys,
 * which the index on the parent column serves), a full one the whole
 * target.  A row equal to the target's, byte for byte (record_image_eq: 1.0
 * and 1.00 differ), is left alone (not even locked): a changed order does
 * not rewrite its unchanged lines.
 */
static char *
upsert_statement(const SyncSource *src, const char *tgt, const char *scan, bool full)
{
	const char *match_col = quote_identifier(full ? "key" : src->parent_col);
	const char *old_rows = full ? tgt : "m";
	const char *gone = full ?
		"NOT EXISTS (SELECT FROM s WHERE s.key = t.key)" :
		"t.key = ANY (ARRAY(SELECT m.key FROM m WHERE NOT EXISTS (SELECT FROM s WHERE s.key = m.key)))";

	return psprintf("WITH s AS MATERIALIZED (%s), "
					"c AS (SELECT DISTINCT ON (key) %s FROM s ORDER BY key%s), "
					"m AS MATERIALIZED (SELECT %s FROM %s t WHERE t.%s = ANY (ARRAY(SELECT DISTINCT s.%s FROM s))), "
					"d AS (DELETE FROM %s t WHERE %s RETURNING 1), "
					"u AS (INSERT INTO %s AS t (%s) SELECT %s FROM c "
					"WHERE NOT EXISTS (SELECT FROM %s o WHERE o.key = c.key AND pg_catalog.record_image_eq(ROW(%s), ROW(%s))) "
					"ON CONFLICT (key) DO UPDATE SET %s RETURNING 1) "
					"SELECT (SELECT count(*) FROM u), (SELECT count(*) FROM d)",
					scan,
					src->cols,
					version_order(src),
					src->cols, tgt, match_col, match_col,
					tgt, gone,
					tgt, src->cols, column_list(src, "c."),
					old_rows, column_list(src, "o."), column_list(src, "c."),
					src->set_list.len > 0 ? src->set_list.data : "key = EXCLUDED.key");
}

/* Writes the target's state row (the caller's row-level policy applies). */
static void
write_state(const char *schema, Oid tgt, Oid source, const SyncResult *res)
{
	Oid			argtypes[5] = {REGCLASSOID, REGCLASSOID, TIMESTAMPTZOID, TEXTOID, INT8OID};
	Datum		args[5] = {ObjectIdGetDatum(tgt), ObjectIdGetDatum(source),
		TimestampTzGetDatum(res->watermark), CStringGetTextDatum(res->mode),
	Int64GetDatum(res->fetched)};
	char		nulls[5] = {' ', ' ', res->has_watermark ? ' ' : 'n', ' ', ' '};

	if (SPI_execute_with_args(psprintf("INSERT INTO %s.makini_sync_state AS s VALUES ($1, $2, $3, $4, now(), $5) "
									   "ON CONFLICT (target) DO UPDATE SET source = EXCLUDED.source, "
									   "watermark = EXCLUDED.watermark, last_mode = EXCLUDED.last_mode, "
									   "last_sync_at = EXCLUDED.last_sync_at, last_fetched = EXCLUDED.last_fetched",
									   schema),
							  5, argtypes, args, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "makini_sync: could not write makini_sync_state");
}

/* Looks a relation up by a possibly qualified name; InvalidOid if none. */
static Oid
lookup_table(List *names)
{
	return RangeVarGetRelid(makeRangeVarFromNameList(names), NoLock, true);
}

/*
 * Fills a new target (CREATE TABLE AS, the fastest way in: bulk insertion),
 * then gives it what (LIKE source) would have (the NOT NULL columns), its
 * primary key, and for an expand table an index on the parent key, by
 * which incremental calls replace a changed parent's rows.  Its oid.
 */
static Oid
fill_new_target(const SyncSource *src, List *tgt_names, const char *scan,
				bool capable, SyncResult *res)
{
	Oid			tgt;
	const char *tgt_sql;

	res->upserted = run_statement(psprintf("CREATE TABLE %s AS %s",
										   NameListToQuotedString(tgt_names), scan));
	tgt = RangeVarGetRelid(makeRangeVarFromNameList(tgt_names), NoLock, false);
	tgt_sql = qualified_name(tgt);
	run_statement(psprintf("ALTER TABLE %s %sADD PRIMARY KEY (key)", tgt_sql, src->not_null.data));
	if (src->is_expand && capable)
		run_statement(psprintf("CREATE INDEX ON %s (%s)", tgt_sql, quote_identifier(src->parent_col)));
	return tgt;
}

/*
 * Brings an existing target up to date: an empty one (full) straight from
 * the scan, else through one statement that upserts (and deletes).
 */
static void
update_target(const SyncSource *src, Oid tgt, const char *scan,
			  bool incremental, SyncResult *res)
{
	const char *tgt_sql = qualified_name(tgt);
	bool		empty = false;

	if (!incremental)
	{
		run_statement(psprintf("SELECT count(*) FROM (SELECT FROM %s LIMIT 1) t", tgt_sql));
		empty = result_value(1) == 0;
	}
	if (empty)
		res->upserted = run_statement(psprintf("INSERT INTO %s (%s) %s ON CONFLICT (key) DO NOTHING",
											   tgt_sql, src->cols, scan));
	else if (incremental && !src->is_expand)
		res->upserted = run_statement(upsert_changed_statement(src, tgt_sql, scan));
	else
	{
		run_statement(upsert_statement(src, tgt_sql, scan, !incremental));
		res->upserted = result_value(1);
		res->deleted = result_value(2);
	}
}

/*
 * The one scan of the source, into the target (made if tgt is invalid).
 * While it runs, makini_fdw.sync_scan has it send the filter (since
 * old_wm, less the overlap) and track updatedAt and its counts, and
 * makini_fdw.progress_interval (from makini.sync_notice_interval) has it
 * raise a progress NOTICE; both are restored after it, as a function's SET
 * would be.  The target's oid.
 */
static Oid
run_scan(const SyncSource *src, List *tgt_names, Oid tgt, bool incremental,
		 bool capable, TimestampTz old_wm, SyncResult *res)
{
	const char *scan = psprintf("SELECT %s FROM %s WHERE key IS NOT NULL", src->cols, src->sql);
	const MakiniSyncCounts *counts;
	int			nest = NewGUCNestLevel();

	/* "<oid>" (full) or "<oid> <since in microseconds since 1970 UTC>" */
	set_for_sync("makini_fdw.sync_scan", incremental ?
				 psprintf("%u " INT64_FORMAT, src->relid,
						  old_wm - SYNC_OVERLAP_USECS +
						  (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY) :
				 psprintf("%u", src->relid));
	set_for_sync("makini_fdw.progress_interval", notice_interval_ms());
	makini_sync_counts_reset();
	if (OidIsValid(tgt))
		update_target(src, tgt, scan, incremental, res);
	else
		tgt = fill_new_target(src, tgt_names, scan, capable, res);
	AtEOXact_GUC(true, nest);

	/*
	 * The watermark is the latest updatedAt the scan read (never the local
	 * clock; none when changes cannot be found by it).
	 */
	counts = makini_sync_counts();
	res->fetched = counts->rows;
	res->requests = counts->requests;
	res->pages = counts->pages;
	res->has_watermark = capable && counts->latest != DT_NOBEGIN;
	res->watermark = counts->latest;
	return tgt;
}

/* The closing NOTICE, and the row makini_sync returns (its only one). */
static void
return_row(FunctionCallInfo fcinfo, Oid tgt, const SyncResult *res, TimestampTz started)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	double		secs = (double) (GetCurrentTimestamp() - started) / USECS_PER_SEC;
	Datum		values[7];
	bool		nulls[7] = {0};

	ereport(NOTICE,
			(errmsg("makini_sync: " INT64_FORMAT " records in " INT64_FORMAT " pages (" INT64_FORMAT " HTTP requests) in %.1f s, %.0f records/s; " INT64_FORMAT " rows upserted, " INT64_FORMAT " deleted",
					res->fetched, res->pages, res->requests, secs,
					floor(res->fetched / Max(secs, 0.001) + 0.5),
					res->upserted, res->deleted)));
	values[0] = ObjectIdGetDatum(tgt);
	values[1] = CStringGetTextDatum(res->mode);
	values[2] = Int64GetDatum(res->fetched);
	values[3] = Int64GetDatum(res->upserted);
	values[4] = Int64GetDatum(res->deleted);
	values[5] = Int64GetDatum(res->requests);
	values[6] = TimestampTzGetDatum(res->watermark);
	nulls[6] = !res->has_watermark;
	InitMaterializedSRF(fcinfo, 0);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * makini_sync(source, target, full): brings target up to date with the
 * makini_fdw foreign table source; one row says what it did.
 */
Datum
makini_sync(PG_FUNCTION_ARGS)
{
	TimestampTz started = GetCurrentTimestamp();
	SyncSource	src;
	SyncResult	res = {0};
	List	   *tgt_names;
	Oid			tgt;
	bool		capable;
	bool		incremental;
	Oid			schema;
	Oid			old_source = InvalidOid;
	TimestampTz old_wm = 0;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("makini_sync needs a source table and a target table name"),
				 errhint("Call makini_sync(source, target) with a makini_fdw foreign table and the name of the local table to keep.")));
	describe_source(PG_GETARG_OID(0), &src);

	/* the target: made when missing; two calls for one target never interleave */
	tgt_names = makini_qualified_name_list(text_to_cstring(PG_GETARG_TEXT_PP(1)));
	tgt = lookup_table(tgt_names);
	if (!OidIsValid(tgt))
	{
		lock_target(NameListToString(tgt_names));
		tgt = lookup_table(tgt_names);
	}
	if (OidIsValid(tgt))
	{
		lock_target(psprintf("%u", tgt));
		check_target(tgt, &src);
	}

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "makini_sync: SPI_connect failed");

	/*
	 * Incremental if there is a state for this source, its changes can be
	 * found (by updatedAt; in an expand table, replacing a changed parent's
	 * rows needs a parent.key column) and the caller did not ask for full.
	 */
	schema = extension_schema(fcinfo);
	capable = makini_sync_tracks_changes(src.relid) &&
		(!src.is_expand || src.parent_col != NULL);
	incremental = OidIsValid(tgt) && read_state(schema, tgt, &old_source, &old_wm) &&
		old_source == src.relid && capable && !(!PG_ARGISNULL(2) && PG_GETARG_BOOL(2));
	res.mode = incremental ? "incremental" : "full";
	ereport(NOTICE,
			(errmsg("makini_sync: %s sync of %s %s", res.mode, src.name,
					incremental ?
					psprintf("(updated since %s)",
							 DatumGetCString(DirectFunctionCall1(timestamptz_out,
																 TimestampTzGetDatum(old_wm - SYNC_OVERLAP_USECS)))) :
					"(every record)")));

	tgt = run_scan(&src, tgt_names, tgt, incremental, capable, old_wm, &res);
	/* an incremental call that read no updatedAt keeps the last watermark */
	if (incremental && (!res.has_watermark || res.watermark < old_wm))
	{
		res.has_watermark = true;
		res.watermark = old_wm;
	}
	write_state(quote_identifier(get_namespace_name(schema)), tgt, src.relid, &res);
	SPI_finish();

	return_row(fcinfo, tgt, &res, started);
	return (Datum) 0;
}
