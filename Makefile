# sealmail build.
#   make            bin/sealmail (release, -O2)
#   make check      unit tests (cmocka) + integration tests (pytest)
#   make asan       the same binary and tests built with ASan+UBSan in build/asan
#   make format     clang-format every source file
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
CLI_SRCS := $(wildcard src/cli/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
CLI_OBJS := $(CLI_SRCS:%.c=$(BUILD)/%.o)
LIBA     := $(BUILD)/libsealmail.a

UNIT_SRCS := $(wildcard tests/unit/test-*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

PROG := $(BIN)/sealmail

.PHONY: all check unit integration asan clean format deps
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
	SEALMAIL_BIN=$(abspath $(PROG)) /usr/bin/python3 -m pytest -q -ra tests/integration

check: all
	@scripts/run-unit $(UNIT_BINS)
	SEALMAIL_BIN=$(abspath $(PROG)) /usr/bin/python3 -m pytest -q -ra tests/integration

asan:
	$(MAKE) BUILD=build/asan BIN=build/asan/bin SAN=1 O=-O1 check

format:
	clang-format -i $$(find src tests/unit tests/fuzz bench -name '*.[ch]')

clean:
	rm -rf build bin

-include $(LIB_OBJS:.o=.d) $(CLI_OBJS:.o=.d)
