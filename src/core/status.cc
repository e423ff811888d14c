#include "core/status.h"

namespace orrery {

int HttpStatusFor(Code code) {
  switch (code) {
    case Code::kOk: return 200;
    case Code::kInvalidArgument: return 400;
    case Code::kUnauthenticated: return 401;
    case Code::kPermissionDenied: return 403;
    case Code::kNotFound: return 404;
    case Code::kConflict: return 409;
    case Code::kGone: return 410;
    case Code::kTooLarge: return 413;
    case Code::kUnsupportedMediaType: return 415;
    case Code::kUnprocessable: return 422;
    case Code::kUnavailable: return 503;
    case Code::kInternal:
    case Code::kDataLoss: return 500;
    case Code::kInsufficientStorage: return 507;
  }
  return 500;
}

const char* CodeName(Code code) {
  switch (code) {
    case Code::kOk: return "OK";
    case Code::kInvalidArgument: return "InvalidArgument";
    case Code::kUnauthenticated: return "Unauthenticated";
    case Code::kPermissionDenied: return "PermissionDenied";
    case Code::kNotFound: return "NotFound";
    case Code::kConflict: return "Conflict";
    case Code::kGone: return "Gone";
    case Code::kTooLarge: return "TooLarge";
    case Code::kUnsupportedMediaType: return "UnsupportedMediaType";
    case Code::kUnprocessable: return "Unprocessable";
    case Code::kUnavailable: return "Unavailable";
    case Code::kInternal: return "Internal";
    case Code::kDataLoss: return "DataLoss";
    case Code::kInsufficientStorage: return "InsufficientStorage";
  }
  return "Unknown";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  return std::string(CodeName(code_)) + ": " + detail();
}

Status Status::WithContext(const std::string& context) const {
  if (ok()) return *this;
  Status out(code_, context + ": " + message_);
  if (!detail_.empty()) out.detail_ = context + ": " + detail_;
  return out;
}

Status Status::WithDetail(std::string detail) const {
  Status out = *this;
  out.detail_ = std::move(detail);
  return out;
}

}  // namespace orrery
