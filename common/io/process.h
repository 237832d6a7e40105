#pragma once

namespace kairos {

// Installs SIGTERM / SIGINT handlers that set a flag (and ignores SIGPIPE).
void install_stop_signals();
// True once SIGTERM or SIGINT arrived.
bool stop_requested();

}  // namespace kairos
