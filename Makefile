# makini_fdw — PGXS build
MODULE_big = makini_fdw
OBJS = fdw/makini_fdw.o fdw/options.o fdw/errors.o fdw/json.o fdw/page.o \
       fdw/convert.o fdw/pushdown.o fdw/request.o fdw/import.o fdw/status.o fdw/scan.o \
       fdw/model.o fdw/connection.o fdw/estimate.o fdw/sync.o fdw/sync_run.o
# the HTTP side (makini_http.h), which knows nothing of SQL
OBJS += fdw/http.o fdw/failure.o fdw/remote.o

EXTENSION = makini_fdw
DATA = fdw/makini_fdw--1.0.sql
PGFILEDESC = "makini_fdw - foreign data wrapper for the Makini ERP API"


REGRESS = setup options security import model scan lines types errors status pushdown sorting contract concurrency estimates sync multi
REGRESS_OPTS = --inputdir=.

PG_CPPFLAGS = -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare
SHLIB_LINK = -lcurl -ldeflate

# no LLVM bitcode: JIT inlining is not worth a clang dependency here
override with_llvm = no

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# every object depends on the shared header (PGXS tracks no headers)
$(OBJS): fdw/makini_fdw.h fdw/makini_http.h fdw/compat.h fdw/model.h
fdw/json.o fdw/page.o: fdw/json.h

.PHONY: bench demo test
test:
	bash sql-tests/run-tests.sh
demo:
	bash sql-tests/demo.sh
bench:
	bash sql-tests/bench.sh
