# The work-seed toolkit. `make` builds the tools and runs them on the built-in sample;
# `make test` runs every check CI runs. See README.md.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DELETE_ON_ERROR:
.SUFFIXES:

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
DATADIR ?= $(PREFIX)/share
MANDIR ?= $(DATADIR)/man
CARGO ?= cargo
TOOLS := normlines seed-size clonecp ext4-rdump ext4-ingest ext4-ls
SCRIPTS := tools/work-seed/work-seed tools/work-seed/work-disk
# What the two scripts share, sourced by both, installed beside them (not executable).
SCRIPT_LIB := tools/work-seed/work-seed-lib.sh
# Binaries the scripts run, installed beside them, with a man page and no completions.
HELPERS := work-seed-summary work-seed-fs
# Pages of section 7: what the tools share (the JSON records).
MAN7 := work-seed-records
# cargo puts its output under CARGO_TARGET_DIR when that is set (many users set it globally).
RELEASE := $(or $(CARGO_TARGET_DIR),target)/release
BUILD := build
NAMES := $(TOOLS) $(notdir $(SCRIPTS))
# Where each shell looks for completions, under DATADIR.
BASH_COMPLETIONS := bash-completion/completions
ZSH_COMPLETIONS := zsh/site-functions
FISH_COMPLETIONS := fish/vendor_completions.d

.PHONY: all tools sample test lint-man lint-sh completions install uninstall deb bench clean

all: tools sample

tools:
	$(CARGO) build --release --workspace --locked

# The built-in sample: a small rootfs image generated from sample/ (a Debian-like /root with
# dotfiles, an ssh directory, a symlink, a hard link, a sparse file, a setuid file), and its
# work-seed, built by the full chain, listed and checked against its rootfs; then the
# package list through normlines.
sample: tools
	@mkdir -p $(BUILD)
	@echo '== sample/make-rootfs $(BUILD)/sample-rootfs.ext4'
	@sample/make-rootfs $(BUILD)/sample-rootfs.ext4
	@rm -f $(BUILD)/sample-rootfs.work-seed.ext4
	@echo '== work-seed $(BUILD)/sample-rootfs.ext4'
	@$(WORK_SEED) $(BUILD)/sample-rootfs.ext4
	@echo '== e2fsck -fn $(BUILD)/sample-rootfs.work-seed.ext4'
	@PATH="$$PATH:/usr/sbin:/sbin" e2fsck -fn $(BUILD)/sample-rootfs.work-seed.ext4
	@echo '== ext4-ls -R $(BUILD)/sample-rootfs.work-seed.ext4'
	@$(RELEASE)/ext4-ls -R $(BUILD)/sample-rootfs.work-seed.ext4
	@echo '== work-seed --check $(BUILD)/sample-rootfs.ext4 $(BUILD)/sample-rootfs.work-seed.ext4'
	@$(WORK_SEED) --check $(BUILD)/sample-rootfs.ext4 $(BUILD)/sample-rootfs.work-seed.ext4 && echo 'the seed agrees with its rootfs'
	@echo '== normlines sample/packages.list'
	@$(RELEASE)/normlines sample/packages.list

# The work-seed of any rootfs image: `make rootfs.work-seed.ext4` from rootfs.ext4, and
# `make X.work-seed` from any other name X.
WORK_SEED = PATH="$(abspath $(RELEASE)):$$PATH" tools/work-seed/work-seed
%.work-seed.ext4: %.ext4 | tools
	$(WORK_SEED) $< $@
%.work-seed: % | tools
	$(WORK_SEED) $< $@

test: lint-man lint-sh
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	$(CARGO) test --workspace --locked

