# The C shim over libbpf (host_abi/) is compiled by cffi at install time;
# setuptools only accepts cffi_modules through setup().
from setuptools import setup

setup(cffi_modules=["host_abi/build_shim.py:ffibuilder"])
