/* faulty: misbehaves on purpose, for tests. FP32 x -> FP32 y = x, except
   when the first element of x is
     13  -> segmentation fault
     -1  -> ORRERY_ERROR_INVALID_ARGUMENT "x must not be negative"
     7   -> allocates "y" twice (the host refuses the second)
     8   -> produces no output
     9   -> produces an extra output "z"
     10  -> sleeps 10 s (a hang)
   and create fails when the config contains "fail_create". */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "orrery/servable.h"

struct OrreryServableState {
  int unused;
};

static struct OrreryServableState the_state;

ORRERY_SERVABLE_EXPORT uint32_t orrery_servable_abi_version(void) {
  return ORRERY_SERVABLE_ABI_VERSION;
}

ORRERY_SERVABLE_EXPORT int orrery_servable_create(const char* package_dir, const char* config_json,
                                                  OrreryServableState** state, char* error,
                                                  size_t error_size) {
  (void)package_dir;
  if (strstr(config_json, "fail_create") != NULL) {
    snprintf(error, error_size, "fail_create was set in %s", config_json);
    return ORRERY_ERROR_INTERNAL;
  }
  *state = &the_state;
  return ORRERY_OK;
}

static void* copy_to(const OrreryOutputAllocator* outputs, const char* name,
                     const OrreryTensor* x) {
  void* out =
      outputs->alloc(outputs->host_context, name, x->datatype, x->shape, x->rank, x->byte_size);
  if (out != NULL && x->byte_size > 0) memcpy(out, x->data, (size_t)x->byte_size);
  return out;
}

ORRERY_SERVABLE_EXPORT int orrery_servable_infer(OrreryServableState* state,
                                                 const OrreryTensor* inputs, uint32_t input_count,
                                                 const OrreryOutputAllocator* outputs, char* error,
                                                 size_t error_size) {
  const OrreryTensor* x = &inputs[0];
  float first = 0;
  struct timespec ten_seconds = {10, 0};
  (void)state, (void)input_count;
  if (x->byte_size >= sizeof first) memcpy(&first, x->data, sizeof first);
  if (first == 13) *(volatile int*)0 = 1;
  if (first == -1) {
    snprintf(error, error_size, "x must not be negative");
    return ORRERY_ERROR_INVALID_ARGUMENT;
  }
  if (first == 8) return ORRERY_OK;
  if (first == 10) nanosleep(&ten_seconds, NULL);
  if (copy_to(outputs, "y", x) == NULL) return ORRERY_ERROR_INTERNAL;
  if (first == 7 && copy_to(outputs, "y", x) == NULL) {
    snprintf(error, error_size, "second y refused");
    return ORRERY_ERROR_INTERNAL;
  }
  if (first == 9 && copy_to(outputs, "z", x) == NULL) return ORRERY_ERROR_INTERNAL;
  return ORRERY_OK;
}

ORRERY_SERVABLE_EXPORT void orrery_servable_destroy(OrreryServableState* state) {
  (void)state;
}
