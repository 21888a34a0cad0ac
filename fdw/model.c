/*-------------------------------------------------------------------------
 *
 * model.c
 *		  The Makini API model (API.md §2-§4), written once: the
 *		  entities with their fields, kinds, key and item endpoint, and the
 *		  tables IMPORT FOREIGN SCHEMA makini makes of them.
 *
 * The API has no schema endpoint, so this file is the schema.  The importer
 * makes its columns of it, pushdown asks it which fields the API filters
 * and sorts on (every top-level scalar field of an entity, not objects,
 * collections or custom fields) and which resources answer item requests,
 * the page parser which fields are embedded collections (never custom
 * fields), and makini_model() shows it to SQL: the extension's own
 * functions read the table list there, and the test suite compares it with
 * the simulator's copy (sql-tests/simdata.py, checked by sql/model.sql).
 *
 * Adding an entity or a table is a change here, plus its tests: the
 * simulator's copy of the model (which sql/model.sql holds to this one),
 * its data, and the expected outputs that list the tables.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"

#include "model.h"

/* short names for the field lists below */
#define K_TEXT MAKINI_FIELD_TEXT
#define K_DATETIME MAKINI_FIELD_DATETIME
#define K_DECIMAL MAKINI_FIELD_DECIMAL
#define K_BOOLEAN MAKINI_FIELD_BOOLEAN

/* the date-times of the API's public schema that most entities have */
#define K_STAMPS {"createdAt", K_DATETIME}, {"updatedAt", K_DATETIME}, \
	{"deletedAt", K_DATETIME}

static const MakiniField purchase_order_fields[] = {
	{"key", K_TEXT}, {"orderNo", K_TEXT}, {"title", K_TEXT},
	{"description", K_TEXT}, {"siteKey", K_TEXT}, {"organizationKey", K_TEXT},
	{"vendorKey", K_TEXT}, {"userRequestedKey", K_TEXT},
	{"userApprovedKey", K_TEXT}, {"statusKey", K_TEXT},
	{"currencyKey", K_TEXT}, {"locationKey", K_TEXT},
	{"orderDate", K_DATETIME}, {"dueAt", K_DATETIME},
	{"approvedAt", K_DATETIME}, {"completedAt", K_DATETIME},
	{"shipmentDate", K_DATETIME}, {"shippingMethod", K_TEXT},
	{"terms", K_TEXT}, {"notes", K_TEXT}, {"totalNetValue", K_DECIMAL},
	{"totalTaxValue", K_DECIMAL}, {"totalGrossValue", K_DECIMAL},
	{"shipmentAddress", MAKINI_FIELD_OBJECT},
	{"billingAddress", MAKINI_FIELD_OBJECT},
	{"deliveryAddress", MAKINI_FIELD_OBJECT}, K_STAMPS,
	{"lineItems", MAKINI_FIELD_COLLECTION},
	{NULL}
};

static const MakiniField line_item_fields[] = {
	{"key", K_TEXT}, {"lineNo", MAKINI_FIELD_INTEGER}, {"code", K_TEXT},
	{"type", K_TEXT}, {"name", K_TEXT}, {"description", K_TEXT},
	{"lineRef", K_TEXT}, {"quantity", K_DECIMAL},
	{"receivedQuantity", K_DECIMAL}, {"uomKey", K_TEXT},
	{"currencyKey", K_TEXT}, {"price", K_DECIMAL}, {"discount", K_DECIMAL},
	{"lineTaxValue", K_DECIMAL}, {"lineTotalValue", K_DECIMAL},
	{"notes", K_TEXT}, {"deliveryAt", K_DATETIME}, {"dueAt", K_DATETIME},
	{"locationKey", K_TEXT}, {"accountKey", K_TEXT}, {"vendorKey", K_TEXT},
	{"assetKey", K_TEXT}, {"materialKey", K_TEXT}, {"productKey", K_TEXT},
	{"statusKey", K_TEXT}, {"storeroomKey", K_TEXT}, K_STAMPS,
	{NULL}
};

static const MakiniField vendor_fields[] = {
	{"key", K_TEXT}, {"name", K_TEXT}, {"code", K_TEXT},
	{"companyKey", K_TEXT}, {"organizationKey", K_TEXT}, K_STAMPS,
	{NULL}
};

/* the contract's "..." (further fields) are not part of the model */
static const MakiniField status_fields[] = {
	{"key", K_TEXT}, {"organizationKey", K_TEXT}, {"parentKey", K_TEXT},
	{"name", K_TEXT}, {"code", K_TEXT}, {"subCode", K_TEXT},
	{"scope", K_TEXT}, {"isActive", K_BOOLEAN},
	{NULL}
};

static const MakiniField currency_fields[] = {
	{"key", K_TEXT}, {"name", K_TEXT}, {"code", K_TEXT},
	{"isBase", K_BOOLEAN}, {"isActive", K_BOOLEAN},
	{NULL}
};

