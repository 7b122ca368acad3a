// Uses the installed headers: exits 0 only when they behave.
#include <sluice/error.hpp>
#include <sluice/version.hpp>

#include <cstdio>

int main() {
    std::error_code ec = sluice::errc::too_many_subscriptions;
    if (sluice::to_wire(ec) != "too_many_subscriptions") return 1;
    std::printf("sluice %s, protocol %d\n", SLUICE_VERSION_STRING, sluice::protocol_version);
    return SLUICE_VERSION >= 100 ? 0 : 1;
}
