// Public header of the auth component (see gss.hpp and ntlm.hpp).
#pragma once

#include "auth/gss.hpp"
#include "auth/ntlm.hpp"