lint-man:
	@for page in man/*.1 man/*.7; do \
	    out=$$(groff -man -ww -z "$$page" 2>&1); \
	    if [ -n "$$out" ]; then echo "$$page: $$out" >&2; exit 1; fi; \
	done; echo "man pages: groff -man -ww -z clean"

# The scripts and their library are POSIX sh: shellcheck holds them to it.
lint-sh:
	@command -v shellcheck >/dev/null || { echo 'lint-sh: shellcheck is not installed (apt-get install shellcheck)' >&2; exit 1; }
	shellcheck -s sh -x -P SCRIPTDIR $(SCRIPTS) $(SCRIPT_LIB)

# bash, zsh and fish completions of every tool, generated from the tools' own clap
# definitions (crates/completions) into $(BUILD)/completions/<the directories under share/>.
completions: tools
	rm -rf $(BUILD)/completions
	$(RELEASE)/gen-completions $(BUILD)/completions

install: tools completions
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man7 \
	    $(DESTDIR)$(DATADIR)/$(BASH_COMPLETIONS) \
	    $(DESTDIR)$(DATADIR)/$(ZSH_COMPLETIONS) $(DESTDIR)$(DATADIR)/$(FISH_COMPLETIONS)
	install -m 755 $(addprefix $(RELEASE)/,$(TOOLS) $(HELPERS)) $(SCRIPTS) $(DESTDIR)$(BINDIR)/
	install -m 644 $(SCRIPT_LIB) $(DESTDIR)$(BINDIR)/
	install -m 644 $(addprefix man/,$(addsuffix .1,$(NAMES) $(HELPERS))) $(DESTDIR)$(MANDIR)/man1/
	install -m 644 $(addprefix man/,$(addsuffix .7,$(MAN7))) $(DESTDIR)$(MANDIR)/man7/
	install -m 644 $(addprefix $(BUILD)/completions/$(BASH_COMPLETIONS)/,$(NAMES)) \
	    $(DESTDIR)$(DATADIR)/$(BASH_COMPLETIONS)/
	install -m 644 $(addprefix $(BUILD)/completions/$(ZSH_COMPLETIONS)/_,$(NAMES)) \
	    $(DESTDIR)$(DATADIR)/$(ZSH_COMPLETIONS)/
	install -m 644 $(addsuffix .fish,$(addprefix $(BUILD)/completions/$(FISH_COMPLETIONS)/,$(NAMES))) \
	    $(DESTDIR)$(DATADIR)/$(FISH_COMPLETIONS)/

uninstall:
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(NAMES) $(HELPERS) $(notdir $(SCRIPT_LIB))) \
	    $(addprefix $(DESTDIR)$(MANDIR)/man1/,$(addsuffix .1,$(NAMES) $(HELPERS))) \
	    $(addprefix $(DESTDIR)$(MANDIR)/man7/,$(addsuffix .7,$(MAN7))) \
	    $(addprefix $(DESTDIR)$(DATADIR)/$(BASH_COMPLETIONS)/,$(NAMES)) \
	    $(addprefix $(DESTDIR)$(DATADIR)/$(ZSH_COMPLETIONS)/_,$(NAMES)) \
	    $(addsuffix .fish,$(addprefix $(DESTDIR)$(DATADIR)/$(FISH_COMPLETIONS)/,$(NAMES)))

# A Debian package of what `make install PREFIX=/usr` installs (man pages gzipped, as
# Debian has them), built with dpkg-deb alone: $(BUILD)/work-seed-toolkit_<version>_<arch>.deb.
DEB_VERSION = $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
DEB_ARCH = $(shell dpkg --print-architecture)
DEB_ROOT = $(BUILD)/deb
DEB_COMPRESS ?= xz
deb: tools completions
	rm -rf $(DEB_ROOT)
	$(MAKE) --no-print-directory -o tools -o completions install \
	    DESTDIR=$(abspath $(DEB_ROOT)) PREFIX=/usr RELEASE=$(RELEASE) BUILD=$(BUILD)
	gzip -9n $(DEB_ROOT)/usr/share/man/man1/*.1 $(DEB_ROOT)/usr/share/man/man7/*.7
	mkdir -p $(DEB_ROOT)/DEBIAN
	{ echo 'Package: work-seed-toolkit'; \
	  echo 'Version: $(DEB_VERSION)'; \
	  echo 'Architecture: $(DEB_ARCH)'; \
	  echo 'Maintainer: work-seed toolkit developers <work-seed@localhost>'; \
	  echo "Installed-Size: $$(du -sk --exclude=DEBIAN $(DEB_ROOT) | cut -f1)"; \
	  echo 'Depends: e2fsprogs'; \
	  echo 'Section: utils'; \
	  echo 'Priority: optional'; \
	  echo 'Description: build ext4 work-seed images for microVMs, unprivileged'; \
	  echo ' work-seed, work-disk, ext4-ls, ext4-rdump, ext4-ingest, seed-size, clonecp and'; \
	  echo ' normlines: extract, list, size, build, check and clone ext4 images without'; \
	  echo ' mount, loop devices, FUSE or root.'; \
	} > $(DEB_ROOT)/DEBIAN/control
	dpkg-deb --root-owner-group -Z$(DEB_COMPRESS) --build $(DEB_ROOT) \
	    $(BUILD)/work-seed-toolkit_$(DEB_VERSION)_$(DEB_ARCH).deb

bench: tools
	BIN=$(abspath $(RELEASE)) bench/run

clean:
	$(CARGO) clean
	rm -rf $(BUILD)
