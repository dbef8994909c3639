# wasm-bpf-rust.mk: build a Rust wasm-bpf guest (a cargo project) with `wasm-bpf build`.
#
# In the example's Makefile:
#     NAME       := rust_bootstrap
#     BPF_SOURCE := ../bootstrap/bootstrap.bpf.c
#     include ../../guest_sdk/wasm-bpf-rust.mk
# `make` builds $(NAME).wasm from BPF_SOURCE and the crate in this directory
# (Cargo.toml, src/), again only when one of them, a header next to BPF_SOURCE or
# the SDK crate changed. `make clean` removes what it generated. Optional:
#     EXTRA_SRCS   more Rust sources outside src/ (e.g. a module shared by examples)
#     BPF_CFLAGS   extra flags for the BPF compile
#     BUILD_DIR    where intermediates (.bpf.o, .skel.rs, cargo's target/) are kept [.output]
#     V=1          print every command

ifndef NAME
$(error set NAME (e.g. NAME := rust_bootstrap) before including wasm-bpf-rust.mk)
endif
ifndef BPF_SOURCE
$(error set BPF_SOURCE (e.g. BPF_SOURCE := bootstrap.bpf.c) before including wasm-bpf-rust.mk)
endif

WASM_BPF_SDK := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
WASM_BPF ?= wasm-bpf
BUILD_DIR ?= .output
EXTRA_SRCS ?=

.PHONY: all clean
all: $(NAME).wasm

WASM_BPF_FLAGS = --build-dir $(BUILD_DIR) $(if $(BPF_CFLAGS),--bpf-cflags '$(BPF_CFLAGS)') $(if $(V),-v)

$(NAME).wasm: $(BPF_SOURCE) $(wildcard $(dir $(BPF_SOURCE))*.h) Cargo.toml $(shell find src -name '*.rs') $(EXTRA_SRCS) \
              $(wildcard $(WASM_BPF_SDK)/rust/wasm-bpf/src/*.rs) $(WASM_BPF_SDK)/rust/wasm-bpf/Cargo.toml
	$(strip $(WASM_BPF) build $(BPF_SOURCE) . -o $@ $(WASM_BPF_FLAGS))

clean:
	rm -rf $(NAME).wasm $(BUILD_DIR) Cargo.lock
