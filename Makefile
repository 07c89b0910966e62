# syscall offload: kernel series, Rust crate and VM tests.
#
#   make demo     build the plain patched kernel, boot it, compare direct
#                 syscalls with an inline offload ring
#   make test     host tests, debug kernel, every test in the VM
#
# See README.md for the rest. Variables (make VAR=value):
#   BUILD        where everything is built (default ./build, reused by later runs)
#   KERNEL_SRC   use this unpacked 6.12 tree instead of fetching one
#   FLAVOR       debug (KASAN, lockdep, kmemleak; default) or plain
#   ACCEL        auto (default), kvm or tcg
#   VM_TIMEOUT   seconds for a whole VM run; TEST_TIMEOUT per test in it

SHELL        := /bin/bash
BUILD        ?= $(CURDIR)/build
VENV         := $(BUILD)/venv
KSRC         := $(BUILD)/linux
KERNEL_PIN   ?= 6.12.117
FLAVOR       ?= debug
JOBS         ?= $(shell nproc)
VM_TIMEOUT   ?= 2400
TEST_TIMEOUT ?= 900

OBJ          = $(BUILD)/obj-$(FLAVOR)
BZIMAGE      = $(OBJ)/arch/x86/boot/bzImage
FRAGMENTS_plain = kernel-config/vm.config kernel-config/offload.config
FRAGMENTS_debug = $(FRAGMENTS_plain) kernel-config/debug.config
# ccache is decided when the kernel recipe runs, not when make reads this
# file: on a fresh machine ccache arrives with `make deps`, after parsing, so a
# parse-time test gave the first build CC=gcc and every later one
# CC="ccache gcc", and kbuild rebuilt everything for the changed command line.
# With "=" the test runs when KMAKE is expanded in a recipe, which make does
# only after that target's prerequisites (deps among them) are up to date.
CCACHE       = $(shell command -v ccache 2>/dev/null)
# Let clones at other paths share ccache hits (paths become relative)
export CCACHE_BASEDIR ?= $(CURDIR)
KMAKE        = $(MAKE) -C $(KSRC) O=$(OBJ) -j$(JOBS) $(if $(CCACHE),CC="ccache gcc")
VNG          ?= $(VENV)/bin/vng
export BUILD KERNEL_PIN ACCEL VM_TIMEOUT TEST_TIMEOUT KERNEL_SRC VNG

ifeq ($(filter $(FLAVOR),debug plain),)
$(error FLAVOR must be debug or plain, not '$(FLAVOR)')
endif

.PHONY: all deps kernel-source kernel patches reset-tree vm-test test host-test \
        demo vm clean distclean help vm-progs

all: help

help:
	@sed -n '1,/^$$/p' Makefile | sed 's/^# \{0,1\}//'

deps:
	@VENV=$(VENV) scripts/deps.sh

# --- kernel ---------------------------------------------------------------

kernel-source: deps
	@CACHE=$(BUILD)/cache KERNEL_PIN=$(KERNEL_PIN) scripts/get-kernel-source.sh $(KSRC)
	@scripts/prepare-tree.sh $(KSRC) $(CURDIR)/patches

kernel: kernel-source
	@scripts/kconfig-if-changed.sh $(KSRC) $(OBJ) $(FRAGMENTS_$(FLAVOR))
	@echo "kernel: building $(FLAVOR) kernel in $(OBJ)"
	@$(KMAKE) -s bzImage headers
	@mkdir -p $(OBJ)/selftests/offload
	@$(MAKE) -s -C $(KSRC)/tools/testing/selftests/offload OUTPUT=$(OBJ)/selftests/offload \
		KHDR_INCLUDES="-isystem $(OBJ)/usr/include" all
	@echo "kernel: $(BZIMAGE) ($$(cat $(KSRC)/.offload-base))"

# Export the commits of the kernel tree as patches/ with a cover letter.
patches:
	@scripts/export-patches.sh $(KSRC) $(CURDIR)/patches

# Drop local commits in the kernel tree and re-apply patches/.
reset-tree:
	@rm -f $(KSRC)/.git/offload-applied
	@git -C $(KSRC) reset -q --hard && scripts/prepare-tree.sh $(KSRC) $(CURDIR)/patches

# --- tests ------------------------------------------------------------------

# The Rust crate on the host: lints, docs, tests. Only one Rust toolchain is
# installed and none can be downloaded, so the check at the declared MSRV
# (rust-version in Cargo.toml) is clippy's incompatible_msrv lint, which
# reads rust-version and rejects std APIs stabilised after it (not newer
# syntax). It is denied here and in Cargo.toml's [workspace.lints].
CLIPPY_FLAGS ?= -D warnings -D clippy::incompatible_msrv

host-test: deps
	cargo clippy --workspace --all-targets -- $(CLIPPY_FLAGS)
	RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps
	SYSCALL_OFFLOAD_REQUIRE_HEADER=1 cargo test --workspace

vm-progs: kernel-source
	@$(MAKE) -s -C vm-tests OUT=$(BUILD)/vm-tests KHDR=$(OBJ)/usr/include

vm-test: kernel vm-progs
	@scripts/vm-test.sh $(BZIMAGE) $(OBJ) $(BUILD)/vm-out-$(FLAVOR)

# The offload stress test alone in a VM: make stress [STRESS_SECONDS=1800]
STRESS_SECONDS ?= 120
.PHONY: stress
stress: kernel vm-progs
	@STRESS_SECONDS=$(STRESS_SECONDS) vm-tests/stress-vm.sh $(BZIMAGE) $(BUILD)/vm-out-stress

test: host-test
	@$(MAKE) --no-print-directory FLAVOR=debug vm-test

# --- parts with their own targets (make preload, make bench) ----------------

-include preload/Makefile.inc bench/Makefile.inc

# --- demo and interactive use -------------------------------------------------

# Twice: as the VM's CPU comes, and with page-table isolation forced on, as
# on the Meltdown-affected Intel CPUs most servers still run (the emulated
# CPU claims not to be affected, so the kernel leaves it off).
demo:
	@$(MAKE) --no-print-directory FLAVOR=plain kernel vm-progs
	@for opts in "" "pti=on"; do \
		VM_APPEND="$$opts" scripts/vm-run.sh -t 600 $(BUILD)/obj-plain/arch/x86/boot/bzImage -- \
			$(BUILD)/vm-tests/demo --accel "$$(scripts/accel.sh)" || exit 1; echo; \
	done

vm: kernel
	@scripts/vm-run.sh $(BZIMAGE)

clean:
	rm -rf $(BUILD)/obj-* $(BUILD)/vm-tests $(BUILD)/vm-out-* target

distclean:
	rm -rf $(BUILD) target
