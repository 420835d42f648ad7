# semaim build. `make` builds bin/*, `make test` runs the whole suite (including an
# ASan+UBSan build of the unit tests), `make bench` runs the benchmarks, `make demo` the demo,
# `make fuzz` the fuzzers (clang, build/fuzz), `make reliability-doc` docs/reliability.md.
# OpenBLAS: we link the OpenMP build explicitly so that OMP_NUM_THREADS governs both our
# OpenMP loops and the GEMMs, and GEMMs called inside our parallel regions run single-threaded.
CC      := mpicc
ARCH    ?= -march=native
OPT     ?= -O3
BLASDIR ?= /usr/lib/x86_64-linux-gnu/openblas-openmp
HDF5_CFLAGS := $(shell pkg-config --cflags hdf5-serial 2>/dev/null)
HDF5_LIBS   := $(shell pkg-config --libs hdf5-serial 2>/dev/null || echo -lhdf5)
# PMIx (the start-up barrier of src/core/mpi_start.c): the library Debian's Open MPI runs on
PMIX_CFLAGS := $(shell pkg-config --cflags pmix 2>/dev/null || echo -I/usr/lib/x86_64-linux-gnu/pmix2/include)
PMIX_LIBS   := $(shell pkg-config --libs pmix 2>/dev/null || echo -L/usr/lib/x86_64-linux-gnu/pmix2/lib -lpmix)
CFLAGS  ?= $(OPT) $(ARCH) -g
# -fno-trapping-math: nothing here reads floating-point exception flags, and without it GCC
# keeps every loop with a float select scalar (GELU's Φ, vexp's clamp, softmax's maximum: GELU
# was 5× slower). Results are unchanged: it only lets the compiler if-convert.
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -fno-trapping-math -fopenmp -Iinclude -Isrc -Idata_prep $(HDF5_CFLAGS) $(PMIX_CFLAGS)
LDLIBS  := -L$(BLASDIR) -Wl,-rpath,$(BLASDIR) -lopenblas $(HDF5_LIBS) $(PMIX_LIBS) -lturbojpeg -ljpeg -lz -lm -lpthread
LDFLAGS += -fopenmp

# GEMM backends (src/kernels/gemm.h): OpenBLAS always; oneDNN (Debian's libdnnl-dev, built on
# libgomp like OpenBLAS-openmp) with GEMM=onednn, or GEMM=auto (the default) when its header is
# there. GEMM=openblas builds and links without oneDNN; the programs then refuse --gemm onednn.
GEMM        ?= auto
DNNL_INCDIR ?= /usr/include
DNNL_HEADER := $(wildcard $(DNNL_INCDIR)/oneapi/dnnl/dnnl.h)
ifeq ($(GEMM),auto)
  GEMM_ONEDNN := $(if $(DNNL_HEADER),1,)
else ifeq ($(GEMM),onednn)
  ifeq ($(DNNL_HEADER),)
    $(error GEMM=onednn, but $(DNNL_INCDIR)/oneapi/dnnl/dnnl.h is missing: install libdnnl-dev)
  endif
  GEMM_ONEDNN := 1
else ifeq ($(GEMM),openblas)
  GEMM_ONEDNN :=
else
  $(error GEMM must be auto, onednn or openblas (got '$(GEMM)'))
endif
ifeq ($(GEMM_ONEDNN),1)
  CFLAGS += -DSEMAIM_HAVE_ONEDNN
  LDLIBS += -ldnnl
endif

BUILD   ?= build
# The objects of a tree follow its GEMM choice: gemm.cfg changes (and they rebuild) when it does.
GEMM_CFG := $(BUILD)/gemm.cfg
$(shell mkdir -p $(BUILD) && echo 'onednn=$(GEMM_ONEDNN)' > $(GEMM_CFG).new && \
        { cmp -s $(GEMM_CFG).new $(GEMM_CFG) || mv $(GEMM_CFG).new $(GEMM_CFG); }; rm -f $(GEMM_CFG).new)
