/*-------------------------------------------------------------------------
 *
 * sync.c
 *		  What makini_sync (sync_run.c) asks of the one foreign scan it
 *		  runs.
 *
 * An incremental mirror needs the records changed since a time, found by
 * their updatedAt (in an expand table, the parent record's: any change to a
 * line item sets its order's, API.md §3), and the latest updatedAt among
 * them, the next call's watermark.  The imported purchase_order_lines has no
 * column for its order's updatedAt, and a foreign table need not map
 * updatedAt at all, so neither can be asked for in SQL.  makini_sync sets
 * the internal setting makini_fdw.sync_scan to "<table oid> [<since>]"
 * around its scan (and restores it): the planner then sends
 * filter[updatedAt:gteq] for that table (pushdown.c's
 * makini_changed_since_cond), and the scan reads each record's (or
 * parent's) updatedAt without a column (convert.c's
 * makini_column_map_add_updated); when it ends it hands makini_sync the
 * latest, with the rows it returned and its requests and pages
 * (makini_sync_note_scan).  EXPLAIN ANALYZE shows the latest too ("Makini
 * latest updatedAt").
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_class.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "makini_fdw.h"
#include "model.h"

/* makini_fdw.sync_scan: "" or "<oid>" or "<oid> <since, Unix epoch us>" */
static char *makini_sync_scan = NULL;

PG_FUNCTION_INFO_V1(makini_sync_capable);

/*
 * Parses the setting's value; false if it is not of the form above.
 * *since is DT_NOBEGIN when no time is given (a full copy: only the latest
 * updatedAt is wanted).
 */
static bool
parse_sync_scan(const char *value, Oid *relid, TimestampTz *since)
{
	char	   *end;
	unsigned long oid;
	long long	unix_us;

	errno = 0;
	oid = strtoul(value, &end, 10);
	if (errno != 0 || end == value || oid == InvalidOid || oid > PG_UINT32_MAX)
		return false;
	*relid = (Oid) oid;
	*since = DT_NOBEGIN;
	if (*end == '\0')
		return true;
	if (*end != ' ')
		return false;
	value = end + 1;
	unix_us = strtoll(value, &end, 10);
	if (errno != 0 || end == value || *end != '\0')
		return false;
	/* the Unix epoch is 30 years before PostgreSQL's (2000-01-01) */
	*since = unix_us - ((TimestampTz) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) *
						SECS_PER_DAY * USECS_PER_SEC);
	return true;
}

/* GUC check hook of makini_fdw.sync_scan. */
static bool
check_sync_scan(char **newval, void **extra, GucSource source)
{
	Oid			relid;
	TimestampTz since;

	if (**newval == '\0' || parse_sync_scan(*newval, &relid, &since))
		return true;
	GUC_check_errdetail("Expected a table's oid, optionally followed by a space and microseconds since 1970-01-01 00:00 UTC.");
	return false;
}

/* Defines makini_fdw.sync_scan (from _PG_init). */
void
makini_sync_define_setting(void)
{
	DefineCustomStringVariable("makini_fdw.sync_scan",
							   "Set by makini_sync around its scan: the table whose changed records it reads.",
							   "Internal: \"<table oid> [<microseconds since 1970-01-01 UTC>]\"; empty when no sync runs.",
							   &makini_sync_scan, "", PGC_USERSET,
							   GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE,
							   check_sync_scan, NULL, NULL);
}

/*
 * Can changes of the table be found by updatedAt: do its records (for an
 * expand table, the parents) have a filterable date-time updatedAt?
 */
static bool
tracks_changes(const MakiniTableOptions *topts)
{
	const MakiniField *field = makini_model_field(topts->resource, "updatedAt");

	return makini_model_filterable(field) && field->kind == MAKINI_FIELD_DATETIME;
}

/*
 * What the makini_sync scans of this backend read since the last
 * makini_sync_counts_reset: the counts a call returns.
 */
static MakiniSyncCounts sync_counts = {0, 0, 0, DT_NOBEGIN};

/* Forgets the counts of earlier scans (makini_sync, before its scan). */
void
makini_sync_counts_reset(void)
{
	sync_counts.rows = sync_counts.requests = sync_counts.pages = 0;
	sync_counts.latest = DT_NOBEGIN;
}

/* Adds what one makini_sync scan read, when it ends (scan.c). */
void
makini_sync_note_scan(int64 rows, const MakiniStats *stats, TimestampTz latest)
{
	sync_counts.rows += rows;
	sync_counts.requests += stats->requests;
	sync_counts.pages += stats->pages;
	sync_counts.latest = Max(sync_counts.latest, latest);
}

/* What the makini_sync scans read since the last reset. */
const MakiniSyncCounts *
makini_sync_counts(void)
{
	return &sync_counts;
}

/*
 * Is this makini_sync's scan (makini_fdw.sync_scan names the table)?  Then
 * it hands makini_sync its counts, and *since is the time from which
 * changed records are wanted (DT_NOBEGIN: all of them); *track says
 * whether it reads updatedAt (the table's records, or parents, have one).
 */
bool
makini_sync_scan_of(const MakiniTableOptions *topts, bool *track, TimestampTz *since)
{
	Oid			relid;

	*track = false;
	if (makini_sync_scan == NULL || makini_sync_scan[0] == '\0' ||
		!parse_sync_scan(makini_sync_scan, &relid, since) || relid != topts->relid)
		return false;
	*track = tracks_changes(topts);
	return true;
}

/*
 * makini_sync_capable(regclass): can makini_sync find the changed records
 * of this makini_fdw foreign table, or must every call copy it in full?
 */
Datum
makini_sync_capable(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	char	   *name = get_rel_name(relid);

	if (name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	if (get_rel_relkind(relid) != RELKIND_FOREIGN_TABLE ||
		!makini_is_wrapper(GetForeignServer(GetForeignTable(relid)->serverid)->fdwid))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a makini_fdw foreign table", name),
				 errhint("makini_sync reads foreign tables of a makini_fdw server, e.g. those IMPORT FOREIGN SCHEMA makini makes.")));
	PG_RETURN_BOOL(makini_sync_tracks_changes(relid));
}

/*
 * Can changes of this makini_fdw foreign table be found by updatedAt (its
 * records', or in an expand table its parents')?
 */
bool
makini_sync_tracks_changes(Oid relid)
{
	return tracks_changes(makini_get_table_options(relid));
}
