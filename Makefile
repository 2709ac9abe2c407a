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
TOOLS := normlines seed-size clonecp ext4-rdump ext4-ingest ext4-ls
SCRIPTS := tools/work-seed/work-seed tools/work-seed/work-disk
# cargo puts its output under CARGO_TARGET_DIR when that is set (many users set it globally).
RELEASE := $(or $(CARGO_TARGET_DIR),target)/release
BUILD := build

.PHONY: all tools sample test lint-man install uninstall bench clean

all: tools sample

tools:
	$(CARGO) build --release --workspace --locked

# The built-in sample: a small rootfs image generated from sample/ (a Debian-like /root with
# dotfiles, an ssh directory, a symlink, a hard link, a sparse file, a setuid file), and its
# work-seed, built by the full chain; then the package list through normlines.
sample: tools
	@mkdir -p $(BUILD)
	@echo '== sample/make-rootfs $(BUILD)/sample-rootfs.ext4'
	@sample/make-rootfs $(BUILD)/sample-rootfs.ext4
	@rm -f $(BUILD)/sample-rootfs.work-seed.ext4
	@echo '== work-seed $(BUILD)/sample-rootfs.ext4'
	@$(WORK_SEED) $(BUILD)/sample-rootfs.ext4
	@echo '== e2fsck -fn $(BUILD)/sample-rootfs.work-seed.ext4'
	@PATH="$$PATH:/usr/sbin:/sbin" e2fsck -fn $(BUILD)/sample-rootfs.work-seed.ext4
	@echo '== normlines sample/packages.list'
	@$(RELEASE)/normlines sample/packages.list

# The work-seed of any rootfs image: `make rootfs.work-seed.ext4` from rootfs.ext4, and
# `make X.work-seed` from any other name X.
WORK_SEED = PATH="$(abspath $(RELEASE)):$$PATH" tools/work-seed/work-seed
%.work-seed.ext4: %.ext4 | tools
	$(WORK_SEED) $< $@
%.work-seed: % | tools
	$(WORK_SEED) $< $@

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
	install -m 755 $(addprefix $(RELEASE)/,$(TOOLS)) $(SCRIPTS) $(DESTDIR)$(BINDIR)/
	install -m 644 $(addprefix man/,$(addsuffix .1,$(TOOLS) $(notdir $(SCRIPTS)))) $(DESTDIR)$(MANDIR)/man1/

uninstall:
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(TOOLS) $(notdir $(SCRIPTS))) \
	    $(addprefix $(DESTDIR)$(MANDIR)/man1/,$(addsuffix .1,$(TOOLS) $(notdir $(SCRIPTS))))

bench: tools
	BIN=$(abspath $(RELEASE)) bench/run

clean:
	$(CARGO) clean
	rm -rf $(BUILD)
