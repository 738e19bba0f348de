// The tables of JavaScript-callable functions each binding file exports; addon.cpp installs them.
#pragma once
#include <node_api.h>

struct Binding {
  const char* name;
  napi_callback fn;
};

extern const Binding memory_bindings[];
extern const Binding elementwise_bindings[];
extern const Binding layer_bindings[];
extern const Binding loss_optim_bindings[];
extern const Binding runtime_bindings[];
extern const Binding quantize_bindings[];
