/*-------------------------------------------------------------------------
 *
 * model.h
 *		  The Makini API model: each entity's fields and their kinds, its
 *		  list and item endpoints, and the foreign tables IMPORT FOREIGN
 *		  SCHEMA makes of it.  The one description the importer, pushdown,
 *		  the page parser and the SQL functions read (model.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef MAKINI_MODEL_H
#define MAKINI_MODEL_H

#include "nodes/pg_list.h"

/* What an API field holds: how it is imported, filtered and sorted. */
typedef enum MakiniFieldKind
{
	MAKINI_FIELD_TEXT,			/* string: text */
	MAKINI_FIELD_DATETIME,		/* ISO 8601: timestamptz, compared as instants */
	MAKINI_FIELD_DECIMAL,		/* decimal string or number: numeric */
	MAKINI_FIELD_INTEGER,		/* string holding an integer: integer */
	MAKINI_FIELD_BOOLEAN,		/* JSON or string boolean: boolean */
	MAKINI_FIELD_OBJECT,		/* nested object (an address): jsonb */
	MAKINI_FIELD_COLLECTION		/* embedded array of records: no column */
} MakiniFieldKind;

typedef struct MakiniField
{
	const char *name;			/* camelCase, as the API sends it */
	MakiniFieldKind kind;
} MakiniField;

/* One entity of the API and the list endpoint that serves it. */
typedef struct MakiniEntity
{
	const char *name;			/* "PurchaseOrder" */
	const char *resource;		/* list endpoint under /api/erp/ */
	const char *key;			/* the field GET <resource>/<key> takes */
	bool		item_endpoint;	/* does GET <resource>/<key> exist? */
	const MakiniField *fields;	/* in column order; ends with {NULL} */
} MakiniEntity;

/* A column of an expand table that reads a field of the parent record. */
typedef struct MakiniParentColumn
{
	const char *column;
	const char *field;			/* a field of the parent entity */
} MakiniParentColumn;

/*
 * A table of IMPORT FOREIGN SCHEMA makini: its columns are the parent
 * columns, then one per field of the entity (but collections), then
 * custom_fields jsonb (field '*') if custom_fields.
 */
typedef struct MakiniTable
{
	const char *name;			/* the default table name */
	const MakiniEntity *entity; /* what one row is */
	const MakiniEntity *parent; /* expand tables: the entity embedding rows */
	const char *expand;			/* the parent's collection field, or NULL */
	const MakiniParentColumn *parent_columns;	/* NULL or ends with {NULL} */
	bool		custom_fields;
} MakiniTable;

/* A column of an imported table (makini_table_columns). */
typedef struct MakiniModelColumn
{
	const char *name;
	const char *type;
	const char *field;			/* the column's field option */
} MakiniModelColumn;

/* The imported tables, in import order; ends with {NULL}. */
extern const MakiniTable makini_model_tables[];

extern const char *makini_field_type(MakiniFieldKind kind);
extern List *makini_table_columns(const MakiniTable *table);
extern const char *makini_table_resource(const MakiniTable *table);
extern const MakiniField *makini_model_field(const char *resource,
											 const char *field);
extern bool makini_model_filterable(const MakiniField *field);
extern bool makini_model_key_lookup(const char *resource, const char *field);
extern bool makini_model_is_collection(const char *name, int len);

#endif							/* MAKINI_MODEL_H */
