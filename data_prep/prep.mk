# data_prep build fragment (included by the top-level Makefile).
# Defines PREP_LIB (linked into every program and test) and the prep-all target.
PREP_SRC := $(filter-out data_prep/main.c,$(wildcard data_prep/*.c))
PREP_OBJ := $(PREP_SRC:data_prep/%.c=$(BUILD)/prep/%.o)
PREP_LIB := $(BUILD)/libprep.a
PREP_HDR := $(wildcard data_prep/*.h src/core/*.h include/semaim/*.h)

$(BUILD)/prep/%.o: data_prep/%.c $(PREP_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(PREP_LIB): $(PREP_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# The tool needs no model code: only libprep.a and the system libraries.
bin/semaim-prep: data_prep/main.c $(PREP_LIB) $(CORE_LIB) $(PREP_HDR)
	@mkdir -p bin
	$(CC) $(CFLAGS) $< -o $@ $(PREP_LIB) $(CORE_LIB) $(LDFLAGS) $(LDLIBS)

# The same program inside the build tree, so that
#   make BUILD=build/asan OPT="..." LDFLAGS="..." build/asan/prep/semaim-prep
# gives a sanitizer build without replacing bin/semaim-prep.
$(BUILD)/prep/semaim-prep: data_prep/main.c $(PREP_LIB) $(CORE_LIB) $(PREP_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(PREP_LIB) $(CORE_LIB) $(LDFLAGS) $(LDLIBS)

prep-all: $(PREP_LIB) bin/semaim-prep

# Our tests and test tools also depend on headers the generic rules do not know about.
$(filter $(BUILD)/tests/prep/test_prep%,$(UNITS)) $(filter $(BUILD)/tools/prep_%,$(TOOLS)): tests/prep/fixtures.h $(PREP_HDR)
