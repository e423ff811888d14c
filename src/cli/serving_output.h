// What `orrery infer` and `orrery verify` print.
//
// Results go to `out` (stdout in the CLI), notes for the person to `notes`
// (stderr), as everywhere in the CLI (output.h). Thread-compatible.
#pragma once

#include <iosfwd>

#include <nlohmann/json.hpp>

#include "cli/infer_io.h"
#include "core/status.h"

namespace orrery::cli {

// Prints an inference answer's JSON part, pretty or (`compact`) on one
// line. Binary outputs' bytes are not shown; each gets a note naming its
// size and --save.
void PrintInferAnswer(const InferAnswer& answer, bool compact, std::ostream& out,
                      std::ostream& notes);

// Prints verify's answer ({"servable","ok","examples":[...]}): with `json`
// the answer itself, else a table (EXAMPLE, OUTPUT, OK, MAX ABS ERROR,
// MESSAGE) and, when all is well, "verified t/n:3: all N examples
// reproduce". OK when the answer's "ok" is true; otherwise kUnprocessable
// "t/n:3: K of N examples do not reproduce", for the caller to report
// (exit status 1).
Status PrintVerifyReport(const nlohmann::json& answer, bool json, std::ostream& out);

}  // namespace orrery::cli
