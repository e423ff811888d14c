#include "core/reactor.h"

namespace orrery {

thread_local Reactor* Reactor::current_ = nullptr;

}  // namespace orrery
