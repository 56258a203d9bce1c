"""Shared compiler flags for mpqbench targets, each with the reason it is there.

  load("//tools:build_defs.bzl", "mpq_copts")
  cc_library(name = "x", srcs = ["x.cc"], copts = mpq_copts())
"""

load("@libtorch//:flags.bzl", "LIBTORCH_COPTS")

def mpq_copts():
    # LIBTORCH_COPTS: -fopenmp when LibTorch uses OpenMP, so that at::parallel_for in our
    # kernels runs in parallel (third_party/system_libs.bzl says why).
    return LIBTORCH_COPTS + [
        # Catch the usual mistakes; external headers (torch, absl) come in through
        # -isystem, so their warnings stay out of our logs.
        "-Wall",
        "-Wextra",
        # Shadowed locals hide real bugs in index-heavy kernel code.
        "-Wshadow=local",
        # A function that falls off its end is undefined behaviour: never allow it.
        "-Werror=return-type",
        # absl::Status/StatusOr are [[nodiscard]]: a dropped error must not compile.
        "-Werror=unused-result",
        # Polymorphic bases (Dataset, Allocator) must have virtual destructors.
        "-Werror=non-virtual-dtor",
        # Errors must be able to carry the offending value; format strings are checked.
        "-Werror=format",
    ]

def mpq_test_copts():
    """Tests use gtest macros that trip -Wshadow; otherwise the same flags."""
    return [c for c in mpq_copts() if c != "-Wshadow=local"]
