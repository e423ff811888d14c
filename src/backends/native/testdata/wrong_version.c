/* wrong_version: a plugin that claims ABI 2.0. The host must refuse it. */
#include "orrery/servable.h"

ORRERY_SERVABLE_EXPORT uint32_t orrery_servable_abi_version(void) {
  return (2u << 16) | 0u;
}

ORRERY_SERVABLE_EXPORT int orrery_servable_create(const char* package_dir, const char* config_json,
                                                  OrreryServableState** state, char* error,
                                                  size_t error_size) {
  (void)package_dir, (void)config_json, (void)state, (void)error, (void)error_size;
  return ORRERY_ERROR_INTERNAL;
}

ORRERY_SERVABLE_EXPORT int orrery_servable_infer(OrreryServableState* state,
                                                 const OrreryTensor* inputs, uint32_t input_count,
                                                 const OrreryOutputAllocator* outputs, char* error,
                                                 size_t error_size) {
  (void)state, (void)inputs, (void)input_count, (void)outputs, (void)error, (void)error_size;
  return ORRERY_ERROR_INTERNAL;
}

ORRERY_SERVABLE_EXPORT void orrery_servable_destroy(OrreryServableState* state) {
  (void)state;
}
