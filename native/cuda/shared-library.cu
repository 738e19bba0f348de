// shared-library.cuh: dlopen the first name that loads, dlsym each entry point.
#include <dlfcn.h>

#include "shared-library.cuh"

std::string load_shared_library(const std::vector<std::string>& names, const std::string& label, const std::string& hint,
                                std::initializer_list<EntryPoint> entries) {
  void* lib = nullptr;
  std::string first_error;
  for (const std::string& n : names) {
    lib = dlopen(n.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (lib) break;
    const char* err = dlerror();
    if (first_error.empty() && err) first_error = err;
  }
  if (!lib) return "cannot load " + label + " (" + hint + "): " + first_error;
  for (const EntryPoint& e : entries) {
    *e.slot = dlsym(lib, e.name);
    if (!*e.slot) {
      for (const EntryPoint& r : entries) *r.slot = nullptr;
      return label + " has no " + e.name;
    }
  }
  return "";
}
