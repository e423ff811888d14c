/* echo: returns every input unchanged, as an output of the same name,
   whatever its datatype (BYTES included). For tests. */
#include <string.h>

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
  (void)package_dir, (void)config_json, (void)error, (void)error_size;
  *state = &the_state;
  return ORRERY_OK;
}

ORRERY_SERVABLE_EXPORT int orrery_servable_infer(OrreryServableState* state,
                                                 const OrreryTensor* inputs, uint32_t input_count,
                                                 const OrreryOutputAllocator* outputs, char* error,
                                                 size_t error_size) {
  uint32_t i;
  (void)state, (void)error, (void)error_size;
  for (i = 0; i < input_count; ++i) {
    const OrreryTensor* in = &inputs[i];
    void* out = outputs->alloc(outputs->host_context, in->name, in->datatype, in->shape, in->rank,
                               in->byte_size);
    if (out == NULL) return ORRERY_ERROR_INTERNAL;
    if (in->byte_size > 0) memcpy(out, in->data, (size_t)in->byte_size);
  }
  return ORRERY_OK;
}

ORRERY_SERVABLE_EXPORT void orrery_servable_destroy(OrreryServableState* state) {
  (void)state;
}
