/*-------------------------------------------------------------------------
 *
 * compat.h
 *		  Every difference between the PostgreSQL versions makini_fdw builds
 *		  against (15, 16, 17, 18), gathered in one place.
 *
 * The code calls the wrappers below; each one maps to the server's API of
 * the version compiled against.  Nothing else in fdw/ tests
 * PG_VERSION_NUM.  Where a change is listed under a version, that is the
 * version that made it:
 *
 *	16	pg_foreign_server_aclcheck() gone (object_aclcheck); DecodeDateTime()
 *		takes a DateTimeErrorExtra; RangeTblEntry.checkAsUser gone (the
 *		planner puts it into ForeignScan.checkAsUser);
 *		stringToQualifiedNameList() takes an escontext.
 *	17	create_foreignscan_path() takes fdw_restrictinfo;
 *		CreateWaitEventSet() takes a ResourceOwner instead of a memory
 *		context.
 *	18	create_foreignscan_path() takes disabled_nodes;
 *		PathKey.pk_strategy became pk_cmptype; pg_attribute_noreturn()
 *		gone (the pg_noreturn prefix replaces it); ExplainState and the
 *		ExplainProperty*() functions live in their own headers;
 *		POSIX_COLLATION_OID no longer has a symbol;
 *		RelationGetPrimaryKeyIndex() takes deferrable_ok.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MAKINI_COMPAT_H
#define MAKINI_COMPAT_H

#include "postgres.h"

#include "access/stratnum.h"
#include "commands/explain.h"
#include "executor/executor.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/pathnodes.h"
#include "optimizer/pathnode.h"
#include "storage/latch.h"
#include "utils/acl.h"
#include "utils/datetime.h"
#include "utils/regproc.h"
#include "utils/relcache.h"

#if PG_VERSION_NUM >= 160000
#include "catalog/pg_foreign_server.h"
#endif
#if PG_VERSION_NUM >= 180000
#include "commands/explain_format.h"
#include "commands/explain_state.h"
#endif

/*
 * A function that never returns: written before the declaration, as
 * PostgreSQL 18 wants it.  Before 18 the attribute does the same.
 */
#ifndef pg_noreturn
#define pg_noreturn pg_attribute_noreturn()
#endif

/* The built-in "POSIX" collation (its OID is fixed in pg_collation.dat). */
#ifndef POSIX_COLLATION_OID
#define POSIX_COLLATION_OID 951
#endif

/* A foreign scan path, with the arguments makini_fdw sets (none disabled). */
static inline ForeignPath *
makini_foreignscan_path(PlannerInfo *root, RelOptInfo *rel, double rows,
						Cost startup_cost, Cost total_cost, List *pathkeys,
						Relids required_outer, List *fdw_private)
{
#if PG_VERSION_NUM >= 180000
	return create_foreignscan_path(root, rel, NULL, rows, 0, startup_cost,
								   total_cost, pathkeys, required_outer,
								   NULL, NIL, fdw_private);
#elif PG_VERSION_NUM >= 170000
	return create_foreignscan_path(root, rel, NULL, rows, startup_cost,
								   total_cost, pathkeys, required_outer,
								   NULL, NIL, fdw_private);
#else
	return create_foreignscan_path(root, rel, NULL, rows, startup_cost,
								   total_cost, pathkeys, required_outer,
								   NULL, fdw_private);
#endif
}

/* Does the path key sort by a btree ordering, and is it descending? */
static inline bool
makini_pathkey_ordered(const PathKey *pk, bool *descending)
{
#if PG_VERSION_NUM >= 180000
	*descending = (pk->pk_cmptype == COMPARE_GT);
	return pk->pk_cmptype == COMPARE_LT || pk->pk_cmptype == COMPARE_GT;
#else
	*descending = (pk->pk_strategy == BTGreaterStrategyNumber);
	return pk->pk_strategy == BTLessStrategyNumber ||
		pk->pk_strategy == BTGreaterStrategyNumber;
#endif
}

/* The user's USAGE privilege on a foreign server. */
static inline AclResult
makini_server_aclcheck(Oid serverid, Oid userid)
{
#if PG_VERSION_NUM >= 160000
	return object_aclcheck(ForeignServerRelationId, serverid, userid,
						   ACL_USAGE);
#else
	return pg_foreign_server_aclcheck(serverid, userid, ACL_USAGE);
#endif
}

/*
 * The user a foreign scan runs as: the view owner's for a scan through a
 * view, else the current user.
 */
static inline Oid
makini_scan_user(ForeignScan *fsplan, EState *estate)
{
#if PG_VERSION_NUM >= 160000
	Oid			userid = fsplan->checkAsUser;
#else
	Oid			userid = exec_rt_fetch(fsplan->scan.scanrelid,
									   estate)->checkAsUser;
#endif

	return OidIsValid(userid) ? userid : GetUserId();
}

/* The primary key's index of a table (InvalidOid if none). */
static inline Oid
makini_primary_key_index(Relation rel)
{
#if PG_VERSION_NUM >= 180000
	return RelationGetPrimaryKeyIndex(rel, false);
#else
	return RelationGetPrimaryKeyIndex(rel);
#endif
}

/* A possibly qualified name's parts; an error if it is not a name. */
static inline List *
makini_qualified_name_list(const char *name)
{
#if PG_VERSION_NUM >= 160000
	return stringToQualifiedNameList(name, NULL);
#else
	return stringToQualifiedNameList(name);
#endif
}

/* DecodeDateTime() without the error details that 16 added. */
static inline int
makini_decode_datetime(char **field, int *ftype, int nf, int *dtype,
					   struct pg_tm *tm, fsec_t *fsec, int *tzp)
{
#if PG_VERSION_NUM >= 160000
	DateTimeErrorExtra extra;

	return DecodeDateTime(field, ftype, nf, dtype, tm, fsec, tzp, &extra);
#else
	return DecodeDateTime(field, ftype, nf, dtype, tm, fsec, tzp);
#endif
}

/*
 * A wait event set that lives until FreeWaitEventSet(): in TopMemoryContext
 * before 17, owned by no resource owner from 17 on.
 */
static inline WaitEventSet *
makini_create_wait_event_set(int nevents)
{
#if PG_VERSION_NUM >= 170000
	return CreateWaitEventSet(NULL, nevents);
#else
	return CreateWaitEventSet(TopMemoryContext, nevents);
#endif
}

#endif							/* MAKINI_COMPAT_H */
