/* missing_symbol: exports no orrery_servable_infer; the host must refuse it
   and name the symbol. Also built as strict C89 (-std=c89 -pedantic-errors)
   to check that servable.h is C89-compatible. */
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
  (void)config_json;
  (void)error;
  (void)error_size;
  *state = &the_state;
  return ORRERY_OK;
}

ORRERY_SERVABLE_EXPORT void orrery_servable_destroy(OrreryServableState* state) {
  (void)state;
}
