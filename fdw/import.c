/*-------------------------------------------------------------------------
 *
 * import.c
 *		  IMPORT FOREIGN SCHEMA makini: the tables of the API model
 *		  (model.c) as CREATE FOREIGN TABLE statements.
 *
 * A column's field is written only where it differs from the camelCase of
 * its name; every table gets its resource written out so that renaming it
 * later does not change what it reads.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "makini_fdw.h"
#include "model.h"

#include "utils/builtins.h"

#define MAKINI_REMOTE_SCHEMA "makini"

/* True if LIMIT TO / EXCEPT of stmt lets table name through. */
static bool
table_requested(ImportForeignSchemaStmt *stmt, const char *name)
{
	ListCell   *lc;
	bool		listed = false;

	if (stmt->list_type == FDW_IMPORT_SCHEMA_ALL)
		return true;
	foreach(lc, stmt->table_list)
	{
		RangeVar   *rv = (RangeVar *) lfirst(lc);

		if (strcmp(rv->relname, name) == 0)
			listed = true;
	}
	return (stmt->list_type == FDW_IMPORT_SCHEMA_LIMIT_TO) == listed;
}

/* Returns the CREATE FOREIGN TABLE statement of one table of the model. */
static char *
table_statement(const MakiniTable *table, const char *servername)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	appendStringInfo(&buf, "CREATE FOREIGN TABLE %s (",
					 quote_identifier(table->name));
	foreach(lc, makini_table_columns(table))
	{
		MakiniModelColumn *col = (MakiniModelColumn *) lfirst(lc);

		appendStringInfo(&buf, "%s\n  %s %s",
						 foreach_current_index(lc) == 0 ? "" : ",",
						 quote_identifier(col->name), col->type);
		if (strcmp(col->field, makini_camel_case(col->name)) != 0)
			appendStringInfo(&buf, " OPTIONS (field %s)",
							 quote_literal_cstr(col->field));
	}
	appendStringInfo(&buf, "\n) SERVER %s OPTIONS (resource %s",
					 quote_identifier(servername),
					 quote_literal_cstr(makini_table_resource(table)));
	if (table->expand)
		appendStringInfo(&buf, ", expand %s",
						 quote_literal_cstr(table->expand));
	appendStringInfoString(&buf, ")");
	return buf.data;
}

/*
 * Checks what IMPORT FOREIGN SCHEMA asked for: the remote schema must be
 * "makini", and there are no IMPORT options.
 */
static void
check_import_request(ImportForeignSchemaStmt *stmt)
{
	if (strcmp(stmt->remote_schema, MAKINI_REMOTE_SCHEMA) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_SCHEMA_NOT_FOUND),
				 errmsg("remote schema \"%s\" does not exist",
						stmt->remote_schema),
				 errhint("The only remote schema is \"%s\".",
						 MAKINI_REMOTE_SCHEMA)));
	if (stmt->options != NIL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("invalid option \"%s\"",
						((DefElem *) linitial(stmt->options))->defname),
				 errhint("There are no valid options in this context.")));
}

/*
 * IMPORT FOREIGN SCHEMA makini: returns the CREATE FOREIGN TABLE statements
 * of the model's tables that LIMIT TO / EXCEPT let through.
 */
List *
makini_import_foreign_schema(ImportForeignSchemaStmt *stmt, Oid serverOid)
{
	ForeignServer *server = GetForeignServer(serverOid);
	const MakiniTable *table;
	List	   *commands = NIL;

	check_import_request(stmt);
	for (table = makini_model_tables; table->name; table++)
	{
		if (table_requested(stmt, table->name))
			commands = lappend(commands,
							   table_statement(table, server->servername));
	}
	return commands;
}
