// Small helpers the backends share: the model file a package names, the
// `threads` config key, and library messages made safe to show.
//
// Thread-safe (pure functions).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "backends/backend.h"
#include "core/text.h"  // PrintableText: corrupt model files put binary junk in messages

namespace orrery {

// The model file of a package: config.file (or one of `extra_keys`, e.g.
// "model_file"), else the first manifest file whose extension (compared
// case-insensitively, with the dot) is in `extensions`. kUnprocessable,
// prefixed "<backend>: ", when none is named or found or it is not a
// regular file under context.dir.
Result<std::string> FindModelFile(const LoadContext& context, std::string_view backend,
                                  const std::vector<std::string>& extensions,
                                  const std::vector<std::string>& extra_keys = {});

// config.threads: 1 when absent; kUnprocessable unless an integer 1..64.
Result<int> ConfigThreads(const LoadContext& context, std::string_view backend);

}  // namespace orrery
