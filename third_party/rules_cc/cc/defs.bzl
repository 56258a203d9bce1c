"""Forwards the conventional @rules_cc//cc:defs.bzl symbols to Bazel's native rules.

BUILD files load C++ rules from here exactly as they would from the real rules_cc,
so they stay valid on a newer Bazel that ships it.
"""

cc_binary = native.cc_binary
cc_import = native.cc_import
cc_library = native.cc_library
cc_proto_library = native.cc_proto_library
cc_test = native.cc_test
cc_toolchain = native.cc_toolchain
cc_toolchain_suite = native.cc_toolchain_suite
fdo_prefetch_hints = native.fdo_prefetch_hints
fdo_profile = native.fdo_profile
objc_import = native.objc_import
objc_library = native.objc_library
