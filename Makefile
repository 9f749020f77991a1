# sealmail build.
#   make            bin/sealmail (release, -O2)
#   make check      unit tests (cmocka) + integration tests (pytest, one
#                   process per CPU: scripts/run-integration)
#   make asan       the same binary and tests built with ASan+UBSan in build/asan
#   make format     clang-format every source file (format-check: report only)
#   make fuzz       libFuzzer harnesses (clang, ASan+UBSan) in build/fuzz
#   make fuzz-replay  build them and run every seed corpus once (regression)
#                   scripts/fuzz [SECONDS] also fuzzes each harness
# Variables: BUILD (object dir), SAN=1 (sanitizers), O (optimisation level).

BUILD ?= build/release
BIN   ?= bin
SAN   ?=
O     ?= -O2

PKGS := libsodium openssl libevent libevent_openssl libevent_pthreads sqlite3 gmime-3.0
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CC      ?= cc
CFLAGS  ?= $(O) -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wpointer-arith \
           -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter \
           -fstack-protector-strong -Isrc $(PKG_CFLAGS)
LDLIBS  += $(PKG_LIBS) -lpthread -lm

ifeq ($(SAN),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
else
CFLAGS  += -D_FORTIFY_SOURCE=2
endif

MODULES := lib net crypto mime store region tlog legal smtp imap daemon
LIB_SRCS := $(foreach m,$(MODULES),$(wildcard src/$(m)/*.c))
# The rados store is built only where librados is installed.
ifneq ($(wildcard /usr/include/rados/librados.h),)
CFLAGS   += -DHAVE_RADOS
LDLIBS   += -lrados
else
LIB_SRCS := $(filter-out src/store/store-rados% src/region/region-directory-rados%,$(LIB_SRCS))
endif
CLI_SRCS := $(wildcard src/cli/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
CLI_OBJS := $(CLI_SRCS:%.c=$(BUILD)/%.o)
LIBA     := $(BUILD)/libsealmail.a

UNIT_SRCS := $(wildcard tests/unit/test-*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

PROG := $(BIN)/sealmail

.PHONY: all check unit integration asan clean format format-check deps fuzz fuzz-replay
all: $(PROG) $(UNIT_BINS)

$(PROG): $(CLI_OBJS) $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJS) $(LIBA) $(LDLIBS)

$(LIBA): $(LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(shell pkg-config --cflags cmocka) $(LDFLAGS) -o $@ $< $(LIBA) \
	      $(shell pkg-config --libs cmocka) $(LDLIBS)

unit: $(UNIT_BINS)
	@scripts/run-unit $(UNIT_BINS)

integration: $(PROG)
	@scripts/run-integration $(PROG)

check: all
	@scripts/run-unit $(UNIT_BINS)
	@scripts/run-integration $(PROG)

asan:
	$(MAKE) BUILD=build/asan BIN=build/asan/bin SAN=1 O=-O1 check

FORMAT_FILES = $$(find src tests/unit tests/fuzz bench -name '*.[ch]')
format:
	clang-format -i $(FORMAT_FILES)

format-check:
	clang-format --dry-run --Werror $(FORMAT_FILES)

clean:
	rm -rf build bin

# ---- fuzzing ------------------------------------------------------------------
# libFuzzer harnesses tests/fuzz/fuzz-NAME.c -> build/fuzz/fuzz-NAME, built
# with clang apart from the gcc build: own objects, and one archive per
# module so that a harness only needs the modules it links to compile.
FUZZ_BUILD  := build/fuzz
FUZZ_CC     ?= clang
FUZZ_SAN    := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS := -g -O1 -fno-omit-frame-pointer -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror \
               -Wshadow -Wpointer-arith -Wstrict-prototypes -Wmissing-prototypes \
               -Wno-unused-parameter -Isrc $(PKG_CFLAGS) $(filter -DHAVE_%,$(CFLAGS)) $(FUZZ_SAN)
FUZZ_NAMES  := config mime seal smtp tlog-json tlog-note tlog-proof imap imap-search imap-args legal-bundle
FUZZ_BINS   := $(FUZZ_NAMES:%=$(FUZZ_BUILD)/fuzz-%)
FUZZ_OBJS   := $(LIB_SRCS:%.c=$(FUZZ_BUILD)/obj/%.o)
fuzz_lib     = $(foreach m,$(1),$(FUZZ_BUILD)/mod-$(m).a)

# What each harness links (objects and module archives, any order).
FUZZ_DEPS_config     := $(call fuzz_lib,lib)
FUZZ_DEPS_mime       := $(call fuzz_lib,mime lib)
FUZZ_DEPS_seal       := $(call fuzz_lib,crypto lib)
FUZZ_DEPS_tlog-json  := $(call fuzz_lib,tlog crypto lib)
FUZZ_DEPS_tlog-note  := $(call fuzz_lib,tlog crypto lib)
FUZZ_DEPS_tlog-proof := $(call fuzz_lib,tlog crypto lib)
# smtp_dot_decode shares smtp-data.c with the session code, hence the rest.
FUZZ_DEPS_smtp       := $(call fuzz_lib,smtp net region store tlog crypto mime lib)
FUZZ_DEPS_imap       := $(FUZZ_BUILD)/obj/src/imap/imap-parser.o $(FUZZ_BUILD)/obj/src/imap/imap-utf7.o \
                        $(call fuzz_lib,lib)
# These compile a command's file into the harness (its parser is static);
# the archive's copy of that file is then never linked.
FUZZ_DEPS_imap-search  := $(call fuzz_lib,imap net region store tlog crypto mime lib)
FUZZ_DEPS_imap-args    := $(FUZZ_DEPS_imap-search)
FUZZ_DEPS_legal-bundle := $(call fuzz_lib,legal region store tlog crypto mime lib)

fuzz: $(FUZZ_BINS)

fuzz-replay:
	@scripts/fuzz --replay

$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

define FUZZ_MODULE_RULE
$(FUZZ_BUILD)/mod-$(1).a: $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(filter src/$(1)/%,$(LIB_SRCS)))
	@rm -f $$@
	$(AR) rcs $$@ $$^
endef
$(foreach m,$(MODULES),$(eval $(call FUZZ_MODULE_RULE,$(m))))

define FUZZ_HARNESS_RULE
$(FUZZ_BUILD)/fuzz-$(1): tests/fuzz/fuzz-$(1).c $(FUZZ_DEPS_$(1))
	@mkdir -p $$(dir $$@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -MMD -MP -o $$@ $$< \
	    -Wl,--start-group $(FUZZ_DEPS_$(1)) -Wl,--end-group $(LDLIBS)
endef
$(foreach n,$(FUZZ_NAMES),$(eval $(call FUZZ_HARNESS_RULE,$(n))))

-include $(LIB_OBJS:.o=.d) $(CLI_OBJS:.o=.d)
-include $(FUZZ_OBJS:.o=.d) $(FUZZ_BINS:=.d)
