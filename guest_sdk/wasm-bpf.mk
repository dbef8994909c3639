# wasm-bpf.mk: build a wasm-bpf guest with `wasm-bpf build`.
#
# In the example's Makefile:
#     NAME := bootstrap
#     include ../../guest_sdk/wasm-bpf.mk
# `make` builds $(NAME).wasm from $(NAME).bpf.c and $(NAME).c (plus EXTRA_SRCS),
# again only when one of them, a header of the directory or the SDK header changed.
# `make clean` removes what it generated. Optional variables:
#     EXTRA_SRCS   more user-space C sources (e.g. trace_helpers.c)
#     CFLAGS       extra flags for the wasm32 compile
#     BPF_CFLAGS   extra flags for the BPF compile
#     BUILD_DIR    where intermediates (.bpf.o, .skel.h, .wasm.h) are kept [.output]
#     V=1          print every command

ifndef NAME
$(error set NAME (e.g. NAME := bootstrap) before including wasm-bpf.mk)
endif

WASM_BPF_SDK := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
WASM_BPF ?= wasm-bpf
BUILD_DIR ?= .output
EXTRA_SRCS ?=

.PHONY: all clean
all: $(NAME).wasm

WASM_BPF_FLAGS = --build-dir $(BUILD_DIR) $(if $(CFLAGS),--cflags '$(CFLAGS)') \
                 $(if $(BPF_CFLAGS),--bpf-cflags '$(BPF_CFLAGS)') $(if $(V),-v)

$(NAME).wasm: $(NAME).bpf.c $(NAME).c $(EXTRA_SRCS) $(wildcard *.h) $(WASM_BPF_SDK)/include/libbpf-wasm.h
	$(strip $(WASM_BPF) build $(NAME).bpf.c $(NAME).c $(EXTRA_SRCS) -o $@ $(WASM_BPF_FLAGS))

clean:
	rm -rf $(NAME).wasm $(BUILD_DIR)