static const MakiniField uom_fields[] = {
	{"key", K_TEXT}, {"name", K_TEXT}, {"code", K_TEXT},
	{"rateBaseKey", K_TEXT}, {"rate", K_DECIMAL}, {"isActive", K_BOOLEAN},
	{NULL}
};

/*
 * The entities and their list endpoints.  Item paths (GET
 * <resource>/<key>) exist only for orders and vendors (API.md §2);
 * any other key is looked up with filter[key].
 */
enum
{
	PURCHASE_ORDER, LINE_ITEM, VENDOR, STATUS, CURRENCY, UOM
};

static const MakiniEntity entities[] = {
	[PURCHASE_ORDER] = {"PurchaseOrder", "purchase-orders", "key", true,
	purchase_order_fields},
	[LINE_ITEM] = {"POLineItem", "purchase-orders.line-items", "key", false,
	line_item_fields},
	[VENDOR] = {"Vendor", "vendors", "key", true, vendor_fields},
	[STATUS] = {"Status", "statuses/purchase-orders", "key", false,
	status_fields},
	[CURRENCY] = {"Currency", "currencies", "key", false, currency_fields},
	[UOM] = {"UnitOfMeasure", "uom", "key", false, uom_fields},
};

static const MakiniParentColumn line_parent_columns[] = {
	{"order_key", "key"}, {"order_no", "orderNo"}, {NULL}
};

/* the remote schema "makini" */
const MakiniTable makini_model_tables[] = {
	{.name = "purchase_orders", .entity = &entities[PURCHASE_ORDER],
	.custom_fields = true},
	{.name = "purchase_order_lines", .entity = &entities[LINE_ITEM],
	.parent = &entities[PURCHASE_ORDER], .expand = "lineItems",
	.parent_columns = line_parent_columns, .custom_fields = true},
	{.name = "vendors", .entity = &entities[VENDOR]},
	{.name = "purchase_order_statuses", .entity = &entities[STATUS]},
	{.name = "currencies", .entity = &entities[CURRENCY]},
	{.name = "units_of_measure", .entity = &entities[UOM]},
	{NULL}
};

/* each kind's name (in makini_model()) and column type (none: no column) */
static const struct
{
	const char *name;
	const char *type;
}			kinds[] = {
	[MAKINI_FIELD_TEXT] = {"text", "text"},
	[MAKINI_FIELD_DATETIME] = {"datetime", "timestamptz"},
	[MAKINI_FIELD_DECIMAL] = {"decimal", "numeric"},
	[MAKINI_FIELD_INTEGER] = {"integer", "integer"},
	[MAKINI_FIELD_BOOLEAN] = {"boolean", "boolean"},
	[MAKINI_FIELD_OBJECT] = {"object", "jsonb"},
	[MAKINI_FIELD_COLLECTION] = {"collection", NULL}
};

/* The column type of a field kind; NULL for a collection (no column). */
const char *
makini_field_type(MakiniFieldKind kind)
{
	return kinds[kind].type;
}

/* The entity a list endpoint serves, or NULL. */
static const MakiniEntity *
entity_of(const char *resource)
{
	for (int i = 0; i < lengthof(entities); i++)
		if (strcmp(resource, entities[i].resource) == 0)
			return &entities[i];
	return NULL;
}

/* The field of an entity, or NULL. */
static const MakiniField *
entity_field(const MakiniEntity *entity, const char *name)
{
	for (const MakiniField *f = entity->fields; f->name; f++)
		if (strcmp(name, f->name) == 0)
			return f;
	return NULL;
}

/* The field of the entity resource serves; NULL if either is unknown. */
const MakiniField *
makini_model_field(const char *resource, const char *field)
{
	const MakiniEntity *entity = entity_of(resource);

	return entity ? entity_field(entity, field) : NULL;
}

/* Can the API filter and sort on the field?  Its scalar fields only. */
bool
makini_model_filterable(const MakiniField *field)
{
	return field != NULL && field->kind != MAKINI_FIELD_OBJECT &&
		field->kind != MAKINI_FIELD_COLLECTION;
}

/* Is "field = value" on resource a GET <resource>/<value> item request? */
bool
makini_model_key_lookup(const char *resource, const char *field)
{
	const MakiniEntity *entity = entity_of(resource);

	return entity != NULL && entity->item_endpoint &&
		strcmp(field, entity->key) == 0;
}

/*
 * Is the name (len bytes, not NUL-terminated) an embedded collection of
 * some entity?  Such fields are never custom fields.  The page parser asks
 * for every custom field of every record, so the collections' names are
 * gathered once, not looked for among all the model's fields each time.
 */
bool
makini_model_is_collection(const char *name, int len)
{
	static const char *collections[8];
	static int	ncollections = -1;

	if (ncollections < 0)
	{
		ncollections = 0;
		for (int i = 0; i < lengthof(entities); i++)
			for (const MakiniField *f = entities[i].fields; f->name; f++)
				if (f->kind == MAKINI_FIELD_COLLECTION)
				{
					if (ncollections == lengthof(collections))
						elog(ERROR, "the model has more than %d embedded collections",
							 (int) lengthof(collections));
					collections[ncollections++] = f->name;
				}
	}
	for (int i = 0; i < ncollections; i++)
		if (strncmp(collections[i], name, len) == 0 &&
			collections[i][len] == '\0')
			return true;
	return false;
}

