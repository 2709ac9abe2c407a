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
TOOLS := normlines seed-size clonecp ext4-rdump ext4-ingest
RELEASE := target/release
BUILD := build

.PHONY: all tools sample test lint-man install uninstall bench clean

all: tools sample

tools:
	$(CARGO) build --release --workspace --locked

# The built-in sample: the package list through normlines, the sample /root through
# seed-size, and the same /root made into an image, extracted by ext4-rdump, measured again,
# and written into a fresh image by ext4-ingest (read back with --verify).
sample: tools
	@mkdir -p $(BUILD)
	@echo '== normlines sample/packages.list'
	@$(RELEASE)/normlines sample/packages.list
	@echo '== seed-size --json sample/root'
	@$(RELEASE)/seed-size --json sample/root
	@echo '== ext4-rdump build/sample.ext4 /root | seed-size --json'
	@rm -rf $(BUILD)/sample-fs $(BUILD)/sample.ext4 $(BUILD)/rdump $(BUILD)/rdump.manifest.jsonl
	@mkdir -p $(BUILD)/sample-fs && cp -a sample/root $(BUILD)/sample-fs/root
	@PATH="$$PATH:/sbin:/usr/sbin" mke2fs -q -F -t ext4 -d $(BUILD)/sample-fs $(BUILD)/sample.ext4 64M >/dev/null
	@$(RELEASE)/ext4-rdump -o $(BUILD)/rdump $(BUILD)/sample.ext4 /root | $(RELEASE)/seed-size --json
	@echo '== ext4-rdump build/sample.ext4 /root | ext4-ingest --verify --json build/ingest.ext4'
	@rm -rf $(BUILD)/ingest.ext4 $(BUILD)/rdump2 $(BUILD)/rdump2.manifest.jsonl
	@PATH="$$PATH:/sbin:/usr/sbin" mke2fs -q -F -t ext4 $(BUILD)/ingest.ext4 64M >/dev/null
	@$(RELEASE)/ext4-rdump -o $(BUILD)/rdump2 $(BUILD)/sample.ext4 /root | \
	    PATH="$$PATH:/sbin:/usr/sbin" $(RELEASE)/ext4-ingest --verify --json $(BUILD)/ingest.ext4

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
