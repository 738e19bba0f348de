// Loading a shared library at run time (cuBLASLt, NCCL): the first of several names that dlopen accepts, then each
// entry point into its slot. Not the libraries' declarations (cublaslt.cu, nccl.cu declare their own).
#pragma once
#include <initializer_list>
#include <string>
#include <vector>

struct EntryPoint {
  void** slot;
  const char* name;
};

// "" when a library loaded and every entry point resolved; else why not, naming `label` and, when none of `names`
// loads, `hint` and the first loader error. On failure the slots resolved so far are set back to null.
std::string load_shared_library(const std::vector<std::string>& names, const std::string& label, const std::string& hint,
                                std::initializer_list<EntryPoint> entries);
