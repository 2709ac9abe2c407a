# The work-seed toolkit. `make` builds the tools and runs them on the built-in sample;
# `make test` runs every check CI runs. See README.md.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DELETE_ON_ERROR:
.SUFFIXES:

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
CARGO ?= cargo
TOOLS := normlines seed-size clonecp
RELEASE := target/release
BUILD := build

.PHONY: all tools sample test lint-man install uninstall bench clean

all: tools sample

tools:
	$(CARGO) build --release --workspace --locked

# The built-in sample: the package list through normlines, and the sample /root through
# seed-size.
sample: tools
	@mkdir -p $(BUILD)
	@echo '== normlines sample/packages.list'
	@$(RELEASE)/normlines sample/packages.list
	@echo '== seed-size --json sample/root'
	@$(RELEASE)/seed-size --json sample/root

test: lint-man
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	$(CARGO) test --workspace --locked

lint-man:
	@for page in man/*.1; do \
	    out=$$(groff -man -ww -z "$$page" 2>&1); \
	    if [ -n "$$out" ]; then echo "$$page: $$out" >&2; exit 1; fi; \
	done; echo "man pages: groff -man -ww -z clean"

install: tools
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 755 $(addprefix $(RELEASE)/,$(TOOLS)) $(DESTDIR)$(BINDIR)/
	install -m 644 $(addprefix man/,$(addsuffix .1,$(TOOLS))) $(DESTDIR)$(MANDIR)/man1/

uninstall:
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(TOOLS)) \
	    $(addprefix $(DESTDIR)$(MANDIR)/man1/,$(addsuffix .1,$(TOOLS)))

bench: tools
	BIN=$(CURDIR)/$(RELEASE) bench/run

clean:
	$(CARGO) clean
	rm -rf $(BUILD)