# src/<room>/*.c is the library (src/cmd/ holds the programs). The core room is an archive of
# its own because semaim-prep links it without the model.
CORE_SRC := $(wildcard src/core/*.c)
CORE_OBJ := $(CORE_SRC:src/%.c=$(BUILD)/obj/%.o)
CORE_LIB := $(BUILD)/libcore.a
LIB_SRC := $(filter-out src/cmd/% src/core/%,$(wildcard src/*/*.c))
LIB_OBJ := $(LIB_SRC:src/%.c=$(BUILD)/obj/%.o)
LIB     := $(BUILD)/libsemaim.a
CMD_SRC := $(wildcard src/cmd/*.c)
BINS    := $(CMD_SRC:src/cmd/%.c=bin/%)
# tests/unit/<room>/test_*.c, one folder per room of src/ (prep: data_prep/).
UNIT_SRC := $(wildcard tests/unit/*/test_*.c)
UNITS    := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
# Test helpers that are not unit tests themselves (MPI drivers, dump tools): tests/tools/*.c.
TOOL_SRC := $(wildcard tests/tools/*.c)
TOOLS    := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tools/%)

# Fuzz targets (tests/fuzz/fuzz_*.c, libFuzzer's entry point each). Linked with
# tests/fuzz/replay.c by $(CC) they are replay programs ($(BUILD)/replay/, built with the unit
# tests, so the ASan tree has them too): make test runs them on tests/fuzz/regress/ without
# clang. `make fuzz` builds them as fuzzers with clang in build/fuzz (mpicc told to use clang;
# every library object instrumented) and runs each for FUZZ_SECONDS (tests/fuzz/run.sh).
FUZZ_SRC  := $(wildcard tests/fuzz/fuzz_*.c)
REPLAYS   := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/replay/%)
FUZZERS   := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzzers/%)
FUZZ_HDRS := $(wildcard tests/fuzz/*.h)
FUZZ_SECONDS ?= 60
# The fault-injection shim (tests/fault/fault.c) is an LD_PRELOAD library for the test
# programs: plain cc, no MPI, no sanitizer (whatever tree asks for it), one copy.
FAULT_LIB := build/fault/libfault.so

# `make` builds and nothing else; `make test`, `make demo` and `make bench` first install what
# is missing (scripts/deps.sh), then build in a fresh make that sees the installed packages.
all: build-all
build-all: $(BINS) prep-all

include data_prep/prep.mk

$(BUILD)/obj/%.o: src/%.c $(wildcard include/semaim/*.h src/*/*.h) $(GEMM_CFG)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(CORE_LIB): $(CORE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

bin/%: src/cmd/%.c $(LIB) $(PREP_LIB) $(CORE_LIB)
	@mkdir -p bin
	$(CC) $(CFLAGS) $< -o $@ $(LIB) $(PREP_LIB) $(CORE_LIB) $(LDFLAGS) $(LDLIBS)

TEST_HDRS := tests/unit/check.h $(wildcard tests/tools/*.h tests/prep/*.h)
$(BUILD)/tests/%: tests/unit/%.c $(TEST_HDRS) $(LIB) $(PREP_LIB) $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit $< -o $@ $(LIB) $(PREP_LIB) $(CORE_LIB) $(LDFLAGS) $(TEST_LDFLAGS) $(LDLIBS)

# test_noalloc counts our allocator calls: wrap them at link time (our objects are static).
$(BUILD)/tests/model/test_noalloc: TEST_LDFLAGS := -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=aligned_alloc
$(BUILD)/tests/kernels/test_gemm_noalloc: TEST_LDFLAGS := -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=aligned_alloc,--wrap=posix_memalign

units: $(UNITS) $(TOOLS) $(REPLAYS) $(FAULT_LIB)

$(FAULT_LIB): tests/fault/fault.c
	@mkdir -p $(dir $@)
	cc -O2 -g -std=gnu11 -Wall -Wextra -shared -fPIC $< -o $@ -ldl

$(BUILD)/replay/%: tests/fuzz/%.c tests/fuzz/replay.c $(FUZZ_HDRS) $(LIB) $(PREP_LIB) $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/fuzz $< tests/fuzz/replay.c -o $@ $(LIB) $(PREP_LIB) $(CORE_LIB) $(LDFLAGS) $(LDLIBS)

$(BUILD)/fuzzers/%: tests/fuzz/%.c $(FUZZ_HDRS) $(LIB) $(PREP_LIB) $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fsanitize=fuzzer -Itests/fuzz $< -o $@ $(LIB) $(PREP_LIB) $(CORE_LIB) $(LDFLAGS) $(LDLIBS)
fuzzers: $(FUZZERS)

FUZZ_SAN := -O1 -g -Wno-pass-failed -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
fuzz-build:
	OMPI_CC=clang $(MAKE) BUILD=build/fuzz GEMM=openblas OPT="$(FUZZ_SAN)" LDFLAGS="-fsanitize=address,undefined" fuzzers

fuzz: deps
	@$(MAKE) --no-print-directory build-all tools fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh

# docs/reliability.md from the records of the last make test and make fuzz (build/reliability/).
RELIABILITY_DOC ?= docs/reliability.md
reliability-doc:
	@/usr/bin/python3 scripts/reliability_doc.py --out $(RELIABILITY_DOC)

# The sanitizer build lives in its own tree so it never mixes objects with the fast one.
SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
asan:
	$(MAKE) BUILD=build/asan OPT="$(SAN_FLAGS)" LDFLAGS="-fsanitize=address,undefined" units

test: deps
	@$(MAKE) --no-print-directory build-all units asan
	@tests/run.sh

bench: deps
	@$(MAKE) --no-print-directory build-all tools
	@tests/bench.sh

# pretraining pays? (tests/bench/learning.sh: about 30 min on a quiet 2-core machine)
bench-learning: deps
	@$(MAKE) --no-print-directory build-all
	@tests/bench.sh learning

deps:
	@scripts/deps.sh

demo: deps
	@$(MAKE) --no-print-directory build-all
	@scripts/demo.sh

clean:
	rm -rf build bin

.PHONY: all build-all units asan test bench bench-learning deps demo clean prep-all fuzz fuzz-build fuzzers reliability-doc
.SECONDARY:

$(BUILD)/tools/%: tests/tools/%.c $(TEST_HDRS) $(LIB) $(PREP_LIB) $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit $< -o $@ $(LIB) $(PREP_LIB) $(CORE_LIB) $(LDFLAGS) $(LDLIBS)
tools: $(TOOLS)
.PHONY: tools