/*
 * The default column name of a field: its camelCase as snake_case
 * ("orderNo" becomes "order_no"), the inverse of makini_camel_case.
 */
static char *
snake_case(const char *field)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (; *field; field++)
	{
		if (*field >= 'A' && *field <= 'Z')
		{
			appendStringInfoChar(&buf, '_');
			appendStringInfoChar(&buf, pg_ascii_tolower((unsigned char) *field));
		}
		else
			appendStringInfoChar(&buf, *field);
	}
	return buf.data;
}

/* Appends a column to *columns. */
static void
add_column(List **columns, const char *name, const char *type,
		   const char *field)
{
	MakiniModelColumn *col = palloc(sizeof(MakiniModelColumn));

	col->name = name;
	col->type = type;
	col->field = field;
	*columns = lappend(*columns, col);
}

/*
 * The columns of an imported table, in order (MakiniModelColumn, palloc'd):
 * parent columns ("parent.<field>"), the entity's fields but collections,
 * custom_fields ("*").
 */
List *
makini_table_columns(const MakiniTable *table)
{
	List	   *columns = NIL;

	for (const MakiniParentColumn *p = table->parent_columns;
		 p != NULL && p->column != NULL; p++)
		add_column(&columns, p->column,
				   makini_field_type(entity_field(table->parent, p->field)->kind),
				   psprintf("parent.%s", p->field));
	for (const MakiniField *f = table->entity->fields; f->name; f++)
	{
		if (f->kind != MAKINI_FIELD_COLLECTION)
			add_column(&columns, snake_case(f->name), makini_field_type(f->kind),
					   f->name);
	}
	if (table->custom_fields)
		add_column(&columns, "custom_fields", "jsonb", "*");
	return columns;
}

/* The list endpoint a table reads: its parent's, or its entity's. */
const char *
makini_table_resource(const MakiniTable *table)
{
	return (table->parent ? table->parent : table->entity)->resource;
}

/* Appends "name": value (a JSON string, or null) to a JSON object. */
static void
json_member(StringInfo buf, const char *sep, const char *name,
			const char *value)
{
	appendStringInfoString(buf, sep);
	escape_json(buf, name);
	appendStringInfoString(buf, ": ");
	if (value)
		escape_json(buf, value);
	else
		appendStringInfoString(buf, "null");
}

/* Appends the entities to the JSON text of the model. */
static void
json_entities(StringInfo buf)
{
	appendStringInfoString(buf, "\"entities\": [");
	for (int i = 0; i < lengthof(entities); i++)
	{
		const MakiniEntity *e = &entities[i];

		json_member(buf, i ? ", {" : "{", "entity", e->name);
		json_member(buf, ", ", "resource", e->resource);
		json_member(buf, ", ", "key", e->key);
		appendStringInfo(buf, ", \"item_endpoint\": %s, \"fields\": [",
						 e->item_endpoint ? "true" : "false");
		for (const MakiniField *f = e->fields; f->name; f++)
		{
			json_member(buf, f == e->fields ? "{" : ", {", "name", f->name);
			json_member(buf, ", ", "kind", kinds[f->kind].name);
			appendStringInfoChar(buf, '}');
		}
		appendStringInfoString(buf, "]}");
	}
	appendStringInfoChar(buf, ']');
}

/* Appends the imported tables to the JSON text of the model. */
static void
json_tables(StringInfo buf)
{
	appendStringInfoString(buf, "\"tables\": [");
	for (const MakiniTable *t = makini_model_tables; t->name; t++)
	{
		ListCell   *lc;

		json_member(buf, t == makini_model_tables ? "{" : ", {", "table",
					t->name);
		json_member(buf, ", ", "entity", t->entity->name);
		json_member(buf, ", ", "resource", makini_table_resource(t));
		json_member(buf, ", ", "expand", t->expand);
		appendStringInfoString(buf, ", \"columns\": [");
		foreach(lc, makini_table_columns(t))
		{
			MakiniModelColumn *col = (MakiniModelColumn *) lfirst(lc);

			json_member(buf, foreach_current_index(lc) ? ", {" : "{", "name",
						col->name);
			json_member(buf, ", ", "type", col->type);
			json_member(buf, ", ", "field", col->field);
			appendStringInfoChar(buf, '}');
		}
		appendStringInfoString(buf, "]}");
	}
	appendStringInfoChar(buf, ']');
}

PG_FUNCTION_INFO_V1(makini_model);

/*
 * makini_model(): the model as jsonb, {"entities": [...], "tables": [...]}.
 * Internal: the extension's SQL functions read the table list from it and
 * the tests compare it with the simulator's model.
 */
Datum
makini_model(PG_FUNCTION_ARGS)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	json_entities(&buf);
	appendStringInfoString(&buf, ", ");
	json_tables(&buf);
	appendStringInfoChar(&buf, '}');
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
}
