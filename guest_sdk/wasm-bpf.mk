# wasm-bpf.mk: build a wasm-bpf guest with `wasm-bpf build`.
#
# In the example's Makefile:
#     NAME := bootstrap
#     include ../../guest_sdk/wasm-bpf.mk
# `make` builds $(NAME).wasm from $(NAME).bpf.c and $(NAME).c (plus EXTRA_SRCS),
# again only when one of them, a header of the directory or the SDK header changed.
# With a Cargo.toml in the directory the user-space half is that Rust crate
# (src/, plus EXTRA_SRCS), built again when it, the BPF source, a header next to
# it or the SDK crate changed. `make clean` removes what it generated.
# Optional variables:
#     EXTRA_SRCS   more user-space sources (e.g. trace_helpers.c, a shared .rs module)
#     BPF_SOURCE   the BPF program [$(NAME).bpf.c]
#     CFLAGS       extra flags for the wasm32 compile (C)
#     BPF_CFLAGS   extra flags for the BPF compile
#     BUILD_DIR    where intermediates (.bpf.o, .skel.h/.skel.rs, .wasm.h, cargo's target/) are kept [.output]
#     V=1          print every command

ifndef NAME
$(error set NAME (e.g. NAME := bootstrap) before including wasm-bpf.mk)
endif

WASM_BPF_SDK := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
WASM_BPF ?= wasm-bpf
BUILD_DIR ?= .output
EXTRA_SRCS ?=
BPF_SOURCE ?= $(NAME).bpf.c

.PHONY: all clean
all: $(NAME).wasm

WASM_BPF_FLAGS = --build-dir $(BUILD_DIR) $(if $(CFLAGS),--cflags '$(CFLAGS)') \
                 $(if $(BPF_CFLAGS),--bpf-cflags '$(BPF_CFLAGS)') $(if $(V),-v)

ifneq ($(wildcard Cargo.toml),)
$(NAME).wasm: $(BPF_SOURCE) $(wildcard $(dir $(BPF_SOURCE))*.h) Cargo.toml $(shell find src -name '*.rs') \
              $(EXTRA_SRCS) $(wildcard $(WASM_BPF_SDK)/rust/wasm-bpf/src/*.rs) $(WASM_BPF_SDK)/rust/wasm-bpf/Cargo.toml
	$(strip $(WASM_BPF) build $(BPF_SOURCE) . -o $@ $(WASM_BPF_FLAGS))
else
$(NAME).wasm: $(BPF_SOURCE) $(NAME).c $(EXTRA_SRCS) $(wildcard *.h) $(WASM_BPF_SDK)/include/libbpf-wasm.h
	$(strip $(WASM_BPF) build $(BPF_SOURCE) $(NAME).c $(EXTRA_SRCS) -o $@ $(WASM_BPF_FLAGS))
endif

clean:
	rm -rf $(NAME).wasm $(BUILD_DIR) $(if $(wildcard Cargo.toml),Cargo.lock)
