/*-------------------------------------------------------------------------
 *
 * import.c
 *		  IMPORT FOREIGN SCHEMA makini: the six tables of the Makini ERP
 *		  purchase-order model, from one static catalog.
 *
 * The API has no schema endpoint, so the catalog below is the schema: each
 * table's name, resource, expand field and columns with their types.  A
 * column's field is written only where it differs from the camelCase of its
 * name; every table gets its resource written out so that renaming it later
 * does not change what it reads.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "makini_fdw.h"

#include "utils/builtins.h"

#define MAKINI_REMOTE_SCHEMA "makini"

typedef struct ImportColumn
{
	const char *name;
	const char *type;
	const char *field;			/* NULL: the camelCase of name */
} ImportColumn;

typedef struct ImportTable
{
	const char *name;
	const char *resource;
	const char *expand;			/* NULL: one row per record */
	const ImportColumn *columns;	/* ends with {NULL} */
} ImportTable;

static const ImportColumn purchase_order_columns[] = {
	{"key", "text"}, {"order_no", "text"}, {"title", "text"},
	{"description", "text"}, {"site_key", "text"},
	{"organization_key", "text"}, {"vendor_key", "text"},
	{"user_requested_key", "text"}, {"user_approved_key", "text"},
	{"status_key", "text"}, {"currency_key", "text"},
	{"location_key", "text"},
	{"order_date", "timestamptz"}, {"due_at", "timestamptz"},
	{"approved_at", "timestamptz"}, {"completed_at", "timestamptz"},
	{"shipment_date", "timestamptz"},
	{"shipping_method", "text"}, {"terms", "text"}, {"notes", "text"},
	{"total_net_value", "numeric"}, {"total_tax_value", "numeric"},
	{"total_gross_value", "numeric"},
	{"shipment_address", "jsonb"}, {"billing_address", "jsonb"},
	{"delivery_address", "jsonb"},
	{"created_at", "timestamptz"}, {"updated_at", "timestamptz"},
	{"deleted_at", "timestamptz"},
	{"custom_fields", "jsonb", "*"},
	{NULL}
};

static const ImportColumn purchase_order_line_columns[] = {
	{"order_key", "text", "parent.key"},
	{"order_no", "text", "parent.orderNo"},
	{"key", "text"}, {"line_no", "integer"}, {"code", "text"},
	{"type", "text"}, {"name", "text"}, {"description", "text"},
	{"line_ref", "text"},
	{"quantity", "numeric"}, {"received_quantity", "numeric"},
	{"uom_key", "text"}, {"currency_key", "text"},
	{"price", "numeric"}, {"discount", "numeric"},
	{"line_tax_value", "numeric"}, {"line_total_value", "numeric"},
	{"notes", "text"},
	{"delivery_at", "timestamptz"}, {"due_at", "timestamptz"},
	{"location_key", "text"}, {"account_key", "text"},
	{"vendor_key", "text"}, {"asset_key", "text"},
	{"material_key", "text"}, {"product_key", "text"},
	{"status_key", "text"}, {"storeroom_key", "text"},
	{"created_at", "timestamptz"}, {"updated_at", "timestamptz"},
	{"deleted_at", "timestamptz"},
	{"custom_fields", "jsonb", "*"},
	{NULL}
};

static const ImportColumn vendor_columns[] = {
	{"key", "text"}, {"name", "text"}, {"code", "text"},
	{"company_key", "text"}, {"organization_key", "text"},
	{"created_at", "timestamptz"}, {"updated_at", "timestamptz"},
	{"deleted_at", "timestamptz"},
	{NULL}
};

static const ImportColumn status_columns[] = {
	{"key", "text"}, {"organization_key", "text"}, {"parent_key", "text"},
	{"name", "text"}, {"code", "text"}, {"sub_code", "text"},
	{"scope", "text"}, {"is_active", "boolean"},
	{NULL}
};

static const ImportColumn currency_columns[] = {
	{"key", "text"}, {"name", "text"}, {"code", "text"},
	{"is_base", "boolean"}, {"is_active", "boolean"},
	{NULL}
};

static const ImportColumn uom_columns[] = {
	{"key", "text"}, {"name", "text"}, {"code", "text"},
	{"rate_base_key", "text"}, {"rate", "numeric"}, {"is_active", "boolean"},
	{NULL}
};

/* the remote schema "makini" */
static const ImportTable makini_tables[] = {
	{"purchase_orders", "purchase-orders", NULL, purchase_order_columns},
	{"purchase_order_lines", "purchase-orders", "lineItems",
	purchase_order_line_columns},
	{"vendors", "vendors", NULL, vendor_columns},
	{"purchase_order_statuses", "statuses/purchase-orders", NULL,
	status_columns},
	{"currencies", "currencies", NULL, currency_columns},
	{"units_of_measure", "uom", NULL, uom_columns},
	{NULL}
};

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

/* Returns the CREATE FOREIGN TABLE statement of one catalog table. */
static char *
table_statement(const ImportTable *table, const char *servername)
{
	StringInfoData buf;
	const ImportColumn *col;

	initStringInfo(&buf);
	appendStringInfo(&buf, "CREATE FOREIGN TABLE %s (",
					 quote_identifier(table->name));
	for (col = table->columns; col->name; col++)
	{
		appendStringInfo(&buf, "%s\n  %s %s",
						 col == table->columns ? "" : ",",
						 quote_identifier(col->name), col->type);
		if (col->field)
			appendStringInfo(&buf, " OPTIONS (field %s)",
							 quote_literal_cstr(col->field));
	}
	appendStringInfo(&buf, "\n) SERVER %s OPTIONS (resource %s",
					 quote_identifier(servername),
					 quote_literal_cstr(table->resource));
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
 * of the catalog tables that LIMIT TO / EXCEPT let through.
 */
List *
makini_import_foreign_schema(ImportForeignSchemaStmt *stmt, Oid serverOid)
{
	ForeignServer *server = GetForeignServer(serverOid);
	const ImportTable *table;
	List	   *commands = NIL;

	check_import_request(stmt);
	for (table = makini_tables; table->name; table++)
	{
		if (table_requested(stmt, table->name))
			commands = lappend(commands,
							   table_statement(table, server->servername));
	}
	return commands;
}
